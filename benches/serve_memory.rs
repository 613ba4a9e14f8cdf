//! Resident memory of `footnote serve`, idle and under load.
//!
//! The service runs as its own process (the release binary, every default adapter compiled in,
//! SQLite in a temporary data directory) against the Ollama double in this process, with a
//! fixed per-request embed delay and a per-token delay so that answers stream and embedding
//! takes time. Memory is read from `/proc/<pid>/status`:
//!
//! 1. idle: `VmRSS` a few seconds after start (empty data directory);
//! 2. under load: `BENCH_ASKERS` (8) clients ask one streamed question after another
//!    (`POST /api/ask/stream`) while one large Markdown file (`BENCH_FILE_MB`, 10) is uploaded
//!    (`POST /api/documents`) and ingested; `VmRSS` is sampled every 20 ms, and `VmHWM` (the
//!    kernel's own peak) read at the end;
//! 3. after: `VmRSS` a few seconds after the load stopped.
//!
//! The file is read by an extraction worker, a child process with memory of its own: its peak
//! `VmRSS` (sampled too) is reported apart; the target is about the service's own memory. The
//! service runs with `MALLOC_ARENA_MAX=2`, what `footnote` picks itself when the variable is
//! unset (`BENCH_MALLOC_ARENA_MAX=16` for glibc's default on 2 cores).
//!
//! `cargo bench --bench serve_memory` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use footnote_ollama_double::OllamaDouble;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A `kB` field of `/proc/<pid>/status`, in kB.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The children of a process (every thread's).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1000.0)
}

/// A Markdown document of about `bytes` bytes: sections of varied sentences.
fn large_markdown(bytes: usize) -> String {
    let words = [
        "harbour", "launch", "schedule", "penguin", "volcano", "magma", "starter", "flour", "engine", "valve",
        "pressure", "river", "bridge", "tunnel", "signal", "battery", "orbit", "crater", "glacier", "meadow",
    ];
    let mut text = String::from("# Operations manual\n\n");
    let mut n = 0usize;
    while text.len() < bytes {
        text.push_str(&format!("## Section {n}\n\n"));
        for s in 0..6 {
            let sentence: Vec<&str> = (0..14).map(|i| words[(n * 7 + s * 3 + i * i) % words.len()]).collect();
            text.push_str(&format!("Step {s} of section {n}: {}. ", sentence.join(" ")));
        }
        text.push_str("\n\n");
        n += 1;
    }
    text
}

/// glibc's malloc arenas for the service: `BENCH_MALLOC_ARENA_MAX`, by default 2 (what
/// `footnote` picks itself when `MALLOC_ARENA_MAX` is unset); 16 is glibc's own default on this
/// 2-core machine (8 per core).
fn malloc_arenas() -> Option<String> {
    let arenas = std::env::var("BENCH_MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into());
    (!arenas.is_empty()).then_some(arenas)
}

struct Serve {
    child: std::process::Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Serve {
    async fn start(ollama: &OllamaDouble) -> Serve {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
            .arg("serve")
            // Only the settings given here (see benches/ingest.rs).
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", data.path())
            .env("FOOTNOTE_DATA_DIR", data.path())
            .env("FOOTNOTE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("FOOTNOTE_OLLAMA__URL", &ollama.url)
            .env("FOOTNOTE_LIMITS__RATE_PER_MINUTE", "0")
            .envs(malloc_arenas().map(|n| ("MALLOC_ARENA_MAX", n)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start footnote serve");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
                return Serve { child, base, _data: data };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("footnote serve did not become healthy");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Uploads a file; returns how long it took and the number of chunks stored.
async fn upload(http: &reqwest::Client, base: &str, name: &str, text: String) -> (Duration, u64) {
    let started = Instant::now();
    let part = reqwest::multipart::Part::bytes(text.into_bytes()).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    let reply = http.post(format!("{base}/api/documents")).multipart(form).send().await.expect("upload");
    let status = reply.status();
    let body = reply.text().await.unwrap_or_default();
    assert!(status.is_success(), "upload of {name} failed: {status} {body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    (started.elapsed(), receipt["chunks"].as_u64().unwrap_or(0))
}

async fn run() {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let askers = env_or("BENCH_ASKERS", if smoke { 2 } else { 8 });
    let file_mb = env_or("BENCH_FILE_MB", if smoke { 1 } else { 10 });
    let settle = Duration::from_secs(if smoke { 1 } else { 3 });
    let ollama = OllamaDouble::start().await;
    ollama.set_embed_delay(Duration::from_millis(40));
    ollama.set_token_delay(Duration::from_millis(10));
    let serve = Serve::start(&ollama).await;
    let pid = serve.pid();

    tokio::time::sleep(settle).await;
    let idle = status_kb(pid, "VmRSS").unwrap_or(0);

    let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    for (name, topic) in [("penguins.md", "penguin"), ("volcanoes.md", "volcano"), ("bread.md", "flour")] {
        let text = format!("# {topic}\n\n{}", format!("The {topic} facts are listed here. ").repeat(40));
        upload(&http, &serve.base, name, text).await;
    }

    let peak = Arc::new(AtomicU64::new(0));
    let worker_peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, worker_peak, stop) = (peak.clone(), worker_peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = status_kb(pid, "VmRSS") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                for child in children(pid) {
                    if let Some(rss) = status_kb(child, "VmRSS") {
                        worker_peak.fetch_max(rss, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let loading = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..askers {
        let (http, base, loading, answered) = (http.clone(), serve.base.clone(), loading.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let questions = ["What do penguins eat?", "How does a volcano erupt?", "What is in the flour?"];
            let mut n = i;
            while loading.load(Ordering::Relaxed) {
                let question = serde_json::json!({ "question": questions[n % questions.len()] });
                let reply = http.post(format!("{base}/api/ask/stream")).json(&question).send().await;
                if let Ok(reply) = reply
                    && reply.bytes().await.is_ok()
                {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    let text = large_markdown(file_mb * 1_000_000);
    let (took, chunks) = upload(&http, &serve.base, "manual.md", text).await;
    loading.store(false, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let hwm = status_kb(pid, "VmHWM").unwrap_or(0);
    tokio::time::sleep(settle).await;
    let after = status_kb(pid, "VmRSS").unwrap_or(0);

    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "footnote serve ({build}, default adapters compiled in, SQLite; Ollama double: 40 ms per embed request, \
         10 ms per token; MALLOC_ARENA_MAX {})",
        malloc_arenas().unwrap_or_else(|| "unset".into())
    );
    println!("  idle (empty data directory):  VmRSS {}", mb(idle));
    println!(
        "  under load ({askers} streamed asks at a time, {} answered, while a {file_mb} MB Markdown file was \
         uploaded and ingested as {chunks} chunks in {:.1} s):  peak VmRSS {} (sampled every 20 ms), VmHWM {}",
        answered.load(Ordering::Relaxed),
        took.as_secs_f64(),
        mb(peak.load(Ordering::Relaxed)),
        mb(hwm),
    );
    println!("  {} s after the load:  VmRSS {}", settle.as_secs(), mb(after));
    println!(
        "  peak over idle: {} (target: at most 150 MB); extraction workers (own processes): peak VmRSS {}",
        mb(peak.load(Ordering::Relaxed).max(hwm).saturating_sub(idle)),
        mb(worker_peak.load(Ordering::Relaxed))
    );
    assert!(answered.load(Ordering::Relaxed) > 0, "no ask was answered");
}

fn main() {
    footnote::install_crypto_provider();
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}
