//! Derived search indexes, rebuilt from the store: [`bm25`] (tantivy) and [`vector`] (HNSW or
//! exact, per collection).
//!
//! Both follow the store's change log. Each keeps the sequence number of the last change it
//! applied (its watermark); [`Indexes::catch_up`] replays what came after, on start, after every
//! write and on `footnote reindex`. A crash between a database commit and an index update is
//! therefore harmless: the next catch-up applies the missing changes.
//!
//! Only the process holding the data directory's writer lock ([`lock`]) changes the files; it is
//! `footnote serve` while it runs. Any other process (a command next to the server) opens them
//! read-only: its catch-up applies the vector changes in memory only, and reads the BM25 index as
//! the writer commits it ([`Indexes::settled`] tells when the writer has caught up). The writer
//! first checks that the indexes were derived from this very database and not past its log
//! ([`origin`]), and rebuilds them when not.

pub mod bm25;
pub mod lock;
mod nearest;
pub mod origin;
pub mod vector;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::ingest::context;
use crate::store::{Change, ChangeOp, Store, StoreError};
use bm25::{Bm25Error, Bm25Index, IndexedChunk};
use lock::{Access, Holder, WriterLock};
use vector::{HnswParams, VectorIndex, VectorIndexError};

pub use nearest::VectorSearch;

/// The BM25 index's directory under the index directory.
const BM25_DIR: &str = "bm25";
/// The vector index's directory under the index directory.
const VECTOR_DIR: &str = "vectors";

/// Removes a file or a directory, unless it is not there.
fn remove(path: &Path) -> Result<(), IndexError> {
    let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(IndexError::Io { path: path.display().to_string(), reason: e.to_string() })
        }
        _ => Ok(()),
    }
}

/// Deletes the indexes under `dir` and their record of the database they followed, for when
/// that database was replaced: the next process to keep them rebuilds them from the new one.
/// Only for the holder of the writer lock, which stays.
pub fn discard(dir: &Path, _lock: &WriterLock) -> Result<(), IndexError> {
    for derived in [BM25_DIR, VECTOR_DIR, origin::ORIGIN_FILE] {
        remove(&dir.join(derived))?;
    }
    Ok(())
}

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
    /// The lock file could not be used.
    #[error("index lock {path}: {reason}")]
    Lock { path: String, reason: String },
    /// A file of the indexes (their record of the database, a directory to remove) could not
    /// be read, written or removed.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    /// Only the process holding the writer lock may do this (rebuild, drop, persist).
    #[error("{} keeps the search indexes in {dir}", holder.describe())]
    NotWriter { holder: Holder, dir: String },
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
    vectors: Arc<nearest::Embedded>,
    /// What answers vector searches: `vectors`, or the database (see [`Self::searching_vectors_in`]).
    searcher: Arc<dyn VectorSearch>,
    /// The database searches vectors itself: the embedded index is not kept.
    vectors_in_database: bool,
    dir: PathBuf,
    vector_dir: PathBuf,
    params: HnswParams,
    sync: tokio::sync::Mutex<Instant>,
    /// Held for as long as these indexes live, when this process keeps them.
    writer: Option<WriterLock>,
    /// Who keeps them, when another process does.
    holder: Option<Holder>,
}

impl Indexes {
    /// Opens the indexes under `dir` (`dir/bm25`, `dir/vectors`) as their writer: takes the
    /// writer lock or fails naming its holder. `dims` is the stored embedding dimension, when
    /// known.
    pub fn open(dir: &Path, dims: Option<usize>, params: HnswParams) -> Result<Self, IndexError> {
        let access = lock::acquire(dir, "index").map_err(|e| IndexError::Lock {
            path: dir.join(lock::LOCK_FILE).display().to_string(),
            reason: e.to_string(),
        })?;
        if let Access::Read(holder) = access {
            return Err(IndexError::NotWriter { holder, dir: dir.display().to_string() });
        }
        Self::open_with(dir, dims, params, access)
    }

