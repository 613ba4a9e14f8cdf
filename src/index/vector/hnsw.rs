//! The HNSW graph of one large collection, backed by usearch.
//!
//! Keys are chunk ids. Vectors arrive normalised, so usearch's cosine distance equals
//! `1 - dot`. The graph may store quantized vectors ([`Quantization`]); the caller rescoring
//! the returned candidates with its own f32 copies keeps the final scores exact.

use std::path::Path;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::{HnswParams, Quantization, VectorIndexError};

/// Thread contexts reserved in each usearch index: the most searches that can run at once
/// inside one graph. A search that finds none free falls back to exact search.
const SEARCH_THREADS: usize = 64;

/// One collection's HNSW graph.
pub(crate) struct Hnsw {
    index: Index,
}

fn backend(context: &str, error: impl std::fmt::Display) -> VectorIndexError {
    VectorIndexError::Backend(format!("usearch {context}: {error}"))
}

fn scalar_kind(quantization: Quantization) -> ScalarKind {
    match quantization {
        Quantization::F32 => ScalarKind::F32,
        Quantization::F16 => ScalarKind::F16,
        Quantization::I8 => ScalarKind::I8,
    }
}

fn options(dims: usize, params: &HnswParams, quantization: Quantization) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        metric: MetricKind::Cos,
        quantization: scalar_kind(quantization),
        connectivity: params.connectivity,
        expansion_add: params.ef_construction,
        expansion_search: params.ef_search,
        multi: false,
    }
}

fn path_str(path: &Path) -> Result<&str, VectorIndexError> {
    path.to_str().ok_or_else(|| VectorIndexError::Backend(format!("path is not UTF-8: {}", path.display())))
}

impl Hnsw {
    /// An empty graph with room for `capacity` vectors.
    pub(crate) fn new(
        dims: usize,
        params: &HnswParams,
        quantization: Quantization,
        capacity: usize,
    ) -> Result<Self, VectorIndexError> {
        let index = Index::new(&options(dims, params, quantization)).map_err(|e| backend("new", e))?;
        let hnsw = Hnsw { index };
        hnsw.reserve(capacity)?;
        Ok(hnsw)
    }

    /// Loads a graph saved by [`Hnsw::save`], checking that it matches what is expected.
    pub(crate) fn load(
        path: &Path,
        dims: usize,
        params: &HnswParams,
        quantization: Quantization,
        expected_len: usize,
    ) -> Result<Self, VectorIndexError> {
        let file = path_str(path)?;
        let meta = Index::metadata(file).map_err(|e| backend("metadata", e))?;
        if meta.dimensions as usize != dims || meta.quantization != scalar_kind(quantization) || meta.multi {
            return Err(VectorIndexError::Corrupt(format!(
                "{}: stored graph has {} dims and {:?} scalars, expected {dims} and {:?}",
                path.display(),
                meta.dimensions,
                meta.quantization,
                scalar_kind(quantization)
            )));
        }
        let index = Index::new(&options(dims, params, quantization)).map_err(|e| backend("new", e))?;
        index.load(file).map_err(|e| backend("load", e))?;
        if index.size() != expected_len {
            return Err(VectorIndexError::Corrupt(format!(
                "{}: graph holds {} vectors, expected {expected_len}",
                path.display(),
                index.size()
            )));
        }
        index.change_expansion_search(params.ef_search);
        index.change_expansion_add(params.ef_construction);
        let hnsw = Hnsw { index };
        hnsw.reserve(expected_len)?;
        Ok(hnsw)
    }

    /// Writes the graph to `path` (not synced: the caller syncs).
    pub(crate) fn save(&self, path: &Path) -> Result<(), VectorIndexError> {
        self.index.save(path_str(path)?).map_err(|e| backend("save", e))
    }

    /// Makes room for `additional` more vectors (growing geometrically).
    pub(crate) fn reserve(&self, additional: usize) -> Result<(), VectorIndexError> {
        let needed = self.index.size() + additional;
        if needed <= self.index.capacity() && self.index.capacity() > 0 {
            return Ok(());
        }
        let capacity = needed.max(self.index.capacity() * 2).max(1024);
        self.index.reserve_capacity_and_threads(capacity, SEARCH_THREADS).map_err(|e| backend("reserve", e))
    }

    /// Adds `vector` under `id`; the caller removed any previous vector of `id` and reserved
    /// room (adds may run concurrently from several threads once room is reserved).
    pub(crate) fn add(&self, id: u64, vector: &[f32]) -> Result<(), VectorIndexError> {
        self.index.add(id, vector).map_err(|e| backend("add", e))
    }

    /// Removes the vector of `id`, if any.
    pub(crate) fn remove(&self, id: u64) -> Result<(), VectorIndexError> {
        self.index.remove(id).map(|_| ()).map_err(|e| backend("remove", e))
    }

    /// Approximate nearest candidates: up to `count` keys, closest first.
    pub(crate) fn candidates(&self, query: &[f32], count: usize) -> Result<Vec<u64>, VectorIndexError> {
        Ok(self.index.search(query, count).map_err(|e| backend("search", e))?.keys)
    }

    /// Bytes held by the graph and its (possibly quantized) vectors.
    pub(crate) fn memory_usage(&self) -> usize {
        self.index.memory_usage()
    }
}
