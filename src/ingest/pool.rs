//! The pool of extraction workers: every file the service reads is extracted and chunked in a
//! separate process ([`super::worker`]), so that a parser's crash, stack overflow, runaway memory
//! or endless loop ends that process and not the service.
//!
//! - At most `ingest.workers` workers run (default: one per core); further files wait their turn
//!   in a first-come queue, so fifty simultaneous uploads do not start fifty processes.
//! - Workers are reused for many files: starting one (a process plus the tokenizer) is kept off
//!   the hot path, and [`WorkerPool::warm`] starts them ahead of the first file. A worker that
//!   died, was killed, or grew large is replaced by a fresh one at the next file.
//! - Each worker runs under kernel limits set from outside ([`limits`]): address space
//!   (`ingest.worker_memory`), CPU seconds per file, no core files, no files or sockets opened,
//!   no new processes. Its environment is emptied (no secrets from the service's environment)
//!   and its stderr is relayed into the service's log, line by line and capped.
//! - Wall time: a worker that has not answered within `ingest.extract_timeout` gets SIGKILL. A
//!   file whose caller stops waiting (a dropped request) kills its worker the same way.
//!
//! A worker that crashes, exceeds a limit or runs too long makes the file's refusal
//! "I couldn't read that file: it looks damaged or too complex. Nothing was added."

mod limits;
mod starter;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use footnote_adapter::IngestError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use super::output::{max_output, too_complex};
use super::protocol::{self, Hello, Job, MAX_HEADER, Reply};
use super::{Chunked, Limits, worker};
use crate::config::IngestConfig;

/// How long a new worker may take to say hello (it builds the tokenizer first).
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
/// Files a worker reads before it is replaced anyway.
const MAX_JOBS: u32 = 10_000;
/// Longest line of a worker's stderr relayed into the log.
const MAX_LOG_LINE: u64 = 4096;

/// The settings of a [`WorkerPool`].
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// The `footnote` binary to start; empty: this process's own binary, when it is `footnote`.
    pub program: PathBuf,
    /// Workers at most; 0 means one per core.
    pub workers: usize,
    /// Address-space limit of a worker, in bytes.
    pub memory: u64,
    /// Wall time per file.
    pub timeout: Duration,
}

impl From<&IngestConfig> for PoolSettings {
    fn from(config: &IngestConfig) -> Self {
        PoolSettings {
            program: config.worker_program.clone(),
            workers: config.workers,
            memory: config.worker_memory.as_u64(),
            timeout: config.extract_timeout,
        }
    }
}

