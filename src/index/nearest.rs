//! Vector search behind one trait, chosen once: the embedded index of the data directory
//! (HNSW or exact, per collection), or the database's own (pgvector) when the store offers it
//! ([`Store::vector_search`](crate::store::Store::vector_search)). Retrieval asks
//! [`Indexes::vector_search`](super::Indexes::vector_search) and never learns which it is.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{IndexError, Vectors};

/// Nearest chunks to a query embedding.
#[async_trait]
pub trait VectorSearch: Send + Sync {
    /// The top `k` chunk ids of `collections` by cosine similarity to `query` (higher is closer).
    /// Empty when nothing is indexed yet or `query` has another dimension than the index.
    async fn nearest(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError>;
}

/// The embedded vector index, opened once the embedding dimension is known.
#[derive(Default)]
pub(super) struct Embedded(RwLock<Option<Arc<Vectors>>>);

impl Embedded {
    pub(super) fn get(&self) -> Option<Arc<Vectors>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Vectors>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl VectorSearch for Embedded {
    async fn nearest(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        match self.get() {
            Some(v) if query.len() == v.index.dims() => Ok(v.index.search(collections, query, k)?),
            _ => Ok(Vec::new()),
        }
    }
}
