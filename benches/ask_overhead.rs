//! Overhead of one ask through `footnote serve`, and the idle memory of the service.
//!
//! The service runs in-process over SQLite and the Ollama double, which sits behind a small
//! timing proxy: every Ollama call is timed from the moment the proxy receives it to the end of
//! the double's reply. Overhead per ask = HTTP round trip of `POST /api/ask` minus the time spent
//! in those calls, i.e. everything Footnote itself does (HTTP, auth, scopes, rate limit, queue,
//! retrieval, prompt, citation checking, JSON). Target: p50 <= 5 ms.
//!
//! Then `footnote serve` is started as a process and its resident memory read after it settles.
//!
//! `cargo bench --bench ask_overhead` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use footnote::config::Config;
use footnote::serve::{self, Options};
use footnote_adapter::{Actor, Gateway, Scope, Upload};
use footnote_ollama_double::OllamaDouble;

const DOCS: &[(&str, &str)] = &[
    (
        "penguins.md",
        "# Penguins\n\nEmperor penguins breed during the Antarctic winter.\n\n## Diet\n\nPenguins eat krill, squid and fish caught while diving.",
    ),
    (
        "volcanoes.md",
        "# Volcanoes\n\nA volcano erupts when magma rises through the crust.\n\n## Hazards\n\nPyroclastic flows are fast currents of hot gas and ash.",
    ),
    (
        "bread.md",
        "# Sourdough\n\nSourdough rises thanks to a starter of wild yeast.\n\n## Baking\n\nBake the loaf at 250 degrees in a covered pot.",
    ),
];

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    spent: Arc<Mutex<Duration>>,
}

async fn forward(State(p): State<Proxy>, method: Method, uri: Uri, body: Bytes) -> impl IntoResponse {
    let started = Instant::now();
    let url = format!("{}{}", p.upstream, uri.path_and_query().map(|q| q.as_str()).unwrap_or("/"));
    let reply = p.http.request(method, url).header("content-type", "application/json").body(body).send().await;
    let out = match reply {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.bytes().await.unwrap_or_default())
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    };
    *p.spent.lock().unwrap() += started.elapsed();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn overhead(asks: usize) {
    let double = OllamaDouble::start().await;
    let spent = Arc::new(Mutex::new(Duration::ZERO));
    let proxy = Proxy { upstream: double.url.clone(), http: reqwest::Client::new(), spent: spent.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    cfg.ollama.url = proxy_url;
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
    let running = serve::start(cfg, Options::default()).await.expect("serve starts");
    for (name, text) in DOCS {
        let upload = Upload {
            file_name: (*name).into(),
            mime: None,
            bytes: text.as_bytes().to_vec(),
            origin: Default::default(),
        };
        running.core.ingest(&Scope::local("http", "default"), &Actor::operator(), upload).await.unwrap();
    }
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/ask", running.addr);
    let questions =
        ["What do penguins eat?", "How does magma cause an eruption?", "How hot is the oven for sourdough?"];
    // Warm up connections, the model state and the caches.
    for q in questions {
        http.post(&url).json(&serde_json::json!({ "question": q })).send().await.unwrap();
    }
    let mut overheads = Vec::with_capacity(asks);
    let mut totals = Vec::with_capacity(asks);
    for i in 0..asks {
        *spent.lock().unwrap() = Duration::ZERO;
        let started = Instant::now();
        let reply = http.post(&url).json(&serde_json::json!({ "question": questions[i % 3] })).send().await.unwrap();
        assert!(reply.status().is_success());
        let _ = reply.bytes().await.unwrap();
        let total = started.elapsed();
        let in_ollama = *spent.lock().unwrap();
        totals.push(total);
        overheads.push(total.saturating_sub(in_ollama));
    }
    overheads.sort();
    totals.sort();
    println!("ask overhead over {asks} asks (HTTP round trip minus time in the Ollama double):");
    println!(
        "  p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&overheads, 0.5)),
        ms(percentile(&overheads, 0.9)),
        ms(percentile(&overheads, 0.99)),
        ms(*overheads.last().unwrap())
    );
    println!("  whole ask p50 {}  p90 {}", ms(percentile(&totals, 0.5)), ms(percentile(&totals, 0.9)));
    running.stop().await.unwrap();
}

fn idle_rss() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
        .arg("serve")
        .env("FOOTNOTE_DATA_DIR", dir.path())
        .env("FOOTNOTE_SERVER__LISTEN", "127.0.0.1:0")
        .env("FOOTNOTE_OLLAMA__URL", "http://127.0.0.1:9")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start footnote serve");
    std::thread::sleep(Duration::from_secs(3));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status.lines().find(|l| l.starts_with("VmRSS")).unwrap_or("VmRSS: unknown").to_owned();
    println!(
        "idle `footnote serve` (no adapters compiled in, empty SQLite, Ollama down): {}",
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn main() {
    footnote::install_crypto_provider();
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(overhead(if smoke { 20 } else { 1000 }));
    idle_rss();
}
