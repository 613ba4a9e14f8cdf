//! The embedded vector index: chunk embeddings per collection, searched by cosine similarity.
//!
//! The database is the source of truth; this index is derived data kept in a directory and
//! caught up from the database's change log by a sequence-number [watermark](VectorIndex::watermark).
//!
//! # Design
//! - **One index per collection.** A question searches only its scope's collections, so the
//!   collection filter is structural: nothing can leak across collections, and a small
//!   collection inside a large index still gets its full `k` (no filtering after a top-k cut).
//!   A query over several collections searches each and merges by score.
//! - Every collection keeps its vectors normalised in a flat f32 store. Below
//!   [`HnswParams::exact_below`] vectors it is searched exactly (vectorised dot products).
//!   From that size on it also gets an HNSW graph (usearch, cosine), whose candidates are
//!   rescored with the exact f32 vectors, so every returned score is an exact cosine similarity
//!   and scores from different collections compare.
//! - Persistence ([`VectorIndex::persist`]) writes only the collections changed since the last
//!   persist, saves each graph (no rebuild on restart), and commits through an atomic manifest
//!   replacement; see the `store` module for the layout.

mod collection;
mod hnsw;
mod persist;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use collection::{Collection, GraphConfig, TopK, dot};
use persist::Manifest;

/// Attempts at reading files that the keeping process may be replacing (read-only opening).
const READ_ATTEMPTS: usize = 5;

/// HNSW tuning, usually taken from [`crate::config::RetrievalConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node (usearch `connectivity`, HNSW `M`).
    pub connectivity: usize,
    /// Search breadth while inserting.
    pub ef_construction: usize,
    /// Search breadth while querying (higher: better recall, slower).
    pub ef_search: usize,
    /// Collections with fewer vectors than this are searched exactly, without a graph.
    pub exact_below: usize,
}

impl From<&crate::config::RetrievalConfig> for HnswParams {
    fn from(config: &crate::config::RetrievalConfig) -> Self {
        HnswParams {
            connectivity: config.hnsw_connectivity,
            ef_construction: config.hnsw_ef_construction,
            ef_search: config.hnsw_ef_search,
            exact_below: config.exact_below,
        }
    }
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams::from(&crate::config::RetrievalConfig::default())
    }
}

/// How the HNSW graph stores its copy of the vectors. Search results are rescored with the
/// exact f32 vectors whatever the choice; quantization trades graph memory and distance speed
/// against the quality of the candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantization {
    /// Full precision.
    F32,
    /// IEEE half precision: half the graph's vector memory.
    F16,
    /// 8-bit integers: a quarter of the graph's vector memory. The default: with f32
    /// rescoring it measured the same recall as F16 and F32 (0.99 at 100k x 768) with the
    /// fastest build and the least memory (see `benches/retrieval.rs`).
    #[default]
    I8,
}

/// What can go wrong with the vector index.
#[derive(Debug, thiserror::Error)]
pub enum VectorIndexError {
    /// Reading or writing the index directory failed.
    #[error("vector index I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A stored file does not hold what the manifest says.
    #[error("vector index data is corrupt: {0}")]
    Corrupt(String),
    /// A vector or query of the wrong length.
    #[error("vector has {got} dimensions, the index holds {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A vector with NaN or infinite components, or a reserved id.
    #[error("invalid vector: {0}")]
    InvalidVector(String),
    /// The HNSW library reported an error.
    #[error("vector index backend: {0}")]
    Backend(String),
    /// A write was asked of an index opened read-only (another process keeps its files).
    #[error("the vector index is open read-only: another process keeps it")]
    ReadOnly,
}

/// Chunk embeddings of every collection, with per-collection exact or HNSW search.
///
/// `Send + Sync`: searches share a read lock and run concurrently; changes take the write lock.
pub struct VectorIndex {
    dir: PathBuf,
    dims: usize,
    config: GraphConfig,
    collections: RwLock<HashMap<String, Collection>>,
    watermark: AtomicI64,
    generation: AtomicU64,
    /// Serialises persists (and `clear`, which persists the empty state).
    persist_lock: Mutex<()>,
    /// Opened beside the process that keeps the files: nothing is written.
    read_only: bool,
}

impl VectorIndex {
    /// Opens (or creates) the index stored in `dir` for vectors of `dims` dimensions. A stored
    /// index with another dimension or unreadable files → it starts empty with watermark 0 (the
    /// caller then replays everything from the DB) and logs why.
    pub fn open(dir: &Path, dims: usize, params: HnswParams) -> Result<Self, VectorIndexError> {
        Self::open_with(dir, dims, params, Quantization::default())
    }

