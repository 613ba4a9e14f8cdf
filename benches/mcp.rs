//! Overhead of `search` over MCP (Streamable HTTP at `/mcp`) against the same search through the
//! JSON API (`POST /api/search`), both on one running `footnote serve` (in-process, SQLite, the
//! Ollama double for the query embedding). Each round sends one of each, alternating, with a
//! bearer token and kept-alive connections; the MCP request is a `tools/call` as a client sends
//! it after connecting (the endpoint is stateless: no session to set up per call). Target: the
//! MCP p50 within 2 ms of the API's p50.
//!
//! `cargo bench --bench mcp` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

use std::time::{Duration, Instant};

use footnote::config::Config;
use footnote::serve::{self, Options};
use footnote_adapter::{Actor, Gateway, Scope, Upload};
use footnote_ollama_double::OllamaDouble;
use serde_json::{Value, json};

const TOKEN: &str = "bench-token-0123456789";

const TOPICS: &[&str] = &[
    "penguins breed during the antarctic winter and eat krill squid and fish",
    "a volcano erupts when magma rises through the crust with pyroclastic flows",
    "sourdough rises thanks to a starter of wild yeast and bakes in a covered pot",
    "the boiler room key is kept in the blue cabinet next to the stairs",
    "tides follow the moon and the sun pulling on the oceans twice a day",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The passages of a `tools/call` reply, whether it came as JSON or as one server-sent event.
fn mcp_passages(body: &str) -> usize {
    let json = body.lines().find_map(|l| l.strip_prefix("data:")).unwrap_or(body).trim();
    let reply: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {body}"));
    assert_eq!(reply["result"]["isError"], false, "{reply:#}");
    reply["result"]["structuredContent"]["passages"].as_array().map_or(0, Vec::len)
}

async fn run(documents: usize, rounds: usize) {
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    cfg.ollama.url = double.url.clone();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.tokens = vec![TOKEN.into()];
    cfg.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
    let running = serve::start(cfg, Options::default()).await.expect("serve starts");
    for i in 0..documents {
        let text = format!("# Note {i}\n\n{} (note {i}).\n", TOPICS[i % TOPICS.len()]);
        let upload = Upload {
            file_name: format!("note-{i}.md"),
            mime: None,
            bytes: text.into_bytes(),
            origin: Default::default(),
        };
        running.core.ingest(&Scope::local("http", "default"), &Actor::operator(), upload).await.unwrap();
    }
    let http = reqwest::Client::new();
    let api = format!("http://{}/api/search", running.addr);
    let mcp = format!("http://{}/mcp", running.addr);
    let queries = ["what do penguins eat", "where is the boiler room key", "how does sourdough rise"];

    let api_search = |query: &str| {
        let request = http.post(&api).bearer_auth(TOKEN).json(&json!({ "query": query, "k": 5 }));
        async move {
            let started = Instant::now();
            let reply = request.send().await.unwrap();
            assert!(reply.status().is_success());
            let body: Value = reply.json().await.unwrap();
            (started.elapsed(), body["passages"].as_array().map_or(0, Vec::len))
        }
    };
    let mcp_search = |id: usize, query: &str| {
        let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "search", "arguments": { "query": query, "k": 5 } } });
        let request = http
            .post(&mcp)
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call);
        async move {
            let started = Instant::now();
            let reply = request.send().await.unwrap();
            assert!(reply.status().is_success(), "{}", reply.status());
            let body = reply.text().await.unwrap();
            (started.elapsed(), mcp_passages(&body))
        }
    };
    // Warm up connections and caches.
    for (i, q) in queries.iter().enumerate() {
        api_search(q).await;
        mcp_search(i, q).await;
    }
    let (mut direct, mut over_mcp) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        let q = queries[i % queries.len()];
        let (a, a_hits) = api_search(q).await;
        let (m, m_hits) = mcp_search(i + 100, q).await;
        assert_eq!(a_hits, m_hits, "both return the same passages");
        assert!(a_hits > 0);
        direct.push(a);
        over_mcp.push(m);
    }
    direct.sort();
    over_mcp.sort();
    let (d50, m50) = (percentile(&direct, 0.5), percentile(&over_mcp, 0.5));
    println!("search, {documents} documents, {rounds} rounds (round trip, kept-alive connection, bearer token):");
    println!(
        "  POST /api/search       p50 {}  p90 {}  p99 {}",
        ms(d50),
        ms(percentile(&direct, 0.9)),
        ms(percentile(&direct, 0.99))
    );
    println!(
        "  MCP tools/call search  p50 {}  p90 {}  p99 {}",
        ms(m50),
        ms(percentile(&over_mcp, 0.9)),
        ms(percentile(&over_mcp, 0.99))
    );
    let extra = m50.as_secs_f64() * 1000.0 - d50.as_secs_f64() * 1000.0;
    println!("  MCP over the API at p50: {extra:+.2} ms (target: within 2 ms)");
    running.stop().await.unwrap();
}

fn main() {
    footnote::install_crypto_provider();
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if smoke {
        runtime.block_on(run(10, 20));
    } else {
        runtime.block_on(run(300, 1000));
    }
}
