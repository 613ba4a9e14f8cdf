//! Shared set-up for the integration tests: a temporary data directory, the Ollama double, and a
//! configuration pointing at both.
#![allow(dead_code)]

use std::sync::Arc;

use footnote::config::Config;
use footnote::rag::gateway::Core;
use footnote::rag::{ModelCheck, Rag};
use footnote_adapter::{Actor, Answer, AskEvent, Gateway, IngestReceipt, Question, Scope, Upload};
use footnote_ollama_double::OllamaDouble;
use futures::StreamExt;

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub double: OllamaDouble,
    pub config: Config,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        footnote::install_crypto_provider();
        let double = OllamaDouble::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        config.ollama.url = double.url.clone();
        config.ollama.request_timeout = std::time::Duration::from_secs(10);
        config.ollama.connect_timeout = std::time::Duration::from_secs(2);
        TestEnv { dir, double, config }
    }

    pub async fn rag(&self) -> Arc<Rag> {
        Rag::open(self.config.clone(), ModelCheck::Refuse).await.expect("open the core")
    }

    pub async fn core(&self) -> Core {
        Core(self.rag().await)
    }
}

pub fn scope(collection: &str) -> Scope {
    Scope::local("cli", collection)
}

pub fn upload(name: &str, text: &str) -> Upload {
    Upload { file_name: name.into(), mime: None, bytes: text.as_bytes().to_vec(), origin: Default::default() }
}

pub async fn ingest(core: &Core, collection: &str, name: &str, text: &str) -> IngestReceipt {
    core.ingest(&scope(collection), &Actor::operator(), upload(name, text)).await.expect("ingest")
}

/// Asks and collects every event; returns the events and the final answer (panics on failure).
pub async fn ask(core: &Core, collection: &str, question: Question) -> (Vec<AskEvent>, Answer) {
    let events: Vec<AskEvent> = core.ask_stream(&scope(collection), &Actor::operator(), question).await.collect().await;
    match events.last() {
        Some(AskEvent::Done(answer)) => {
            let answer = answer.clone();
            (events, answer)
        }
        other => panic!("the answer failed: {other:?}"),
    }
}

/// Three short documents on distinct topics.
pub const ZOO: &[(&str, &str)] = &[
    (
        "penguins.md",
        "# Penguins\n\nEmperor penguins breed during the Antarctic winter. The male keeps the egg warm on his feet for about two months while the female feeds at sea.\n\n## Diet\n\nPenguins eat krill, squid and fish caught while diving.",
    ),
    (
        "volcanoes.md",
        "# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basaltic lava is runny and forms shield volcanoes such as Mauna Loa.\n\n## Hazards\n\nPyroclastic flows are fast currents of hot gas and ash.",
    ),
    (
        "bread.md",
        "# Sourdough bread\n\nSourdough rises thanks to a starter of wild yeast and lactic acid bacteria. Feed the starter with flour and water every day.\n\n## Baking\n\nBake the loaf at 250 degrees in a covered pot for the first twenty minutes.",
    ),
];
