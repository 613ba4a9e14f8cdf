//! The `Rag` service: ingest files (one at a time, or many through a pipeline that packs chunks
//! of several files into full embed calls), answer questions with checked citations, and keep the
//! derived indexes and pending embeddings in step with the store. [`gateway`] puts it behind the
//! adapter-facing [`footnote_adapter::Gateway`] trait.

pub mod access;
pub mod admission;
mod ask;
mod bulk;
mod check;
pub mod citations;
mod error;
pub mod gateway;
mod housekeeping;
pub mod passages;
pub mod prompt;
pub mod queue;
pub mod support;
mod sync;
mod upload;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use footnote_adapter::{Locator, ModelWarmup, WarmupReport};

pub use ask::{Asker, MAX_QUESTION_CHARS, Progress};
pub use bulk::{BulkInput, INDEX_EVERY};
pub use error::RagError;
pub use sync::Settled;
pub use upload::STAGE_BATCH;

use crate::config::{Config, EmbedPrefixes};
use crate::index::bm25::Bm25Error;
use crate::index::lock::Access;
use crate::index::vector::HnswParams;
use crate::index::{IndexError, Indexes};
use crate::ingest::pool::PoolSettings;
use crate::ingest::{Limits, WorkerPool, context};
use crate::llm::{OllamaClient, OllamaError};
use crate::retrieval::rerank::{ChatReranker, Reranker};
use crate::store::{ChunkRow, META_EMBED_DIMS, META_EMBED_INPUT, META_EMBED_MODEL, Store};

/// The queue's name for warm-up calls, which wait their turn like questions.
const WARMUP_QUEUE_USER: &str = "\u{0}warmup";

/// Chunks embedded per back-fill step.
const BACKFILL_BATCH: i64 = 256;

/// A text any embedding model embeds: tells a chunk Ollama refuses from an Ollama that fails.
const EMBED_PROBE: &str = "probe";

/// Whether an embedding error is about the input (so a smaller batch may pass), rather than
/// about Ollama itself (unreachable, slow, no such model).
fn rejects_input(e: &OllamaError) -> bool {
    matches!(
        e,
        OllamaError::ContextTooLong { .. }
            | OllamaError::Api { .. }
            | OllamaError::BadResponse(_)
            | OllamaError::StreamCut
    )
}

/// Builds the tokenizer that measures prompts (a noticeable fraction of a second) on a blocking
/// thread while the store and indexes open, rather than at the first question. Once built,
/// calling this again costs nothing.
fn warm_tokenizer() {
    drop(tokio::task::spawn_blocking(|| crate::ingest::count_tokens("")));
}

/// What the stored embeddings were made from, when that is not today's
/// [`context::EMBEDDING_INPUT_VERSION`] (`None`: current, or nothing embedded yet). Data embedded
/// before the version was recorded made vectors from the chunk text alone.
pub async fn stale_embedding_input(store: &dyn Store) -> Result<Option<String>, RagError> {
    if store.meta(META_EMBED_MODEL).await?.is_none() {
        return Ok(None);
    }
    let input = store.meta(META_EMBED_INPUT).await?.unwrap_or_else(|| "chunk text only".into());
    Ok((input != context::EMBEDDING_INPUT_VERSION).then_some(input))
}

/// The configured reranker: the chat model (or `retrieval.rerank.model`) grading passages.
fn reranker(cfg: &Config) -> Result<Option<Arc<dyn Reranker>>, RagError> {
    let r = &cfg.retrieval.rerank;
    if !r.enabled {
        return Ok(None);
    }
    let model = if r.model.trim().is_empty() { cfg.ollama.chat_model.clone() } else { r.model.clone() };
    Ok(Some(Arc::new(ChatReranker::new(OllamaClient::new(&cfg.ollama)?, model, r.parallel))))
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
    /// Chunks Ollama refused to embed on their own; back-fill leaves them alone until restart.
    skipped_chunks: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// The last warm-up's outcome and when it finished; held while one runs (single flight).
    warming: tokio::sync::Mutex<Option<(Instant, Result<WarmupReport, OllamaError>)>>,
    /// The fair, bounded queue in front of the chat model.
    queue: queue::ModelQueue,
    /// Work in flight, and whether a shutdown began.
    lifecycle: admission::Lifecycle,
    /// The optional second stage (`retrieval.rerank`).
    reranker: Option<Arc<dyn Reranker>>,
}

