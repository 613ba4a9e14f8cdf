//! Combining the BM25 and vector result lists into one ranking.
//!
//! Reciprocal rank fusion (Cormack et al.) scores a chunk `sum(weight / (k + rank))` over the
//! lists it appears in (rank from 1); it needs no score calibration, which suits BM25 scores and
//! cosine similarities that live on different scales. The linear blend min-max normalises each
//! list's scores to 0..1 and adds them by weight.

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

/// Fuses two best-first lists of `(chunk id, score)`; ties keep BM25 order first, then id.
pub fn fuse(bm25: &[(u64, f32)], vector: &[(u64, f32)], cfg: &RetrievalConfig) -> Vec<Fused> {
    let mut out: Vec<Fused> = Vec::with_capacity(bm25.len() + vector.len());
    let mut add = |id: u64, score: f32, bm25_rank: Option<usize>, vector_rank: Option<usize>| match out
        .iter_mut()
        .find(|f| f.chunk_id == id)
    {
        Some(f) => {
            f.score += score;
            f.bm25_rank = f.bm25_rank.or(bm25_rank);
            f.vector_rank = f.vector_rank.or(vector_rank);
        }
        None => out.push(Fused { chunk_id: id, score, bm25_rank, vector_rank }),
    };
    match cfg.fusion {
        Fusion::Rrf => {
            for (rank, &(id, _)) in bm25.iter().enumerate() {
                add(id, cfg.bm25_weight / (cfg.rrf_k + rank as f32 + 1.0), Some(rank + 1), None);
            }
            for (rank, &(id, _)) in vector.iter().enumerate() {
                add(id, cfg.vector_weight / (cfg.rrf_k + rank as f32 + 1.0), None, Some(rank + 1));
            }
        }
        Fusion::Linear => {
            for (rank, (id, score)) in normalise(bm25).into_iter().enumerate() {
                add(id, cfg.bm25_weight * score, Some(rank + 1), None);
            }
            for (rank, (id, score)) in normalise(vector).into_iter().enumerate() {
                add(id, cfg.vector_weight * score, None, Some(rank + 1));
            }
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.bm25_rank.unwrap_or(usize::MAX).cmp(&b.bm25_rank.unwrap_or(usize::MAX)))
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    out
}

/// Min-max normalisation to 0..1 (a single result, or all equal, gets 1).
fn normalise(list: &[(u64, f32)]) -> Vec<(u64, f32)> {
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
        RetrievalConfig { fusion, rrf_k: 60.0, bm25_weight: 1.0, vector_weight: 1.0, ..RetrievalConfig::default() }
    }

    #[test]
    fn rrf_rewards_agreement() {
        // 3 is second in both lists and beats 1 and 2, each first in only one.
        let fused = fuse(&[(1, 9.0), (3, 5.0)], &[(2, 0.9), (3, 0.8)], &cfg(Fusion::Rrf));
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
        let fused = fuse(&[(1, 9.0)], &[(2, 0.9)], &c);
        assert_eq!(fused[0].chunk_id, 2);
        c.vector_weight = 1.0;
        let fused = fuse(&[(1, 9.0)], &[(2, 0.9)], &c);
        assert_eq!(fused[0].chunk_id, 1, "a tie goes to the BM25 list");
    }

    #[test]
    fn linear_blend_normalises_each_list() {
        let fused = fuse(&[(1, 20.0), (2, 10.0)], &[(2, 0.9), (1, 0.1)], &cfg(Fusion::Linear));
        // 1: 1.0 + 0.0, 2: 0.0 + 1.0 -> tie, BM25 order decides.
        assert_eq!(fused.iter().map(|f| f.chunk_id).collect::<Vec<_>>(), vec![1, 2]);
        assert!((fused[0].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn one_empty_list_keeps_the_other_order() {
        let fused = fuse(&[], &[(5, 0.5), (4, 0.4)], &cfg(Fusion::Rrf));
        assert_eq!(fused.iter().map(|f| f.chunk_id).collect::<Vec<_>>(), vec![5, 4]);
    }
}