    /// Opens the indexes under `dir` with the access this process has: as their writer (they
    /// may be rebuilt if unreadable), or read-only beside the process that keeps them.
    pub fn open_with(dir: &Path, dims: Option<usize>, params: HnswParams, access: Access) -> Result<Self, IndexError> {
        let (bm25, writer, holder) = match access {
            Access::Write(lock) => (Bm25Index::open(&dir.join(BM25_DIR), &lock)?, Some(lock), None),
            Access::Read(holder) => (Bm25Index::open_read_only(&dir.join(BM25_DIR))?, None, Some(holder)),
        };
        let vectors = Arc::new(nearest::Embedded::default());
        let indexes = Indexes {
            bm25,
            searcher: vectors.clone(),
            vectors,
            vectors_in_database: false,
            dir: dir.to_owned(),
            vector_dir: dir.join(VECTOR_DIR),
            params,
            sync: tokio::sync::Mutex::new(Instant::now()),
            writer,
            holder,
        };
        if let Some(dims) = dims {
            indexes.open_vectors(dims)?;
        }
        Ok(indexes)
    }

    /// Lets `store` answer vector searches when it can (pgvector); the embedded vector index is
    /// then neither kept nor searched. Decided once, before the first catch-up.
    pub fn searching_vectors_in(mut self, store: &dyn Store) -> Self {
        if let Some(search) = store.vector_search() {
            self.searcher = search;
            self.vectors_in_database = true;
            self.vectors.slot().take();
        }
        self
    }

    /// Where vector searches go (see [`VectorSearch`]).
    pub fn vector_search(&self) -> &dyn VectorSearch {
        self.searcher.as_ref()
    }

    /// True when this process keeps the indexes (holds the writer lock).
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// The process that keeps the indexes, when it is another one.
    pub fn holder(&self) -> Option<&Holder> {
        self.holder.as_ref()
    }

    fn require_writer(&self) -> Result<(), IndexError> {
        match &self.holder {
            Some(holder) => Err(IndexError::NotWriter { holder: holder.clone(), dir: self.dir.display().to_string() }),
            None => Ok(()),
        }
    }

    fn open_vectors(&self, dims: usize) -> Result<Arc<Vectors>, IndexError> {
        let mut slot = self.vectors.slot();
        if let Some(v) = slot.as_ref().filter(|v| v.index.dims() == dims) {
            return Ok(v.clone());
        }
        let index = if self.is_writer() {
            VectorIndex::open(&self.vector_dir, dims, self.params)?
        } else {
            VectorIndex::open_read_only(&self.vector_dir, dims, self.params)?
        };
        let applied = AtomicI64::new(index.watermark());
        let v = Arc::new(Vectors { index: Arc::new(index), applied });
        *slot = Some(v.clone());
        Ok(v)
    }

    fn vectors(&self) -> Option<Arc<Vectors>> {
        self.vectors.get()
    }

    pub fn bm25(&self) -> &Bm25Index {
        &self.bm25
    }

    /// The vector index, once the embedding dimension is known.
    pub fn vector_index(&self) -> Option<Arc<VectorIndex>> {
        self.vectors().map(|v| v.index.clone())
    }

