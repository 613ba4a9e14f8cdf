//! The `Rag` service: ingest files (one at a time, or many through a pipeline that packs chunks
//! of several files into full embed calls), answer questions with checked citations, and keep the
//! derived indexes and pending embeddings in step with the store. [`gateway`] puts it behind the
//! adapter-facing [`footnote_adapter::Gateway`] trait.

mod ask;
mod bulk;
pub mod citations;
mod error;
pub mod gate;
pub mod gateway;
pub mod prompt;
pub mod queue;
pub mod scopes;
mod sync;
mod upload;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use footnote_adapter::{ModelWarmup, WarmupReport};

pub use bulk::{BulkInput, INDEX_EVERY};
pub use error::RagError;
pub use upload::STAGE_BATCH;

use crate::config::{Config, EmbedPrefixes};
use crate::index::Indexes;
use crate::index::vector::HnswParams;
use crate::ingest::pool::PoolSettings;
use crate::ingest::{Limits, WorkerPool};
use crate::llm::OllamaClient;
use crate::store::{META_EMBED_DIMS, META_EMBED_MODEL, Store};

/// The queue's name for warm-up calls, which wait their turn like questions.
const WARMUP_QUEUE_USER: &str = "\u{0}warmup";

/// Chunks embedded per back-fill step.
const BACKFILL_BATCH: i64 = 256;

/// Builds the tokenizer that measures prompts (a noticeable fraction of a second) on a blocking
/// thread while the store and indexes open, rather than at the first question. Once built,
/// calling this again costs nothing.
fn warm_tokenizer() {
    drop(tokio::task::spawn_blocking(|| crate::ingest::count_tokens("")));
}

/// How `Rag::open` treats a configured embedding model that differs from the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelCheck {
    /// Refuse to start (the default): answers would compare vectors of two models.
    Refuse,
    /// Allowed: the caller is about to re-embed everything (`footnote reindex --embeddings`).
    Allow,
}

/// The core service.
pub struct Rag {
    cfg: Config,
    store: Arc<dyn Store>,
    indexes: Indexes,
    ollama: OllamaClient,
    /// Reads uploads in worker processes.
    workers: WorkerPool,
    limits: Limits,
    prefixes: EmbedPrefixes,
    /// The chat model's context window, learned once from `/api/show`.
    num_ctx: OnceLock<u32>,
    backfill: tokio::sync::Mutex<()>,
    /// Permissions, rate limit, model queue and lifecycle.
    gate: gate::Gate,
}