/// Runs extraction and chunking in worker processes. Cheap to clone; clones share the workers.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    program: Result<PathBuf, String>,
    settings: PoolSettings,
    size: usize,
    /// CPU seconds a worker may use per file, and over its life.
    cpu_per_job: u64,
    cpu_lifetime: u64,
    /// One permit per worker: the queue.
    slots: Semaphore,
    /// Started workers waiting for a file.
    idle: Mutex<Vec<Worker>>,
    /// Worker processes alive (idle or busy).
    live: Arc<AtomicUsize>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool").field("size", &self.inner.size).finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A pool with no worker started yet.
    pub fn new(settings: PoolSettings) -> WorkerPool {
        let size = match settings.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let cpu_per_job = settings.timeout.as_secs().saturating_add(1);
        let inner = Inner {
            program: resolve_program(&settings.program),
            cpu_per_job,
            cpu_lifetime: limits::lifetime_cpu(cpu_per_job),
            slots: Semaphore::new(size),
            idle: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
            size,
            settings,
        };
        if let Err(why) = &inner.program {
            tracing::warn!(
                why,
                "no extraction worker program: files cannot be read until ingest.worker_program is set"
            );
        }
        WorkerPool { inner: Arc::new(inner) }
    }

    /// True where the kernel limits the workers' memory and CPU time (Linux).
    pub const KERNEL_LIMITS: bool = limits::ENFORCED;

    /// The most workers that run at once.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Worker processes alive now, idle or busy (never more than [`WorkerPool::size`]).
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// The process ids of the idle workers.
    pub fn idle_pids(&self) -> Vec<u32> {
        self.inner.idle().iter().map(|w| w.pid).collect()
    }

    /// Starts the missing workers in the background, so that the first files do not wait for
    /// them. Must be called inside a tokio runtime.
    pub fn warm(&self) {
        let pool = self.clone();
        tokio::spawn(async move { pool.start_workers().await });
    }

    /// Starts the missing workers (those neither busy nor idle), all at once, and waits until
    /// they are ready.
    pub async fn start_workers(&self) {
        let inner = &self.inner;
        let mut permits = Vec::new();
        while inner.idle().len() + permits.len() < inner.size {
            match inner.slots.try_acquire() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let started = futures::future::join_all(permits.iter().map(|_| inner.spawn())).await;
        for worker in started {
            match worker {
                Ok(worker) => inner.give_back(worker),
                Err(error) => tracing::warn!(%error, "cannot start an extraction worker"),
            }
        }
        drop(permits);
    }

    /// Extracts and chunks one file in a worker, waiting for a free one first.
    pub async fn read(
        &self,
        file_name: &str,
        mime: Option<&str>,
        bytes: Vec<u8>,
        limits: &Limits,
        chunking: (usize, usize),
    ) -> Result<Chunked, IngestError> {
        let inner = &self.inner;
        let Ok(_slot) = inner.slots.acquire().await else {
            return Err(IngestError::Internal);
        };
        let job = Job {
            file_name: file_name.to_owned(),
            mime: mime.map(str::to_owned),
            limits: limits.clone(),
            chunk_tokens: chunking.0,
            chunk_overlap: chunking.1,
        };
        let header = serde_json::to_vec(&job).map_err(|_| IngestError::Internal)?;
        let mut worker = match inner.take().await {
            Ok(worker) => worker,
            Err(error) => {
                tracing::error!(%error, "cannot start an extraction worker");
                return Err(IngestError::Internal);
            }
        };
        let pid = worker.pid;
        if let Err(error) = limits::allow_cpu(pid, inner.cpu_per_job, inner.cpu_lifetime) {
            tracing::warn!(worker = pid, %error, "cannot set the CPU limit of an extraction worker");
        }
        let started = Instant::now();
        let max_reply = usize::try_from(max_output(limits).saturating_mul(4)).unwrap_or(usize::MAX).max(1 << 20);
        let attempt = tokio::time::timeout(inner.settings.timeout, worker.run(&header, &bytes, max_reply)).await;
        drop(bytes);
        match attempt {
            Ok(Ok(reply)) => {
                let (rss, peak) = limits::memory(pid);
                tracing::debug!(file = file_name, worker = pid, took = ?started.elapsed(), rss, peak, "file read by a worker");
                worker.jobs += 1;
                if worker.worn_out(inner, rss) {
                    worker.retire().await;
                } else {
                    inner.give_back(worker);
                }
                reply
            }
            Ok(Err(error)) => {
                // A crash closes its pipes a moment before the process is gone.
                let status = worker.stop(Duration::from_millis(200)).await;
                let reason = if status.is_some_and(|s| !s.success()) { "crashed" } else { "protocol" };
                metrics::counter!("footnote_ingest_worker_failures_total", "reason" => reason).increment(1);
                tracing::warn!(
                    file = file_name, worker = pid, took = ?started.elapsed(), %error, status = %describe(status),
                    "the extraction worker died on this file"
                );
                Err(too_complex())
            }
            Err(_elapsed) => {
                let (_, peak) = limits::memory(pid);
                worker.stop(Duration::ZERO).await;
                metrics::counter!("footnote_ingest_worker_failures_total", "reason" => "timeout").increment(1);
                tracing::warn!(
                    file = file_name, worker = pid, peak, timeout = ?inner.settings.timeout,
                    "the extraction worker ran past ingest.extract_timeout and was killed"
                );
                Err(too_complex())
            }
        }
    }
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a worker for the next file, unless enough are kept already.
    fn give_back(&self, worker: Worker) {
        let mut idle = self.idle();
        if idle.len() < self.size {
            idle.push(worker);
        }
    }

    /// An idle worker that is still alive, or a new one.
    async fn take(&self) -> std::io::Result<Worker> {
        loop {
            let idle = self.idle().pop();
            match idle {
                Some(mut worker) => match worker.child.try_wait() {
                    Ok(None) => return Ok(worker),
                    exited => tracing::warn!(worker = worker.pid, ?exited, "an idle extraction worker had exited"),
                },
                None => return self.spawn().await,
            }
        }
    }

    /// Starts a worker, waits for its hello, and confines it.
    async fn spawn(&self) -> std::io::Result<Worker> {
        let program = self.program.as_ref().map_err(|why| std::io::Error::other(why.clone()))?;
        let mut command = Command::new(program);
        command
            .arg(worker::SUBCOMMAND)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(filter) = std::env::var_os("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        let mut child = starter::spawn(command).await?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("the worker exited at once"))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(relay_log(stderr, pid));
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the worker's pipes are missing"));
        };
        self.live.fetch_add(1, Ordering::Relaxed);
        let live = Counted(self.live.clone());
        let mut worker =
            Worker { child, stdin: Some(stdin), stdout: BufReader::new(stdout), pid, jobs: 0, _live: live };
        let hello = tokio::time::timeout(HELLO_TIMEOUT, protocol::read_frame_async(&mut worker.stdout, MAX_HEADER))
            .await
            .map_err(|_| std::io::Error::other("the worker did not say hello in time"))??;
        let hello: Hello = serde_json::from_slice(&hello)?;
        let expected = Hello::current();
        if hello != expected {
            return Err(std::io::Error::other(format!(
                "{} speaks {} of footnote {}, this service {} of footnote {}",
                program.display(),
                hello.protocol,
                hello.version,
                expected.protocol,
                expected.version
            )));
        }
        // Confined once started: the dynamic loader and the tokenizer are done, and nothing
        // untrusted has been sent yet (no file descriptor may be opened from here on).
        limits::confine(pid, self.settings.memory, self.cpu_lifetime)?;
        tracing::debug!(worker = pid, limits = limits::ENFORCED, "extraction worker started");
        Ok(worker)
    }
}

