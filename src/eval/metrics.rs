//! Ranking metrics as pure functions: nDCG@k, Recall@k and MRR@k, computed the way
//! `trec_eval` (and so BEIR, through `pytrec_eval`) computes them.
//!
//! - A *run* for one query is a list of `(document id, score)`. It is ordered by score, highest
//!   first; **ties are broken by document id in descending byte order**, as `trec_eval` does, so
//!   that equal scores always give the same ranking whatever order they arrived in. A document
//!   listed more than once counts once, at its best position (later copies are dropped).
//! - *Qrels* grade documents with integers. A grade above 0 is relevant; 0 or below is judged
//!   not relevant and counts as unjudged for every metric here.
//! - nDCG uses the linear gain of `trec_eval`'s `ndcg_cut` (gain = grade, not 2^grade − 1) and
//!   the discount 1 / log2(rank + 1); the ideal ranking is the qrels' relevant grades sorted.
//! - A query without any relevant document has no defined recall or nDCG: [`evaluate_query`]
//!   returns `None` and [`aggregate`] counts it apart instead of averaging it in as 0 or 1.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// Relevance grades of one query's judged documents.
pub type Judgements = BTreeMap<String, i32>;

/// The four metrics of one query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct QueryScores {
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

/// Averages over the queries of one mode, with how many were averaged and how many left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    /// Queries averaged.
    pub queries: usize,
    /// Queries whose qrels name no relevant document (left out of the averages).
    pub without_relevant: usize,
}

/// Orders a run: score descending, ties by document id descending, duplicates dropped (the
/// best-placed copy stays). NaN scores sort last.
pub fn ranked(run: &[(String, f64)]) -> Vec<&str> {
    let mut order: Vec<&(String, f64)> = run.iter().collect();
    order.sort_by(|a, b| {
        let by_score = match (a.1.is_nan(), b.1.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => b.1.total_cmp(&a.1),
        };
        by_score.then_with(|| b.0.cmp(&a.0))
    });
    let mut seen = HashSet::new();
    order.into_iter().map(|(id, _)| id.as_str()).filter(|id| seen.insert(*id)).collect()
}

fn grade(qrels: &Judgements, id: &str) -> i32 {
    qrels.get(id).copied().unwrap_or(0)
}

fn relevant_count(qrels: &Judgements) -> usize {
    qrels.values().filter(|g| **g > 0).count()
}

/// nDCG@k of a ranking (already ordered, without duplicates). `None` without relevant documents.
pub fn ndcg_at(ranking: &[&str], qrels: &Judgements, k: usize) -> Option<f64> {
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 =
        ranking.iter().take(k).enumerate().map(|(i, id)| f64::from(grade(qrels, id).max(0)) * discount(i)).sum();
    let mut ideal: Vec<i32> = qrels.values().copied().filter(|g| *g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, g)| f64::from(*g) * discount(i)).sum();
    (idcg > 0.0).then(|| dcg / idcg)
}

/// Share of the relevant documents found in the first `k`. `None` without relevant documents.
pub fn recall_at(ranking: &[&str], qrels: &Judgements, k: usize) -> Option<f64> {
    let relevant = relevant_count(qrels);
    if relevant == 0 {
        return None;
    }
    let found = ranking.iter().take(k).filter(|id| grade(qrels, id) > 0).count();
    Some(found as f64 / relevant as f64)
}

/// 1 / rank of the first relevant document within the first `k` (0 when there is none there).
/// `None` without relevant documents.
pub fn mrr_at(ranking: &[&str], qrels: &Judgements, k: usize) -> Option<f64> {
    if relevant_count(qrels) == 0 {
        return None;
    }
    let first = ranking.iter().take(k).position(|id| grade(qrels, id) > 0);
    Some(first.map_or(0.0, |i| 1.0 / (i + 1) as f64))
}

/// All four metrics of one query's run, or `None` when its qrels name no relevant document.
pub fn evaluate_query(run: &[(String, f64)], qrels: &Judgements) -> Option<QueryScores> {
    let ranking = ranked(run);
    Some(QueryScores {
        ndcg_at_10: ndcg_at(&ranking, qrels, 10)?,
        recall_at_10: recall_at(&ranking, qrels, 10)?,
        recall_at_100: recall_at(&ranking, qrels, 100)?,
        mrr_at_10: mrr_at(&ranking, qrels, 10)?,
    })
}

/// Mean of each metric over the evaluated queries; `None`s are counted in `without_relevant`.
pub fn aggregate(per_query: &[Option<QueryScores>]) -> Summary {
    let scored: Vec<&QueryScores> = per_query.iter().flatten().collect();
    let n = scored.len();
    let mean = |f: fn(&QueryScores) -> f64| {
        if n == 0 { 0.0 } else { scored.iter().map(|s| f(s)).sum::<f64>() / n as f64 }
    };
    Summary {
        ndcg_at_10: mean(|s| s.ndcg_at_10),
        recall_at_10: mean(|s| s.recall_at_10),
        recall_at_100: mean(|s| s.recall_at_100),
        mrr_at_10: mean(|s| s.mrr_at_10),
        queries: n,
        without_relevant: per_query.len() - n,
    }
}

#[cfg(test)]
mod tests;
