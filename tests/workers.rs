//! The extraction worker pool with the real `footnote extract-worker` processes: the kernel limits
//! each worker runs under, the queue, and what happens when a worker crashes, runs out of
//! memory, runs too long, or its caller goes away.

mod common;

use std::time::{Duration, Instant};

use common::hostile;
use footnote::ingest::pool::PoolSettings;
use footnote::ingest::{Limits, WorkerPool};
use footnote_adapter::IngestError;

const DAMAGED: &str = "it looks damaged or too complex";

fn pool(workers: usize, memory: u64, timeout: Duration) -> WorkerPool {
    // The pool's log (worker deaths, relayed worker stderr) shows in a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("footnote=debug").try_init();
    WorkerPool::new(PoolSettings { program: env!("CARGO_BIN_EXE_footnote").into(), workers, memory, timeout })
}

fn limits(timeout: Duration) -> Limits {
    Limits { extract_timeout: timeout, ..Limits::default() }
}

async fn read(pool: &WorkerPool, name: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<String>, IngestError> {
    let chunked = pool.read(name, None, bytes.to_vec(), limits, (200, 30)).await?;
    Ok(chunked.chunks.into_iter().map(|c| c.text).collect())
}

fn good(n: usize) -> Vec<u8> {
    format!("# Note {n}\n\nThe spare key number {n} hangs in the shed.").into_bytes()
}

/// True while the process runs (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])))
}