    /// Applies every change the indexes have not seen yet. Returns how many were applied.
    ///
    /// Read-only, the vector changes are applied in memory and the BM25 index only shows what
    /// its writer committed since the last call.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, IndexError> {
        let mut last_persist = self.sync.lock().await;
        if !self.is_writer() {
            self.bm25.refresh()?;
            if self.vectors().is_none()
                && !self.vectors_in_database
                && let Some(dims) = store.meta(crate::store::META_EMBED_DIMS).await?.and_then(|d| d.parse().ok())
            {
                self.open_vectors(dims)?;
            }
        }
        let mut applied = 0;
        loop {
            // Read-only, the BM25 index is not ours to advance: only vectors are replayed.
            let bm25_mark = if self.is_writer() { self.bm25.watermark() } else { i64::MAX };
            let vectors = self.vectors();
            let vec_mark = vectors.as_ref().map(|v| v.applied.load(Ordering::Acquire)).unwrap_or(bm25_mark);
            let changes = store.changes_since(bm25_mark.min(vec_mark), BATCH).await?;
            let Some(last) = changes.last().map(|c| c.seq) else { break };

            // The first vector seen tells the dimension: open the index and start over from its mark.
            let first_dims = changes.iter().find_map(|c| c.embedding.as_ref().map(Vec::len));
            if let (None, false, Some(dims)) = (&vectors, self.vectors_in_database, first_dims) {
                self.open_vectors(dims)?;
                continue;
            }

            // Indexing is CPU and disk work for a while (HNSW inserts, a tantivy commit): off the
            // async worker, so that the tasks queued behind it (holding database connections)
            // keep running.
            blocking(|| self.apply_changes(&changes, bm25_mark, vectors.as_deref(), vec_mark, last))?;
            applied += changes.len();
        }
        if self.is_writer() && last_persist.elapsed() >= PERSIST_EVERY {
            blocking(|| self.persist_vectors())?;
            *last_persist = Instant::now();
        }
        Ok(applied)
    }

    /// True when the BM25 index holds every change up to `seq` (the vector index follows in
    /// [`catch_up`](Self::catch_up)). Read-only, this is the writer's progress on disk.
    pub fn settled(&self, seq: i64) -> bool {
        self.bm25.watermark() >= seq
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

    /// Writes the vector index to disk with its watermark (read-only: nothing to write).
    pub fn persist_vectors(&self) -> Result<(), IndexError> {
        if !self.is_writer() {
            return Ok(());
        }
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
        self.require_writer()?;
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
        self.require_writer()?;
        let _guard = self.sync.lock().await;
        let taken = self.vectors.slot().take();
        if let Some(v) = taken {
            v.index.clear()?;
            // Nothing before now carries a vector any more: start the new index at the log's end.
            v.index.persist(store.last_seq().await?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_writer_rebuilds_and_readers_see_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        let params = HnswParams::default();
        // An index this build cannot read: a writer would wipe and rebuild it.
        std::fs::create_dir_all(dir.path().join("bm25")).unwrap();
        std::fs::write(dir.path().join("bm25/meta.json"), "not an index").unwrap();

        let writer_access = lock::acquire(dir.path(), lock::SERVE).unwrap();
        assert!(writer_access.is_write());
        let Access::Read(holder) = lock::acquire(dir.path(), "ask").unwrap() else { panic!("two writers") };
        let refused = Indexes::open_with(dir.path(), None, params, Access::Read(holder.clone()));
        assert!(matches!(refused, Err(IndexError::Bm25(Bm25Error::NotReady(_)))));
        assert_eq!(std::fs::read_to_string(dir.path().join("bm25/meta.json")).unwrap(), "not an index");
        let Err(IndexError::NotWriter { holder: named, .. }) = Indexes::open(dir.path(), None, params) else {
            panic!("a second writer opened the indexes");
        };
        assert!(named.is_server());

        let writer = Indexes::open_with(dir.path(), None, params, writer_access).expect("the holder rebuilds");
        assert!(writer.is_writer());
        let reader = Indexes::open_with(dir.path(), None, params, Access::Read(holder)).expect("readable now");
        assert!(!reader.is_writer() && reader.holder().is_some_and(Holder::is_server));
        let chunk = IndexedChunk {
            chunk_id: 7,
            document_id: 1,
            collection: "c",
            title: "Penguins",
            headings: "",
            body: "penguins eat krill",
        };
        writer.bm25().apply(&[chunk], &[], 5).unwrap();
        assert!(!reader.settled(6) && reader.settled(5));
        reader.bm25().refresh().unwrap();
        let collections = ["c".to_owned()];
        assert_eq!(reader.bm25().search(&collections, "krill", 5).unwrap().first().map(|h| h.chunk_id), Some(7));
        assert!(matches!(reader.bm25().clear(), Err(Bm25Error::ReadOnly)));
        assert!(reader.persist_vectors().is_ok(), "a reader has nothing to write");
    }
}
