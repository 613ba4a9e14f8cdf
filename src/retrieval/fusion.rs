//! Combining the BM25 and vector result lists into one ranking, per chunk and per document.
//!
//! Two ways to combine the lists: the linear blend min-max normalises each list's scores to 0..1
//! and adds them by weight; reciprocal rank fusion (Cormack et al.) scores an item
//! `sum(weight / (k + rank))` over the lists it appears in (rank from 1) and needs no score
//! calibration.
//!
//! Document-aware: a document's chunks are evidence for one another. Each list is also read as
//! a list of documents (a document scores its best chunk's score, plus
//! `retrieval.document_evidence` times the scores of its other chunks), and the document lists
//! are fused the same way. A chunk's score is then
//! `(1 − document_weight) · chunk score + document_weight · its document's score`: chunks of a
//! document that both retrievers found rise above a chunk that only one of them liked.

use std::collections::HashMap;

use crate::config::{Fusion, RetrievalConfig};

/// One fused result.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    pub chunk_id: u64,
    pub score: f32,
    /// 1-based rank in the BM25 list, if it was there.
    pub bm25_rank: Option<usize>,
    /// 1-based rank in the vector list, if it was there.
    pub vector_rank: Option<usize>,
}

/// The group a chunk counts toward: its document, or itself when the document is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Group {
    Document(u64),
    Chunk(u64),
}

fn group(documents: &HashMap<u64, u64>, chunk: u64) -> Group {
    documents.get(&chunk).map_or(Group::Chunk(chunk), |d| Group::Document(*d))
}

/// Fuses two best-first lists of `(chunk id, score)`; `documents` maps chunk ids to their
/// documents (a chunk missing from it is a document of its own). Ties keep BM25 order first,
/// then id.
pub fn fuse(
    bm25: &[(u64, f32)],
    vector: &[(u64, f32)],
    documents: &HashMap<u64, u64>,
    cfg: &RetrievalConfig,
) -> Vec<Fused> {
    let chunk_scores = fuse_lists(bm25, vector, cfg);
    let lambda = cfg.document_weight.clamp(0.0, 1.0);
    let doc_scores = if lambda > 0.0 {
        let bm25_docs = by_document(bm25, documents, cfg.document_evidence);
        let vector_docs = by_document(vector, documents, cfg.document_evidence);
        fuse_lists(&bm25_docs, &vector_docs, cfg)
    } else {
        HashMap::new()
    };

    let mut out: Vec<Fused> = Vec::with_capacity(chunk_scores.len());
    let rank_in = |list: &[(u64, f32)]| -> HashMap<u64, usize> {
        list.iter().enumerate().map(|(rank, &(id, _))| (id, rank + 1)).rev().collect()
    };
    let (bm25_ranks, vector_ranks) = (rank_in(bm25), rank_in(vector));
    for (&chunk_id, &score) in &chunk_scores {
        let doc = doc_scores.get(&group(documents, chunk_id)).copied().unwrap_or(0.0);
        out.push(Fused {
            chunk_id,
            score: (1.0 - lambda) * score + lambda * doc,
            bm25_rank: bm25_ranks.get(&chunk_id).copied(),
            vector_rank: vector_ranks.get(&chunk_id).copied(),
        });
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.bm25_rank.unwrap_or(usize::MAX).cmp(&b.bm25_rank.unwrap_or(usize::MAX)))
            .then(a.vector_rank.unwrap_or(usize::MAX).cmp(&b.vector_rank.unwrap_or(usize::MAX)))
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    out
}

/// Fuses two best-first lists of `(key, score)` into a score per key.
fn fuse_lists<K: Copy + Eq + std::hash::Hash>(
    bm25: &[(K, f32)],
    vector: &[(K, f32)],
    cfg: &RetrievalConfig,
) -> HashMap<K, f32> {
    let mut out: HashMap<K, f32> = HashMap::with_capacity(bm25.len() + vector.len());
    for (list, weight) in [(bm25, cfg.bm25_weight), (vector, cfg.vector_weight)] {
        match cfg.fusion {
            Fusion::Rrf => {
                for (rank, &(key, _)) in list.iter().enumerate() {
                    *out.entry(key).or_default() += weight / (cfg.rrf_k + rank as f32 + 1.0);
                }
            }
            Fusion::Linear => {
                for (key, score) in normalise(list) {
                    *out.entry(key).or_default() += weight * score;
                }
            }
        }
    }
    out
}