impl Rag {
    /// Opens the configured store (see [`crate::store::open`]) and the indexes in the data
    /// directory, and catches the indexes up.
    pub async fn open(cfg: Config, check: ModelCheck) -> Result<Arc<Rag>, RagError> {
        warm_tokenizer();
        let data_dir = &cfg.data_dir;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| RagError::DataDir { path: data_dir.display().to_string(), reason: e.to_string() })?;
        let store = crate::store::open(&cfg).await?;
        Self::with_store(cfg, store, check).await
    }

    /// Builds the service on an already opened store.
    pub async fn with_store(cfg: Config, store: Arc<dyn Store>, check: ModelCheck) -> Result<Arc<Rag>, RagError> {
        let stored_model = store.meta(META_EMBED_MODEL).await?;
        if let Some(stored) = stored_model.filter(|m| *m != cfg.ollama.embed_model && check == ModelCheck::Refuse) {
            return Err(RagError::EmbedModelChanged { stored, configured: cfg.ollama.embed_model.clone() });
        }
        let dims = store.meta(META_EMBED_DIMS).await?.and_then(|d| d.parse().ok());
        warm_tokenizer();
        let indexes = Indexes::open(&cfg.data_dir.join("index"), dims, HnswParams::from(&cfg.retrieval))?;
        let rag = Rag {
            ollama: OllamaClient::new(&cfg.ollama)?,
            workers: WorkerPool::new(PoolSettings::from(&cfg.ingest)),
            limits: Limits::from(&cfg.ingest),
            prefixes: cfg.ollama.embed_prefixes(),
            num_ctx: OnceLock::new(),
            backfill: tokio::sync::Mutex::new(()),
            gate: gate::Gate::new(&cfg),
            indexes,
            store,
            cfg,
        };
        rag.indexes.catch_up(rag.store.as_ref()).await?;
        Ok(Arc::new(rag))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    pub fn ollama(&self) -> &OllamaClient {
        &self.ollama
    }

    /// The extraction workers that read uploads.
    pub fn workers(&self) -> &WorkerPool {
        &self.workers
    }

    /// Permissions, rate limit, model queue and lifecycle.
    pub fn gate(&self) -> &gate::Gate {
        &self.gate
    }

    /// Embeds chunk texts with the document prefix. Records the model and dimension on first use
    /// and refuses vectors of another dimension.
    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, RagError> {
        let inputs: Vec<String> = texts.iter().map(|t| format!("{}{t}", self.prefixes.document)).collect();
        let vectors = self.ollama.embed(&self.cfg.ollama.embed_model, &inputs).await?;
        if let Some(first) = vectors.first() {
            self.check_dims(first.len()).await?;
        }
        Ok(vectors)
    }

    /// Embeds a question with the query prefix.
    pub async fn embed_query(&self, text: &str) -> Result<Vec<f32>, RagError> {
        let input = vec![format!("{}{text}", self.prefixes.query)];
        let mut vectors = self.ollama.embed(&self.cfg.ollama.embed_model, &input).await?;
        vectors.pop().ok_or_else(|| RagError::Ollama(crate::llm::OllamaError::BadResponse("no embedding".into())))
    }

    /// Records the model and dimension on first use; refuses another dimension later.
    async fn check_dims(&self, dims: usize) -> Result<(), RagError> {
        let model = &self.cfg.ollama.embed_model;
        match self.store.meta(META_EMBED_DIMS).await?.and_then(|d| d.parse::<usize>().ok()) {
            Some(stored) if stored != dims => Err(RagError::EmbedModelChanged {
                stored: format!("a {stored}-dimensional model"),
                configured: format!("{model} ({dims} dimensions)"),
            }),
            Some(_) => Ok(()),
            None => {
                self.store.set_meta(META_EMBED_MODEL, model).await?;
                self.store.set_meta(META_EMBED_DIMS, &dims.to_string()).await?;
                Ok(())
            }
        }
    }

    /// Embeds every chunk still waiting for its embedding. Stops quietly (returning what it did)
    /// when Ollama is unreachable; the next call continues.
    pub async fn backfill(&self) -> Result<usize, RagError> {
        let _guard = self.backfill.lock().await;
        let mut done = 0;
        loop {
            let pending = self.store.pending_embeddings(BACKFILL_BATCH).await?;
            if pending.is_empty() {
                break;
            }
            let texts: Vec<String> = pending.iter().map(|(_, t)| t.clone()).collect();
            let vectors = match self.embed_documents(&texts).await {
                Ok(v) => v,
                Err(RagError::Ollama(e)) => {
                    error::count_ollama_error(&e);
                    tracing::info!(error = %e, remaining = pending.len(), "embedding back-fill paused");
                    break;
                }
                Err(e) => return Err(e),
            };
            let items: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, _)| *id).zip(vectors).collect();
            done += self.store.set_embeddings(&items).await?;
            self.indexes.catch_up(self.store.as_ref()).await?;
        }
        if done > 0 {
            tracing::info!(chunks = done, "embeddings back-filled");
        }
        Ok(done)
    }

    /// Rebuilds both indexes from the store; with `re_embed`, first drops every embedding and
    /// makes them again with the configured model. Returns the number of chunks embedded.
    pub async fn reindex(&self, re_embed: bool) -> Result<usize, RagError> {
        if re_embed {
            self.store.clear_embeddings().await?;
            self.indexes.drop_vectors(self.store.as_ref()).await?;
        }
        self.indexes.clear().await?;
        self.indexes.catch_up(self.store.as_ref()).await?;
        let embedded = self.backfill().await?;
        self.indexes.persist_vectors()?;
        Ok(embedded)
    }

    /// Loads both models into memory.
    pub async fn warmup(&self) -> Result<WarmupReport, RagError> {
        let started = Instant::now();
        let mut slot = self.gate.queue.enter(WARMUP_QUEUE_USER).map_err(|_| RagError::Busy)?;
        slot.admitted(|_| async {}).await;
        let chat = self.ollama.warm_chat(&self.cfg.ollama.chat_model).await?;
        drop(slot);
        let chat_took = started.elapsed();
        let started = Instant::now();
        let embed = self.ollama.warm_embed(&self.cfg.ollama.embed_model).await?;
        Ok(WarmupReport {
            models: vec![
                ModelWarmup { name: self.cfg.ollama.chat_model.clone(), took: chat_took, load: chat.load },
                ModelWarmup { name: self.cfg.ollama.embed_model.clone(), took: started.elapsed(), load: embed.load },
            ],
        })
    }

    /// The context window requested from the chat model: `ollama.num_ctx`, else the model's own
    /// (from `/api/show`) capped at 8192, else 4096.
    async fn num_ctx(&self) -> u32 {
        if self.cfg.ollama.num_ctx > 0 {
            return self.cfg.ollama.num_ctx;
        }
        if let Some(n) = self.num_ctx.get() {
            return *n;
        }
        match self.ollama.show(&self.cfg.ollama.chat_model).await {
            Ok(info) => {
                let n = info.context_length.map(|c| c.min(8192) as u32).unwrap_or(4096);
                *self.num_ctx.get_or_init(|| n)
            }
            Err(_) => 4096,
        }
    }

    /// Writes what is only in memory (the vector index) to disk.
    pub fn flush(&self) -> Result<(), RagError> {
        Ok(self.indexes.persist_vectors()?)
    }
}
