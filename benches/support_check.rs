//! Time the support check adds after the model's last token, for a 10-sentence answer.
//!
//! The core runs over SQLite and the Ollama double with `all-minilm` as the embedding model (so
//! the check takes its embedding path: one `/api/embed` call for the answer's sentences and their
//! contraries, the chunks' stored vectors, the lexical evidence, the decision). The double's
//! reply is a fixed 10-sentence answer over the indexed documents. Measured per ask: from the
//! last streamed token to the checked answer (`AskEvent::Done`). Target: p95 < 300 ms with the
//! embedding model warm.
//!
//! The double embeds instantly, so a real model's latency is added with `set_embed_delay`:
//! [`EMBED_DELAY`] is what `all-minilm` on the development machine (2 shared cores, CPU only,
//! otherwise idle) took to embed these 10 sentences and their 10 contraries warm in one call (p50
//! 114 ms, max 118 ms over 12 calls; the 10 sentences alone: p50 47 ms). The run reports the
//! check with that delay and without it (Footnote's own work).
//!
//! `cargo bench --bench support_check` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote::config::Config;
use footnote::rag::gateway::Core;
use footnote::rag::{ModelCheck, Rag};
use footnote_adapter::{Actor, AskEvent, Gateway, Question, Scope, Upload};
use footnote_ollama_double::OllamaDouble;
use futures::StreamExt;

/// Warm `all-minilm` embedding 10 answer sentences and their contraries on the development
/// machine.
const EMBED_DELAY: Duration = Duration::from_millis(115);

const DOCS: &[(&str, &str)] = &[
    (
        "penguins.md",
        "# Penguins\n\nEmperor penguins breed during the Antarctic winter. The male keeps the egg warm on his feet for \
         about two months while the female feeds at sea.\n\n## Diet\n\nPenguins eat krill, squid and fish caught while \
         diving. An adult emperor penguin dives to 500 metres.",
    ),
    (
        "volcanoes.md",
        "# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basaltic lava is runny and forms shield \
         volcanoes such as Mauna Loa.\n\n## Hazards\n\nPyroclastic flows are fast currents of hot gas and ash.",
    ),
    (
        "bread.md",
        "# Sourdough\n\nSourdough rises thanks to a starter of wild yeast and lactic acid bacteria. Feed the starter \
         with flour and water every day.\n\n## Baking\n\nBake the loaf at 250 degrees in a covered pot for twenty \
         minutes.",
    ),
];

/// Ten sentences: cited right, cited wrong, uncited, unsupported.
const ANSWER: &str = "Emperor penguins breed during the Antarctic winter [1]. The male keeps the egg warm on his \
    feet [1]. The female feeds at sea for about two months [2]. Penguins eat krill, squid and fish [1]. An adult \
    emperor penguin dives to 500 metres. A volcano erupts when magma rises through the crust [2]. Basaltic lava \
    forms shield volcanoes such as Mauna Loa [3]. Sourdough rises thanks to wild yeast [3]. Bake the loaf at 250 \
    degrees in a covered pot. Penguins can fly across the ocean in winter [1].";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn measure(core: &Core, asks: usize) -> Vec<Duration> {
    let scope = Scope::local("cli", "bench");
    let mut added = Vec::with_capacity(asks);
    for _ in 0..asks {
        let mut events = core.ask_stream(&scope, &Actor::operator(), Question::new("penguins volcano sourdough")).await;
        let mut last_token = None;
        while let Some(event) = events.next().await {
            match event {
                AskEvent::Token(_) => last_token = Some(Instant::now()),
                AskEvent::Done(answer) => {
                    assert!(answer.sentences.len() >= 10, "{:?}", answer.sentences);
                    added.push(last_token.expect("tokens before the answer").elapsed());
                }
                AskEvent::Failed(e) => panic!("the answer failed: {e:?}"),
                _ => {}
            }
        }
    }
    added.sort();
    added
}

async fn run(asks: usize) {
    let double = OllamaDouble::start().await;
    double.set_reply(Some(Arc::new(|_: &[serde_json::Value]| ANSWER.to_owned())));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    cfg.ollama.url = double.url.clone();
    cfg.ollama.embed_model = "all-minilm".into();
    // Files are read by extraction workers: this binary is not `footnote`, so name it.
    cfg.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
    let rag = Rag::open(cfg, ModelCheck::Refuse).await.expect("open the core");
    let core = Core::new(rag);
    for (name, text) in DOCS {
        let upload = Upload {
            file_name: (*name).into(),
            mime: None,
            bytes: text.as_bytes().to_vec(),
            origin: Default::default(),
        };
        core.ingest(&Scope::local("cli", "bench"), &Actor::operator(), upload).await.unwrap();
    }
    measure(&core, 3).await; // warm the caches
    for (label, delay) in
        [("Footnote's own work (embedding instant)", Duration::ZERO), ("with all-minilm's latency", EMBED_DELAY)]
    {
        double.set_embed_delay(delay);
        let added = measure(&core, asks).await;
        println!(
            "support check after the last token, 10-sentence answer, {label} ({} asks): p50 {}  p95 {}  max {}",
            asks,
            ms(percentile(&added, 0.5)),
            ms(percentile(&added, 0.95)),
            ms(*added.last().unwrap())
        );
    }
}

fn main() {
    footnote::install_crypto_provider();
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(if smoke { 5 } else { 200 }));
}
