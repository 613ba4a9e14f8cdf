//! Shared set-up for the integration tests: a temporary data directory, the Ollama double, and a
//! configuration pointing at both, on SQLite or on PostgreSQL.
//!
//! A PostgreSQL test gets a database of its own, created from `template1` (where
//! `scripts/test-services.sh` installed pgvector) and dropped when the test ends. The server is
//! named by `FOOTNOTE_TEST_DATABASE_URL`; without it, or without a server there, the test FAILS
//! and says to run `scripts/test-services.sh`: it never passes quietly.
#![allow(dead_code)]

pub mod cli;
pub mod hostile;
pub mod leaks;
pub mod mail;
pub mod pg;
pub mod process;
pub mod served;
pub mod wire;

pub use pg::Backend;

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
    /// The PostgreSQL database of this test, dropped with it.
    pub database: Option<pg::TestDatabase>,
}

impl TestEnv {
    /// An environment on the embedded default (SQLite).
    pub async fn new() -> TestEnv {
        Self::with_backend(Backend::Sqlite).await
    }

    /// An environment on `backend`.
    pub async fn with_backend(backend: Backend) -> TestEnv {
        let mut env = Self::sqlite().await;
        if backend == Backend::Postgres {
            let database = pg::TestDatabase::create().await;
            env.config.database.url = database.url.clone().into();
            env.config.database.retry_for = std::time::Duration::from_secs(20);
            env.database = Some(database);
        }
        env
    }

    /// A second instance on the same database: its own data directory (so its own BM25 index),
    /// the same Ollama double.
    pub fn second_instance(&self) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = self.config.clone();
        config.data_dir = dir.path().join("data");
        (dir, config)
    }

    async fn sqlite() -> TestEnv {
        footnote::install_crypto_provider();
        let double = OllamaDouble::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        config.ollama.url = double.url.clone();
        config.ollama.request_timeout = std::time::Duration::from_secs(10);
        config.ollama.connect_timeout = std::time::Duration::from_secs(2);
        // Files are read by extraction workers: the footnote binary, not this test harness.
        config.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
        TestEnv { dir, double, config, database: None }
    }

    pub async fn rag(&self) -> Arc<Rag> {
        Rag::open(self.config.clone(), ModelCheck::Refuse).await.expect("open the core")
    }

    pub async fn core(&self) -> Core {
        Core::new(self.rag().await)
    }
}

/// Chunks of `collection` that have a vector, in whichever index holds them.
pub async fn vectors_in(rag: &Rag, collection: &str) -> i64 {
    if rag.store().vector_search().is_some() {
        let counts = rag.store().counts(Some(&[collection.to_owned()])).await.expect("counts");
        counts.chunks - counts.pending_embeddings
    } else {
        rag.indexes().vector_index().map(|v| v.collection_len(collection) as i64).unwrap_or(0)
    }
}

/// Every vector held, in whichever index holds them.
pub async fn vectors_total(rag: &Rag) -> i64 {
    if rag.store().vector_search().is_some() {
        let counts = rag.store().counts(None).await.expect("counts");
        counts.chunks - counts.pending_embeddings
    } else {
        rag.indexes().vector_index().map(|v| v.len() as i64).unwrap_or(0)
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
