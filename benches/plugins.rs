//! Overhead of an ask through the plugin wire protocol against the same ask in process, both on
//! one running `footnote serve` (in-process, SQLite, the Ollama double answering at once). The
//! wire side is a plugin as any language would write it: `POST /plugin/v1/ask`, the answer read
//! from its open event stream, then acknowledged. Each round asks once each way, alternating, in
//! the same chat room of the plugin's platform. Target: the wire adds under 2 ms at p50.
//!
//! `cargo bench --bench plugins` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

#[path = "../tests/common/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::time::{Duration, Instant};

use footnote::config::{Config, PluginConfig};
use footnote::serve::{self, Options};
use footnote_adapter::{Actor, Gateway, Question, Scope, Upload};
use footnote_ollama_double::OllamaDouble;
use wire::WirePlugin;

const TOKEN: &str = "bench-plugin-token-0123456789";

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

async fn run(documents: usize, rounds: usize) {
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    cfg.ollama.url = double.url.clone();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.limits.rate_per_minute = 0;
    cfg.limits.ingest_per_minute = 0;
    cfg.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
    cfg.plugins =
        vec![PluginConfig { name: "bench".into(), platform: "irc".into(), token: TOKEN.into(), token_env: None }];
    let running = serve::start(cfg, Options::default()).await.expect("serve starts");
    let room = Scope { platform: "irc".into(), space: Some("net".into()), room: "#bench".into(), thread: None };
    let asker = Actor { user_id: "ann".into(), ..Actor::default() };
    for i in 0..documents {
        let text = format!("# Note {i}\n\n{} (note {i}).\n", TOPICS[i % TOPICS.len()]);
        let upload = Upload {
            file_name: format!("note-{i}.md"),
            mime: None,
            bytes: text.into_bytes(),
            origin: Default::default(),
        };
        running.core.ingest(&room, &Actor::operator(), upload).await.unwrap();
    }
    let plugin = WirePlugin::connect(&format!("http://{}", running.addr), TOKEN, true).await;
    let queries = ["what do penguins eat", "where is the boiler room key", "how does sourdough rise"];

    let in_process = |q: &'static str| {
        let (core, room, asker) = (&running.core, &room, &asker);
        async move {
            let started = Instant::now();
            let answer = core.ask(room, asker, Question::new(q)).await.expect("answered");
            (started.elapsed(), answer.citations.len())
        }
    };
    let over_wire = |q: &'static str| {
        let (plugin, room, asker) = (&plugin, &room, &asker);
        async move {
            let started = Instant::now();
            let answer = plugin.ask(room, asker, Question::new(q)).await.expect("answered");
            (started.elapsed(), answer.citations.len())
        }
    };
    for q in queries {
        in_process(q).await;
        over_wire(q).await;
    }
    let (mut direct, mut wired) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        let q = queries[i % queries.len()];
        let (d, d_sources) = in_process(q).await;
        let (w, w_sources) = over_wire(q).await;
        assert_eq!(d_sources, w_sources, "both answers cite the same sources");
        assert!(d_sources > 0);
        direct.push(d);
        wired.push(w);
    }
    direct.sort();
    wired.sort();
    let (d50, w50) = (percentile(&direct, 0.5), percentile(&wired, 0.5));
    println!("ask, {documents} documents, {rounds} rounds (question to checked answer, Ollama double):");
    println!(
        "  in process (Gateway::ask)        p50 {}  p90 {}  p99 {}",
        ms(d50),
        ms(percentile(&direct, 0.9)),
        ms(percentile(&direct, 0.99))
    );
    println!(
        "  plugin wire (POST + event + ack) p50 {}  p90 {}  p99 {}",
        ms(w50),
        ms(percentile(&wired, 0.9)),
        ms(percentile(&wired, 0.99))
    );
    let extra = w50.as_secs_f64() * 1000.0 - d50.as_secs_f64() * 1000.0;
    println!("  the wire over in process at p50: {extra:+.2} ms (target: under 2 ms)");
    drop(plugin);
    running.stop().await.unwrap();
}

fn main() {
    footnote::install_crypto_provider();
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if smoke {
        runtime.block_on(run(10, 20));
    } else {
        runtime.block_on(run(300, 500));
    }
}