    /// [`VectorIndex::open`] with an explicit graph [`Quantization`] (for tuning and benchmarks).
    pub fn open_with(
        dir: &Path,
        dims: usize,
        params: HnswParams,
        quantization: Quantization,
    ) -> Result<Self, VectorIndexError> {
        if dims == 0 {
            return Err(VectorIndexError::InvalidVector("vectors must have at least one dimension".into()));
        }
        std::fs::create_dir_all(dir)?;
        let config = GraphConfig { params, quantization };
        let manifest = persist::read_manifest(dir).unwrap_or_else(|error| {
            tracing::warn!(dir = %dir.display(), %error, "vector index manifest unreadable; starting empty");
            None
        });
        let generation = manifest.as_ref().map_or(0, |m| m.generation).max(persist::max_generation(dir));
        let (collections, watermark) = Self::load(dir, manifest, dims, &config).unwrap_or_else(|error| {
            tracing::warn!(dir = %dir.display(), %error, "vector index files unreadable; starting empty");
            (HashMap::new(), 0)
        });
        Ok(Self::assemble(dir, dims, config, collections, watermark, generation, false))
    }

    /// Opens, for searching only, the index that another process keeps (it holds the writer
    /// lock): nothing in `dir` is created, written or deleted, and [`persist`](Self::persist)
    /// and [`clear`](Self::clear) are refused. Changes made after the stored watermark are
    /// applied in memory by the caller. Should the keeping process replace the files while they
    /// are read, the reading starts over; an index that stays unreadable opens empty with
    /// watermark 0 (the caller then replays the whole log in memory).
    pub fn open_read_only(dir: &Path, dims: usize, params: HnswParams) -> Result<Self, VectorIndexError> {
        if dims == 0 {
            return Err(VectorIndexError::InvalidVector("vectors must have at least one dimension".into()));
        }
        let config = GraphConfig { params, quantization: Quantization::default() };
        let mut last_error = None;
        for _ in 0..READ_ATTEMPTS {
            let loaded = persist::read_manifest(dir).and_then(|manifest| Self::load(dir, manifest, dims, &config));
            match loaded {
                Ok((collections, watermark)) => {
                    return Ok(Self::assemble(dir, dims, config, collections, watermark, 0, true));
                }
                Err(error) => last_error = Some(error),
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if let Some(error) = last_error {
            tracing::warn!(dir = %dir.display(), %error, "vector index unreadable; rebuilding it in memory from the database");
        }
        Ok(Self::assemble(dir, dims, config, HashMap::new(), 0, 0, true))
    }

    /// The collections and watermark a manifest describes (empty for no manifest, or one of
    /// another dimension).
    fn load(
        dir: &Path,
        manifest: Option<Manifest>,
        dims: usize,
        config: &GraphConfig,
    ) -> Result<(HashMap<String, Collection>, i64), VectorIndexError> {
        match manifest {
            None => Ok((HashMap::new(), 0)),
            Some(manifest) if manifest.dims != dims => {
                tracing::warn!(
                    dir = %dir.display(), stored = manifest.dims, wanted = dims,
                    "vector index holds vectors of another dimension (embedding model changed?); starting empty"
                );
                Ok((HashMap::new(), 0))
            }
            Some(manifest) => Ok((persist::read_all(dir, &manifest, dims, config)?, manifest.watermark)),
        }
    }

    fn assemble(
        dir: &Path,
        dims: usize,
        config: GraphConfig,
        collections: HashMap<String, Collection>,
        watermark: i64,
        generation: u64,
        read_only: bool,
    ) -> Self {
        VectorIndex {
            dir: dir.to_owned(),
            dims,
            config,
            collections: RwLock::new(collections),
            watermark: AtomicI64::new(watermark),
            generation: AtomicU64::new(generation),
            persist_lock: Mutex::new(()),
            read_only,
        }
    }

    /// Dimensions of every vector in the index.
    pub fn dims(&self) -> usize {
        self.dims
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Collection>> {
        self.collections.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Collection>> {
        self.collections.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks `vector` and returns it scaled to unit length (a zero vector stays zero).
    fn normalised(&self, vector: &[f32]) -> Result<Vec<f32>, VectorIndexError> {
        if vector.len() != self.dims {
            return Err(VectorIndexError::DimensionMismatch { expected: self.dims, got: vector.len() });
        }
        if vector.iter().any(|v| !v.is_finite()) {
            return Err(VectorIndexError::InvalidVector("NaN or infinite component".into()));
        }
        let norm = dot(vector, vector).sqrt();
        Ok(if norm > 0.0 && norm.is_finite() { vector.iter().map(|v| v / norm).collect() } else { vector.to_vec() })
    }

    /// Adds or replaces the vector of chunk `id` in `collection` (normalises it).
    pub fn upsert(&self, collection: &str, id: u64, vector: &[f32]) -> Result<(), VectorIndexError> {
        self.upsert_many(collection, [(id, vector)])
    }

    /// Adds or replaces many vectors of `collection` at once (normalises them). Faster than
    /// one [`upsert`](VectorIndex::upsert) each for large batches: graph inserts use every core.
    pub fn upsert_many<'a>(
        &self,
        collection: &str,
        items: impl IntoIterator<Item = (u64, &'a [f32])>,
    ) -> Result<(), VectorIndexError> {
        let items = items
            .into_iter()
            .map(|(id, vector)| {
                if id == u64::MAX {
                    return Err(VectorIndexError::InvalidVector("chunk id u64::MAX is reserved".into()));
                }
                Ok((id, self.normalised(vector)?))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Ok(());
        }
        let mut collections = self.write();
        let target = collections.entry(collection.to_owned()).or_insert_with(|| Collection::new(self.dims));
        let result = target.upsert_many(&items, &self.config);
        if target.len() == 0 {
            collections.remove(collection);
        }
        result
    }

    /// Removes chunk `id` from `collection`; a no-op if it is absent.
    pub fn remove(&self, collection: &str, id: u64) -> Result<(), VectorIndexError> {
        let mut collections = self.write();
        let Some(target) = collections.get_mut(collection) else {
            return Ok(());
        };
        let result = target.remove(id, &self.config).map(|_| ());
        if target.len() == 0 {
            collections.remove(collection);
        }
        result
    }

    /// Removes every vector of `collection`.
    pub fn remove_collection(&self, collection: &str) -> Result<(), VectorIndexError> {
        self.write().remove(collection);
        Ok(())
    }

    /// Top `k` by cosine similarity (higher = closer) across `collections` only.
    pub fn search(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, VectorIndexError> {
        self.search_with(collections, query, k, false)
    }

    /// Exact top `k`, for recall measurements and tests.
    pub fn search_exact(
        &self,
        collections: &[String],
        query: &[f32],
        k: usize,
    ) -> Result<Vec<(u64, f32)>, VectorIndexError> {
        self.search_with(collections, query, k, true)
    }

    fn search_with(
        &self,
        names: &[String],
        query: &[f32],
        k: usize,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>, VectorIndexError> {
        let query = self.normalised(query)?;
        let collections = self.read();
        let mut top = TopK::new(k);
        let mut searched = HashSet::with_capacity(names.len());
        for name in names {
            if !searched.insert(name.as_str()) {
                continue;
            }
            let Some(collection) = collections.get(name) else {
                continue;
            };
            if exact {
                collection.search_exact(&query, &mut top);
            } else {
                collection.search(&query, k, &self.config, &mut top);
            }
        }
        // A chunk lives in one collection; should the same id appear in two, keep its best.
        let mut seen = HashSet::with_capacity(k);
        Ok(top.into_sorted().into_iter().filter(|s| seen.insert(s.id)).map(|s| (s.id, s.score)).collect())
    }

    /// Vectors in the whole index.
    pub fn len(&self) -> usize {
        self.read().values().map(Collection::len).sum()
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vectors in `collection` (0 when unknown).
    pub fn collection_len(&self, collection: &str) -> usize {
        self.read().get(collection).map_or(0, Collection::len)
    }

    /// Approximate bytes held in memory: f32 vectors, ids, and graphs.
    pub fn memory_usage(&self) -> usize {
        self.read().values().map(Collection::memory_usage).sum()
    }

    /// The watermark of the index stored in `dir`, read from its manifest alone (`None`: no
    /// index there, or an unreadable one, which opens empty).
    pub fn stored_watermark(dir: &Path) -> Option<i64> {
        persist::read_manifest(dir).ok().flatten().map(|m| m.watermark)
    }

    /// Sequence number of the last change applied (stored with the index).
    pub fn watermark(&self) -> i64 {
        self.watermark.load(Ordering::Acquire)
    }

    /// Persists everything durably with `watermark` (write temp files + fsync + rename, so a
    /// crash leaves the old or the new state, never a torn one). Only collections changed since
    /// the last persist are rewritten. Searches go on meanwhile; changes wait.
    pub fn persist(&self, watermark: i64) -> Result<(), VectorIndexError> {
        if self.read_only {
            return Err(VectorIndexError::ReadOnly);
        }
        let _persisting = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let collections = self.read();
        self.commit(&collections, watermark)
    }

    /// Writes the changed collections' files and a new manifest. The caller holds `persist_lock`.
    fn commit(&self, collections: &HashMap<String, Collection>, watermark: i64) -> Result<(), VectorIndexError> {
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let mut entries = Vec::with_capacity(collections.len());
        let mut written = Vec::new();
        let mut names: Vec<&String> = collections.keys().collect();
        names.sort();
        for name in names {
            let collection = &collections[name];
            match collection.current_entry() {
                Some(entry) => entries.push(entry),
                None => {
                    let entry = persist::write_collection(&self.dir, name, generation, self.dims, collection)?;
                    written.push((collection, collection.version(), entry.clone()));
                    entries.push(entry);
                }
            }
        }
        let manifest = Manifest { format: 1, dims: self.dims, watermark, generation, collections: entries };
        persist::write_manifest(&self.dir, &manifest)?;
        self.generation.store(generation, Ordering::Release);
        self.watermark.store(watermark, Ordering::Release);
        for (collection, version, entry) in written {
            collection.mark_stored_at(version, entry);
        }
        persist::remove_unreferenced(&self.dir, &manifest);
        Ok(())
    }

    /// Drops everything (for `footnote reindex`), durably: a crash afterwards reopens an empty
    /// index with watermark 0, so the replay starts over.
    pub fn clear(&self) -> Result<(), VectorIndexError> {
        if self.read_only {
            return Err(VectorIndexError::ReadOnly);
        }
        let _persisting = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut collections = self.write();
        collections.clear();
        self.commit(&collections, 0)
    }
}
