//! Derived search indexes, rebuilt from the store: [`bm25`] (tantivy) and [`vector`] (HNSW or
//! exact, per collection).
//!
//! Both follow the store's change log. Each keeps the sequence number of the last change it
//! applied (its watermark); [`Indexes::catch_up`] replays what came after, on start, after every
//! write and on `footnote reindex`. A crash between a database commit and an index update is
//! therefore harmless: the next catch-up applies the missing changes.

pub mod bm25;
pub mod vector;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::ingest::context;
use crate::store::{Change, ChangeOp, Store, StoreError};
use bm25::{Bm25Error, Bm25Index, IndexedChunk};
use vector::{HnswParams, VectorIndex, VectorIndexError};

/// Changes read from the log per step.
const BATCH: i64 = 2000;
/// The vector index is written to disk at most this often (it is replayed from the log after a
/// crash, so this only bounds the replay).
const PERSIST_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("BM25 index: {0}")]
    Bm25(#[from] Bm25Error),
    #[error("vector index: {0}")]
    Vector(#[from] VectorIndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Vectors {
    index: Arc<VectorIndex>,
    /// Last change applied in memory (the persisted one is `index.watermark()`).
    applied: AtomicI64,
}

/// Runs blocking work from async code: on a multi-threaded runtime the worker hands its other
/// tasks to another thread first ([`tokio::task::block_in_place`]); elsewhere (a current-thread
/// runtime, no runtime) it simply runs.
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The BM25 and vector indexes of one Footnote instance.
pub struct Indexes {
    bm25: Bm25Index,
    vectors: RwLock<Option<Arc<Vectors>>>,
    vector_dir: PathBuf,
    params: HnswParams,
    sync: tokio::sync::Mutex<Instant>,
}

impl Indexes {
    /// Opens the indexes under `dir` (`dir/bm25`, `dir/vectors`). `dims` is the stored embedding
    /// dimension, when known.
    pub fn open(dir: &Path, dims: Option<usize>, params: HnswParams) -> Result<Self, IndexError> {
        let bm25 = Bm25Index::open(&dir.join("bm25"))?;
        let indexes = Indexes {
            bm25,
            vectors: RwLock::new(None),
            vector_dir: dir.join("vectors"),
            params,
            sync: tokio::sync::Mutex::new(Instant::now()),
        };
        if let Some(dims) = dims {
            indexes.open_vectors(dims)?;
        }
        Ok(indexes)
    }

    fn open_vectors(&self, dims: usize) -> Result<Arc<Vectors>, IndexError> {
        let mut slot = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.as_ref().filter(|v| v.index.dims() == dims) {
            return Ok(v.clone());
        }
        let index = VectorIndex::open(&self.vector_dir, dims, self.params)?;
        let applied = AtomicI64::new(index.watermark());
        let v = Arc::new(Vectors { index: Arc::new(index), applied });
        *slot = Some(v.clone());
        Ok(v)
    }

    fn vectors(&self) -> Option<Arc<Vectors>> {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn bm25(&self) -> &Bm25Index {
        &self.bm25
    }

    /// The vector index, once the embedding dimension is known.
    pub fn vector_index(&self) -> Option<Arc<VectorIndex>> {
        self.vectors().map(|v| v.index.clone())
    }

    /// Applies every change the indexes have not seen yet. Returns how many were applied.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, IndexError> {
        let mut last_persist = self.sync.lock().await;
        let mut applied = 0;
        loop {
            let bm25_mark = self.bm25.watermark();
            let vectors = self.vectors();
            let vec_mark = vectors.as_ref().map(|v| v.applied.load(Ordering::Acquire)).unwrap_or(bm25_mark);
            let changes = store.changes_since(bm25_mark.min(vec_mark), BATCH).await?;
            let Some(last) = changes.last().map(|c| c.seq) else { break };

            // The first vector seen tells the dimension: open the index and start over from its mark.
            let first_dims = changes.iter().find_map(|c| c.embedding.as_ref().map(Vec::len));
            if let (None, false, Some(dims)) = (&vectors, store.searches_vectors(), first_dims) {
                self.open_vectors(dims)?;
                continue;
            }

            // Indexing is CPU and disk work for a while (HNSW inserts, a tantivy commit): off the
            // async worker, so that the tasks queued behind it (holding database connections)
            // keep running.
            blocking(|| self.apply_changes(&changes, bm25_mark, vectors.as_deref(), vec_mark, last))?;
            applied += changes.len();
        }
        if last_persist.elapsed() >= PERSIST_EVERY {
            blocking(|| self.persist_vectors())?;
            *last_persist = Instant::now();
        }
        Ok(applied)
    }

    /// Applies one batch of the log: to BM25 what is after `bm25_mark`, to the vectors what is
    /// after `vec_mark`. Blocking.
    fn apply_changes(
        &self,
        changes: &[Change],
        bm25_mark: i64,
        vectors: Option<&Vectors>,
        vec_mark: i64,
        last: i64,
    ) -> Result<(), IndexError> {
        let mut added = Vec::new();
        let mut deletes = Vec::new();
        for change in changes.iter().filter(|c| c.seq > bm25_mark) {
            match (change.op, &change.content) {
                (ChangeOp::Add, Some((title, text))) => {
                    let headings = change.locator.as_ref().map(|l| context::headings(title, l).join("\n"));
                    added.push((change, title.as_str(), headings.unwrap_or_default(), text.as_str()));
                }
                (ChangeOp::Delete, _) => deletes.push(change.chunk_id as u64),
                _ => {}
            }
        }
        let adds: Vec<IndexedChunk<'_>> = added
            .iter()
            .map(|(change, title, headings, body)| IndexedChunk {
                chunk_id: change.chunk_id as u64,
                document_id: change.document_id.unwrap_or_default() as u64,
                collection: &change.collection,
                title,
                headings,
                body,
            })
            .collect();
        if last > bm25_mark {
            self.bm25.apply(&adds, &deletes, last)?;
        }
        if let Some(v) = vectors {
            // Chunk ids are never reused, so applying a batch's vectors before its deletions
            // gives the same result as log order, and lets the index insert in bulk.
            let mut upserts: BTreeMap<&str, Vec<(u64, &[f32])>> = BTreeMap::new();
            let mut removals = Vec::new();
            for change in changes.iter().filter(|c| c.seq > vec_mark) {
                match (change.op, &change.embedding) {
                    (ChangeOp::Add | ChangeOp::Embed, Some(embedding)) => upserts
                        .entry(change.collection.as_str())
                        .or_default()
                        .push((change.chunk_id as u64, embedding.as_slice())),
                    (ChangeOp::Delete, _) => removals.push((change.collection.as_str(), change.chunk_id as u64)),
                    _ => {}
                }
            }
            for (collection, items) in upserts {
                v.index.upsert_many(collection, items)?;
            }
            for (collection, id) in removals {
                v.index.remove(collection, id)?;
            }
            v.applied.fetch_max(last, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Writes the vector index to disk with its watermark.
    pub fn persist_vectors(&self) -> Result<(), IndexError> {
        if let Some(v) = self.vectors() {
            let mark = v.applied.load(Ordering::Acquire);
            if mark != v.index.watermark() {
                v.index.persist(mark)?;
            }
        }
        Ok(())
    }

    /// Empties both indexes so the next catch-up rebuilds them from the whole log.
    pub async fn clear(&self) -> Result<(), IndexError> {
        let _guard = self.sync.lock().await;
        self.bm25.clear()?;
        if let Some(v) = self.vectors() {
            v.index.clear()?;
            v.applied.store(0, Ordering::Release);
        }
        Ok(())
    }

    /// Drops the vector index (the embedding model changed); the next vectors open a new one.
    pub async fn drop_vectors(&self, store: &dyn Store) -> Result<(), IndexError> {
        let _guard = self.sync.lock().await;
        let taken = self.vectors.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(v) = taken {
            v.index.clear()?;
            // Nothing before now carries a vector any more: start the new index at the log's end.
            v.index.persist(store.last_seq().await?)?;
        }
        Ok(())
    }
}