impl Rag {
    /// Opens the configured store (see [`crate::store::open`]) and the indexes in the data
    /// directory, and catches the indexes up. This process keeps the indexes when their writer
    /// lock is free; otherwise it uses them read-only beside the process that holds it (see
    /// [`Rag::open_as`]).
    pub async fn open(cfg: Config, check: ModelCheck) -> Result<Arc<Rag>, RagError> {
        let access = Self::index_access(&cfg, "library")?;
        Self::open_as(cfg, check, access).await
    }

    /// Takes the writer lock of the data directory's indexes for `command` if it is free,
    /// else says who holds it (see [`crate::index::lock`]).
    pub fn index_access(cfg: &Config, command: &str) -> Result<Access, RagError> {
        let dir = cfg.index_dir();
        crate::index::lock::acquire(&dir, command)
            .map_err(|e| RagError::DataDir { path: dir.display().to_string(), reason: e.to_string() })
    }

    /// [`Rag::open`] with the index access already decided: with [`Access::Write`] this process
    /// keeps the indexes; with [`Access::Read`] it never changes them on disk, applies vector
    /// changes in memory, and its writes reach the BM25 index once the holder catches up
    /// ([`Rag::settle`]).
    pub async fn open_as(cfg: Config, check: ModelCheck, access: Access) -> Result<Arc<Rag>, RagError> {
        warm_tokenizer();
        let data_dir = &cfg.data_dir;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| RagError::DataDir { path: data_dir.display().to_string(), reason: e.to_string() })?;
        let store = crate::store::open(&cfg).await?;
        Self::with_store_as(cfg, store, check, access).await
    }

    /// Builds the service on an already opened store, keeping the indexes when their lock is
    /// free (as [`Rag::open`]).
    pub async fn with_store(cfg: Config, store: Arc<dyn Store>, check: ModelCheck) -> Result<Arc<Rag>, RagError> {
        let access = Self::index_access(&cfg, "library")?;
        Self::with_store_as(cfg, store, check, access).await
    }

    /// Builds the service on an already opened store with the given index access.
    pub async fn with_store_as(
        cfg: Config,
        store: Arc<dyn Store>,
        check: ModelCheck,
        access: Access,
    ) -> Result<Arc<Rag>, RagError> {
        let stored_model = store.meta(META_EMBED_MODEL).await?;
        if let Some(stored) = stored_model.filter(|m| *m != cfg.ollama.embed_model && check == ModelCheck::Refuse) {
            return Err(RagError::EmbedModelChanged { stored, configured: cfg.ollama.embed_model.clone() });
        }
        let dims = store.meta(META_EMBED_DIMS).await?.and_then(|d| d.parse().ok());
        if let Some(stale) = stale_embedding_input(store.as_ref()).await? {
            tracing::warn!(
                made_from = %stale,
                "Stored embeddings were made from chunk text without its title and headings; answers improve after `footnote reindex --embeddings`."
            );
        }
        warm_tokenizer();
        let indexes = Self::open_indexes(&cfg, store.as_ref(), dims, access).await?;
        let rag = Rag {
            ollama: OllamaClient::new(&cfg.ollama)?,
            workers: WorkerPool::new(PoolSettings::from(&cfg.ingest)),
            limits: Limits::from(&cfg.ingest),
            prefixes: cfg.ollama.embed_prefixes(),
            num_ctx: OnceLock::new(),
            backfill: tokio::sync::Mutex::new(()),
            skipped_chunks: std::sync::Mutex::default(),
            warming: tokio::sync::Mutex::new(None),
            queue: queue::ModelQueue::new(cfg.ollama.max_parallel, cfg.limits.queue_max, cfg.limits.queue_per_user),
            lifecycle: admission::Lifecycle::default(),
            reranker: reranker(&cfg)?,
            indexes,
            store,
            cfg,
        };
        rag.indexes.catch_up(rag.store.as_ref()).await?;
        Ok(Arc::new(rag))
    }

    /// Opens the indexes for following `store`. As their keeper, first makes sure they were
    /// derived from this database and are not ahead of it ([`Indexes::align`]). Read-only, a
    /// BM25 index that is missing or being rebuilt by its writer is waited for (up to
    /// [`sync::SETTLE_WAIT`]).
    async fn open_indexes(
        cfg: &Config,
        store: &dyn Store,
        dims: Option<usize>,
        access: Access,
    ) -> Result<Indexes, RagError> {
        let dir = cfg.index_dir();
        let params = HnswParams::from(&cfg.retrieval);
        let holder = match access {
            Access::Write(_) => {
                let indexes = Indexes::open_with(&dir, dims, params, access)?.searching_vectors_in(store);
                indexes.align(store).await?;
                return Ok(indexes);
            }
            Access::Read(holder) => holder,
        };
        let deadline = Instant::now() + sync::SETTLE_WAIT;
        loop {
            match Indexes::open_with(&dir, dims, params, Access::Read(holder.clone())) {
                Err(IndexError::Bm25(Bm25Error::NotReady(_))) if Instant::now() < deadline => {
                    tokio::time::sleep(sync::SETTLE_POLL).await;
                }
                Err(IndexError::Bm25(Bm25Error::NotReady(_))) => {
                    return Err(RagError::IndexesNotReady {
                        holder: holder.describe(),
                        dir: dir.display().to_string(),
                    });
                }
                other => return Ok(other?.searching_vectors_in(store)),
            }
        }
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

    /// The fair, bounded queue in front of the chat model (answers, warm-ups, the reranker).
    pub fn queue(&self) -> &queue::ModelQueue {
        &self.queue
    }

    /// Work in flight, which a shutdown waits for.
    pub fn lifecycle(&self) -> &admission::Lifecycle {
        &self.lifecycle
    }

    /// The reranking stage, when `retrieval.rerank.enabled`.
    pub fn reranker(&self) -> Option<&dyn Reranker> {
        self.reranker.as_deref()
    }

    /// The embedding input of a chunk: the document prefix, then the chunk in its context
    /// ([`context::embedding_input`]: title, headings, text).
    fn embedding_input(&self, title: &str, locator: &Locator, text: &str) -> String {
        format!("{}{}", self.prefixes.document, context::embedding_input(title, locator, text))
    }

    /// Embeds chunks' [`Rag::embedding_input`]s. Records the model and dimension on first use and
    /// refuses vectors of another dimension.
    async fn embed_documents(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, RagError> {
        let vectors = self.ollama.embed(&self.cfg.ollama.embed_model, inputs).await?;
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
                self.store.set_meta(META_EMBED_INPUT, context::EMBEDDING_INPUT_VERSION).await?;
                Ok(())
            }
        }
    }

    /// Embeds every chunk still waiting for its embedding. Stops quietly (returning what it did)
    /// when Ollama is unreachable or keeps failing; the next call continues. A chunk Ollama
    /// refuses on its own while it embeds other text is skipped (see [`Rag::embed_splitting`]):
    /// it stays searchable by keywords, and the back-fill goes on without it.
    pub async fn backfill(&self) -> Result<usize, RagError> {
        let _guard = self.backfill.lock().await;
        let mut done = 0;
        loop {
            let skipped = self.skipped_chunks.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let pending = self.store.pending_embeddings(BACKFILL_BATCH + skipped.len() as i64).await?;
            let pending: Vec<(i64, String)> =
                pending.into_iter().filter(|(id, _)| !skipped.contains(id)).take(BACKFILL_BATCH as usize).collect();
            if pending.is_empty() {
                break;
            }
            // Each chunk is embedded with its document's title and headings, as at ingest.
            let ids: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
            let rows: HashMap<i64, ChunkRow> = self.store.chunks(&ids).await?.into_iter().map(|r| (r.id, r)).collect();
            let inputs: Vec<(i64, String)> = pending
                .iter()
                .map(|(id, text)| {
                    let input = match rows.get(id) {
                        Some(row) => self.embedding_input(&row.title, &row.locator, text),
                        None => self.embedding_input("", &Locator::default(), text),
                    };
                    (*id, input)
                })
                .collect();
            let items = match self.embed_splitting(&inputs).await {
                Ok(items) => items,
                Err(RagError::Ollama(e)) => {
                    error::count_ollama_error(&e);
                    tracing::info!(error = %e, remaining = pending.len(), "embedding back-fill paused");
                    break;
                }
                Err(e) => return Err(e),
            };
            if !items.is_empty() {
                done += self.store.set_embeddings(&items).await?;
                self.indexes.catch_up(self.store.as_ref()).await?;
            }
        }
        if done > 0 {
            tracing::info!(chunks = done, "embeddings back-filled");
        }
        Ok(done)
    }

    /// Embeds `batch`. A part that Ollama rejects (an error about the input, not "unreachable"
    /// or "no such model") is halved until the chunk at fault is alone; a chunk rejected on its
    /// own while Ollama embeds a probe text fine is skipped with a logged reason and left out of
    /// later back-fills of this process. When even the probe fails the error is returned, so the
    /// back-fill pauses instead of skipping every chunk.
    async fn embed_splitting(&self, batch: &[(i64, String)]) -> Result<Vec<(i64, Vec<f32>)>, RagError> {
        let mut out = Vec::with_capacity(batch.len());
        let mut todo = vec![batch];
        let mut ollama_works = None;
        while let Some(part) = todo.pop() {
            let texts: Vec<String> = part.iter().map(|(_, text)| text.clone()).collect();
            let error = match self.embed_documents(&texts).await {
                Ok(vectors) => {
                    out.extend(part.iter().map(|(id, _)| *id).zip(vectors));
                    continue;
                }
                Err(RagError::Ollama(e)) if rejects_input(&e) => e,
                Err(e) => return Err(e),
            };
            if let [(id, _)] = part {
                if ollama_works.is_none() {
                    let probe = self.ollama.embed(&self.cfg.ollama.embed_model, &[EMBED_PROBE.to_owned()]).await;
                    ollama_works = Some(probe.is_ok());
                }
                if ollama_works != Some(true) {
                    return Err(RagError::Ollama(error));
                }
                error::count_ollama_error(&error);
                tracing::warn!(chunk = id, error = %error, "Ollama refuses to embed this chunk; it stays searchable by keywords and the back-fill goes on without it.");
                self.skipped_chunks.lock().unwrap_or_else(|p| p.into_inner()).insert(*id);
            } else {
                let (first, second) = part.split_at(part.len() / 2);
                todo.push(second);
                todo.push(first);
            }
        }
        Ok(out)
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

    /// Loads both models into memory, taking at most `limits.answer_timeout`. Single flight:
    /// whoever asks while a warm-up runs waits for it and shares its outcome, so that many
    /// requests cause one load and hold at most one place in the model queue.
    pub async fn warmup(&self) -> Result<WarmupReport, RagError> {
        let asked = Instant::now();
        let mut last = self.warming.lock().await;
        if let Some((finished, outcome)) = last.as_ref()
            && *finished >= asked
        {
            return outcome.clone().map_err(RagError::Ollama);
        }
        let limit = self.cfg.limits.answer_timeout;
        let outcome = match tokio::time::timeout(limit, self.warm_models()).await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(RagError::Ollama(e))) => Err(e),
            Ok(Err(other)) => return Err(other),
            Err(_) => Err(OllamaError::Timeout { after: limit }),
        };
        *last = Some((Instant::now(), outcome.clone()));
        outcome.map_err(RagError::Ollama)
    }

    /// Loads the chat model (in its turn in the model queue), then the embedding model.
    async fn warm_models(&self) -> Result<WarmupReport, RagError> {
        let started = Instant::now();
        let mut slot = self.queue.enter(WARMUP_QUEUE_USER, false).map_err(|_| RagError::Busy)?;
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
