//! Hybrid retrieval: BM25 top-k and vector top-k inside the asker's collections, fused, then the
//! chunks loaded from the store and packed into the model's context budget.
//!
//! The collection filter is part of both searches (a required clause in tantivy, one index per
//! collection for vectors), never a filter applied after the top-k cut.

pub mod fusion;
pub mod rerank;

use std::collections::HashMap;

use crate::config::RetrievalConfig;
use crate::index::bm25::Bm25Params;
use crate::index::{IndexError, Indexes};
use crate::store::{ChunkRow, Store};

pub use fusion::{Fused, fuse};

/// Which retrievers to use (the evaluation compares them; answers use `Hybrid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Hybrid,
    Bm25,
    Vector,
}

/// A retrieved chunk with its fused score.
#[derive(Clone, Debug)]
pub struct Source {
    pub chunk: ChunkRow,
    pub score: f32,
    pub bm25_rank: Option<usize>,
    pub vector_rank: Option<usize>,
}

/// Ranked chunk ids for `query` within `collections`. `query_vector` is `None` when the
/// embedding model is unreachable: BM25 alone then ranks.
pub async fn rank(
    indexes: &Indexes,
    cfg: &RetrievalConfig,
    collections: &[String],
    query: &str,
    query_vector: Option<&[f32]>,
    mode: Mode,
) -> Result<Vec<Fused>, IndexError> {
    let bm25_hits = if mode != Mode::Vector && cfg.bm25_top_k > 0 {
        indexes.bm25().search_with(collections, query, cfg.bm25_top_k, &Bm25Params::from(cfg))?
    } else {
        Vec::new()
    };
    let vector: Vec<(u64, f32)> = match query_vector {
        Some(q) if mode != Mode::Bm25 && cfg.vector_top_k > 0 => {
            indexes.vector_search().nearest(collections, q, cfg.vector_top_k).await?
        }
        _ => Vec::new(),
    };
    let mut documents: HashMap<u64, u64> = bm25_hits.iter().map(|h| (h.chunk_id, h.document_id)).collect();
    if cfg.document_weight > 0.0 {
        let unknown: Vec<u64> = vector.iter().map(|v| v.0).filter(|id| !documents.contains_key(id)).collect();
        if !unknown.is_empty() {
            documents.extend(indexes.bm25().document_ids(&unknown)?);
        }
    }
    let bm25: Vec<(u64, f32)> = bm25_hits.iter().map(|h| (h.chunk_id, h.score)).collect();
    Ok(fuse(&bm25, &vector, &documents, cfg))
}

/// Ranks, then loads the best `limit` chunks from the store, best first.
pub async fn retrieve(
    indexes: &Indexes,
    store: &dyn Store,
    cfg: &RetrievalConfig,
    collections: &[String],
    query: &str,
    query_vector: Option<&[f32]>,
    limit: usize,
) -> Result<Vec<Source>, IndexError> {
    let ranked = rank(indexes, cfg, collections, query, query_vector, Mode::Hybrid).await?;
    let top: Vec<&Fused> = ranked.iter().take(limit).collect();
    let ids: Vec<i64> = top.iter().map(|f| f.chunk_id as i64).collect();
    let mut rows = store.chunks(&ids).await?;
    let mut out = Vec::with_capacity(top.len());
    for f in top {
        if let Some(pos) = rows.iter().position(|r| r.id == f.chunk_id as i64) {
            let chunk = rows.swap_remove(pos);
            // Defence in depth: the indexes filter by collection; the store row must agree.
            if collections.contains(&chunk.collection) {
                out.push(Source { chunk, score: f.score, bm25_rank: f.bm25_rank, vector_rank: f.vector_rank });
            } else {
                tracing::error!(chunk = f.chunk_id, "index returned a chunk outside the asked collections; dropped");
            }
        }
    }
    Ok(out)
}