/// The field of `/proc/PID/limits` for `name`: (soft, hard).
fn limit(pid: u32, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_owned(), fields[1].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_under_kernel_limits_with_an_empty_environment() {
    let pool = pool(1, 512 << 20, Duration::from_secs(20));
    assert_eq!(read(&pool, "a.md", &good(1), &limits(Duration::from_secs(20))).await.unwrap().len(), 1);
    let workers = pool.idle_pids();
    assert_eq!(workers.len(), 1, "one worker, kept for the next file: {workers:?}");
    let worker = workers[0];
    assert_eq!(limit(worker, "Max address space"), ("536870912".into(), "536870912".into()));
    assert_eq!(limit(worker, "Max core file size"), ("0".into(), "0".into()));
    assert_eq!(limit(worker, "Max open files"), ("3".into(), "3".into()));
    assert_eq!(limit(worker, "Max file size"), ("0".into(), "0".into()));
    assert_eq!(limit(worker, "Max processes"), ("0".into(), "0".into()));
    let (cpu_soft, cpu_hard) = limit(worker, "Max cpu time");
    assert!(cpu_soft.parse::<u64>().unwrap() <= 21, "CPU seconds allowed for the file: {cpu_soft}");
    assert_eq!(cpu_hard, "600");
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("FOOTNOTE"), "the worker sees the service's environment");
    // It is reused for the next file.
    read(&pool, "b.md", &good(2), &limits(Duration::from_secs(20))).await.unwrap();
    assert_eq!(pool.idle_pids(), vec![worker]);
    drop(pool);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(worker) {
        assert!(Instant::now() < deadline, "the worker outlived its pool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_or_late_worker_is_killed_refuses_its_file_and_is_replaced() {
    let timeout = Duration::from_secs(3);
    let pool = pool(1, 1 << 30, timeout);
    let limits = limits(timeout);

    read(&pool, "a.md", &good(1), &limits).await.unwrap();
    let first = pool.idle_pids();
    // Stack overflow: the worker aborts; the file is refused.
    let crash = hostile::file("xobject-self.pdf");
    let refused = read(&pool, crash.name, &crash.bytes, &limits).await.unwrap_err();
    assert_eq!(refused, IngestError::Unreadable(DAMAGED.into()));
    assert_eq!(
        refused.user_message(),
        "I couldn't read that file: it looks damaged or too complex. Nothing was added."
    );
    assert!(!alive(first[0]), "the crashed worker is gone");
    read(&pool, "b.md", &good(2), &limits).await.unwrap();
    let second = pool.idle_pids();
    assert_eq!(second.len(), 1);
    assert_ne!(first, second, "the crashed worker was replaced");

    // An endless loop: killed at the wall-time limit.
    let spin = hostile::file("page-tree-loop.pdf");
    let started = Instant::now();
    let refused = read(&pool, spin.name, &spin.bytes, &limits).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(refused, IngestError::Unreadable(DAMAGED.into()));
    assert!(took >= timeout && took < timeout + Duration::from_secs(3), "{took:?}");
    assert!(!alive(second[0]), "the late worker is gone");
    assert_eq!(pool.live(), 0);
    read(&pool, "c.md", &good(3), &limits).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_worker_memory_limit_is_refused_and_the_next_one_is_read() {
    let pool = pool(1, 256 << 20, Duration::from_secs(30));
    // Allowed to unpack far more than the worker may hold: the kernel's limit decides (the
    // allocation fails; the worker either reports it or aborts, and the refusal is the same).
    let limits = Limits { max_unpacked_size: 4 << 30, ..limits(Duration::from_secs(30)) };
    let bomb = hostile::file("zip-bomb.docx");
    let refused = read(&pool, bomb.name, &bomb.bytes, &limits).await.unwrap_err();
    assert_eq!(refused, IngestError::Unreadable(DAMAGED.into()));
    assert_eq!(read(&pool, "a.md", &good(1), &limits).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_queue_for_the_workers_and_a_dropped_caller_kills_its_worker() {
    let pool = pool(2, 1 << 30, Duration::from_secs(30));
    let limits = limits(Duration::from_secs(30));
    let mut reads = Vec::new();
    for n in 0..12 {
        let (pool, limits) = (pool.clone(), limits.clone());
        reads.push(tokio::spawn(async move { read(&pool, &format!("{n}.md"), &good(n), &limits).await }));
    }
    let mut most = 0;
    while !reads.iter().all(|r| r.is_finished()) {
        most = most.max(pool.live());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for (n, r) in reads.into_iter().enumerate() {
        assert!(r.await.unwrap().unwrap()[0].contains(&format!("number {n}")));
    }
    assert!(most <= 2, "{most} workers for 2 slots");

    // The caller gives up (a dropped HTTP request): its worker is killed, not left running.
    let spin = hostile::file("page-tree-loop.pdf");
    let before = pool.idle_pids();
    assert_eq!(before.len(), 2);
    let (pool2, limits2) = (pool.clone(), limits.clone());
    let reading = tokio::spawn(async move { read(&pool2, spin.name, &spin.bytes, &limits2).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let busy: Vec<u32> = before.iter().copied().filter(|p| !pool.idle_pids().contains(p)).collect();
    assert_eq!(busy.len(), 1, "one worker reads the file");
    reading.abort();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(busy[0]) {
        assert!(Instant::now() < deadline, "the abandoned worker still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pool.live(), 1);
    assert!(read(&pool, "after.md", &good(99), &limits).await.unwrap()[0].contains("number 99"));
}

/// Linux sends a child's "parent died" signal when the *thread* that started it exits, and tokio
/// retires threads (blocking-pool threads after their keep-alive, and worker threads that gave
/// their place away in `block_in_place`). A worker must outlive the thread that happened to start
/// it, or a file it is reading would be refused as damaged.
#[test]
fn a_worker_outlives_the_thread_that_started_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(20))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = pool(1, 512 << 20, Duration::from_secs(20));
        let starter = pool.clone();
        tokio::task::spawn_blocking(move || tokio::runtime::Handle::current().block_on(starter.start_workers()))
            .await
            .unwrap();
        let workers = pool.idle_pids();
        assert_eq!(workers.len(), 1, "{workers:?}");
        // Long past the keep-alive: the thread that started the worker is gone.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(alive(workers[0]), "the worker died with the thread that started it");
        read(&pool, "a.md", &good(1), &limits(Duration::from_secs(20))).await.unwrap();
        assert_eq!(pool.idle_pids(), workers, "the same worker read the file");
    });
}