/// A best-first list of chunks read as a best-first list of documents: each scores its best
/// chunk plus `evidence` times the sum of its other chunks' scores (scores first shifted so that
/// the list's lowest is 0, so that adding evidence never lowers a document).
fn by_document(list: &[(u64, f32)], documents: &HashMap<u64, u64>, evidence: f32) -> Vec<(Group, f32)> {
    let floor = list.iter().map(|x| x.1).fold(f32::INFINITY, f32::min);
    let mut best: Vec<(Group, f32, f32)> = Vec::new();
    let mut at: HashMap<Group, usize> = HashMap::new();
    for &(chunk, score) in list {
        let g = group(documents, chunk);
        match at.get(&g) {
            Some(&i) => best[i].2 += score - floor,
            None => {
                at.insert(g, best.len());
                best.push((g, score - floor, 0.0));
            }
        }
    }
    let mut out: Vec<(Group, f32)> = best.into_iter().map(|(g, top, rest)| (g, top + evidence * rest)).collect();
    // Stable: equal scores keep the order of their best chunks.
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Min-max normalisation to 0..1 (a single result, or all equal, gets 1).
fn normalise<K: Copy>(list: &[(K, f32)]) -> Vec<(K, f32)> {
    let max = list.iter().map(|x| x.1).fold(f32::MIN, f32::max);
    let min = list.iter().map(|x| x.1).fold(f32::MAX, f32::min);
    let span = max - min;
    list.iter().map(|&(id, s)| (id, if span > f32::EPSILON { (s - min) / span } else { 1.0 })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed fusion settings, so that the expected scores do not follow the tuned defaults.
    fn cfg(fusion: Fusion) -> RetrievalConfig {
        RetrievalConfig {
            fusion,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            vector_weight: 1.0,
            document_weight: 0.0,
            document_evidence: 0.0,
            ..RetrievalConfig::default()
        }
    }

    fn none() -> HashMap<u64, u64> {
        HashMap::new()
    }

    fn ids(fused: &[Fused]) -> Vec<u64> {
        fused.iter().map(|f| f.chunk_id).collect()
    }

    #[test]
    fn rrf_rewards_agreement() {
        // 3 is second in both lists and beats 1 and 2, each first in only one.
        let fused = fuse(&[(1, 9.0), (3, 5.0)], &[(2, 0.9), (3, 0.8)], &none(), &cfg(Fusion::Rrf));
        assert_eq!(fused[0].chunk_id, 3);
        assert_eq!(fused[0].bm25_rank, Some(2));
        assert_eq!(fused[0].vector_rank, Some(2));
        let expected = 2.0 / 62.0;
        assert!((fused[0].score - expected).abs() < 1e-6);
        assert_eq!(fused.len(), 3);
    }

    #[test]
    fn rrf_weights_shift_the_balance() {
        let mut c = cfg(Fusion::Rrf);
        c.vector_weight = 2.0;
        let fused = fuse(&[(1, 9.0)], &[(2, 0.9)], &none(), &c);
        assert_eq!(fused[0].chunk_id, 2);
        c.vector_weight = 1.0;
        let fused = fuse(&[(1, 9.0)], &[(2, 0.9)], &none(), &c);
        assert_eq!(fused[0].chunk_id, 1, "a tie goes to the BM25 list");
    }

    #[test]
    fn linear_blend_normalises_each_list() {
        let fused = fuse(&[(1, 20.0), (2, 10.0)], &[(2, 0.9), (1, 0.1)], &none(), &cfg(Fusion::Linear));
        // 1: 1.0 + 0.0, 2: 0.0 + 1.0 -> tie, BM25 order decides.
        assert_eq!(ids(&fused), vec![1, 2]);
        assert!((fused[0].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn one_empty_list_keeps_the_other_order() {
        let fused = fuse(&[], &[(5, 0.5), (4, 0.4)], &none(), &cfg(Fusion::Rrf));
        assert_eq!(ids(&fused), vec![5, 4]);
    }

    #[test]
    fn documents_lift_their_chunks_by_hand() {
        // Chunks 1 and 2 belong to document 10, chunk 3 to document 20, chunk 4 to none known.
        let documents: HashMap<u64, u64> = [(1, 10), (2, 10), (3, 20)].into();
        let bm25 = [(3, 12.0), (1, 10.0), (4, 4.0)];
        let vector = [(2, 0.9), (3, 0.6), (4, 0.5)];
        let mut c = cfg(Fusion::Linear);
        c.document_weight = 0.5;
        let fused = fuse(&bm25, &vector, &documents, &c);
        // Chunk level: bm25 3 → 1, 1 → 0.75, 4 → 0; vector 2 → 1, 3 → 0.25, 4 → 0.
        //   chunk 1: 0.75, chunk 2: 1.0, chunk 3: 1.25, chunk 4: 0.
        // Document level (best chunk): bm25 20 → 12, 10 → 10, 4 → 4 ⇒ 1, 0.75, 0;
        //   vector 10 → 0.9, 20 → 0.6, 4 → 0.5 ⇒ 1, 0.25, 0.
        //   document 10: 1.75, document 20: 1.25, chunk 4 alone: 0.
        // Final: 1: 0.5·0.75 + 0.5·1.75 = 1.25; 2: 0.5·1 + 0.5·1.75 = 1.375; 3: 1.25; 4: 0.
        let expected = [(2, 1.375), (3, 1.25), (1, 1.25), (4, 0.0)];
        for (f, (id, score)) in fused.iter().zip(expected) {
            assert_eq!(f.chunk_id, id, "{fused:?}");
            assert!((f.score - score).abs() < 1e-6, "{fused:?}");
        }
        // Chunk 3 and chunk 1 tie at 1.25: the better BM25 rank (3 is first) goes first.
        // Without the document term, chunk 3 wins outright.
        c.document_weight = 0.0;
        assert_eq!(ids(&fuse(&bm25, &vector, &documents, &c))[0], 3);
    }

    #[test]
    fn several_matching_chunks_are_evidence() {
        // Document 10 has two middling chunks in the BM25 list, document 20 one slightly better.
        let documents: HashMap<u64, u64> = [(1, 10), (2, 10), (3, 20), (4, 30)].into();
        let bm25 = [(3, 10.0), (1, 9.0), (2, 8.0), (4, 2.0)];
        let mut c = cfg(Fusion::Linear);
        c.vector_weight = 0.0;
        c.document_weight = 1.0;
        assert_eq!(fuse(&bm25, &[], &documents, &c)[0].chunk_id, 3, "best chunk only");
        // Evidence 0.5, scores shifted by the floor (2): document 10 = 7 + 0.5 · 6 = 10 > 8.
        c.document_evidence = 0.5;
        let fused = fuse(&bm25, &[], &documents, &c);
        assert_eq!(ids(&fused)[..2], [1, 2], "{fused:?}");
        // Both chunks of document 10 share its score: normalised 1.0.
        assert!((fused[0].score - 1.0).abs() < 1e-6 && (fused[1].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn document_rrf_by_hand() {
        let documents: HashMap<u64, u64> = [(1, 10), (2, 10), (3, 20)].into();
        let mut c = cfg(Fusion::Rrf);
        c.document_weight = 1.0;
        // Documents: bm25 [20, 10], vector [10, 20] → both 1/61 + 1/62.
        let fused = fuse(&[(3, 5.0), (1, 4.0)], &[(2, 0.9), (3, 0.1)], &documents, &c);
        let both = 1.0 / 61.0 + 1.0 / 62.0;
        assert!(fused.iter().all(|f| (f.score - both).abs() < 1e-6), "{fused:?}");
        // Ties: BM25 rank first (3, then 1), then chunk 2 (not in the BM25 list).
        assert_eq!(ids(&fused), vec![3, 1, 2]);
    }
}