/// A started worker process.
struct Worker {
    child: Child,
    /// `None` once closed to make the worker exit.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    jobs: u32,
    _live: Counted,
}

/// Counts a worker as alive until it is dropped (which kills its process).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// Sends one job and reads its reply.
    async fn run(&mut self, header: &[u8], bytes: &[u8], max_reply: usize) -> std::io::Result<Reply> {
        let stdin = self.stdin.as_mut().ok_or_else(|| std::io::Error::other("the worker's input is closed"))?;
        protocol::write_frame_async(stdin, header).await?;
        protocol::write_frame_async(stdin, bytes).await?;
        let reply = protocol::read_frame_async(&mut self.stdout, max_reply).await?;
        Ok(serde_json::from_slice(&reply)?)
    }

    /// True when the worker should be replaced rather than reused: many files read, much CPU
    /// used, or much memory kept.
    fn worn_out(&self, pool: &Inner, rss: Option<u64>) -> bool {
        let cpu = limits::cpu_used(self.pid).unwrap_or(0);
        self.jobs >= MAX_JOBS
            || cpu.saturating_add(pool.cpu_per_job) * 2 > pool.cpu_lifetime
            || rss.is_some_and(|rss| rss > pool.settings.memory / 4)
    }

    /// Kills the worker (SIGKILL) unless it exits by itself within `grace`, and reaps it; its
    /// exit status, when it had one of its own.
    async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Ok(status)) = tokio::time::timeout(grace, self.child.wait()).await {
            return Some(status);
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        None
    }

    /// Ends a healthy worker: the end of its input makes it exit.
    async fn retire(mut self) {
        self.stdin = None;
        tracing::debug!(worker = self.pid, jobs = self.jobs, "extraction worker replaced");
        self.stop(Duration::from_secs(1)).await;
    }
}

/// "signal 11", "exit status 1", or "killed".
fn describe(status: Option<ExitStatus>) -> String {
    #[cfg(unix)]
    if let Some(signal) = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)) {
        return format!("signal {signal}");
    }
    status.map_or_else(|| "killed".to_owned(), |s| s.to_string())
}

/// Copies a worker's stderr into the service's log, a capped line at a time.
async fn relay_log(stderr: tokio::process::ChildStderr, pid: u32) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LOG_LINE).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                // The worker's own log lines start with their level; anything else (a panic, the
                // runtime's stack overflow message) is a warning.
                match text.split_once(' ') {
                    _ if text.is_empty() => {}
                    Some(("ERROR", rest)) => tracing::error!(worker = pid, "{}", rest.trim_start()),
                    Some(("WARN", rest)) => tracing::warn!(worker = pid, "{}", rest.trim_start()),
                    Some(("INFO", rest)) => tracing::info!(worker = pid, "{}", rest.trim_start()),
                    Some(("DEBUG" | "TRACE", rest)) => tracing::debug!(worker = pid, "{}", rest.trim_start()),
                    _ => tracing::warn!(worker = pid, "{text}"),
                }
            }
        }
    }
}

/// The worker binary: the configured one, else this process's own binary when it is the
/// `footnote` command (not, say, a test harness that links the library). On Linux that is
/// `/proc/self/exe`, which still runs this very binary after it was replaced on disk by an
/// upgrade.
fn resolve_program(configured: &Path) -> Result<PathBuf, String> {
    if !configured.as_os_str().is_empty() {
        return Ok(configured.to_owned());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the running program: {e}"))?;
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.trim_end_matches(" (deleted)");
    if name != "footnote" && name != "footnote.exe" {
        return Err(format!(
            "the running program {} is not the footnote command: set ingest.worker_program to the footnote binary",
            exe.display()
        ));
    }
    if cfg!(target_os = "linux") { Ok(PathBuf::from("/proc/self/exe")) } else { Ok(exe) }
}
