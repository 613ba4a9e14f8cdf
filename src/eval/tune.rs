//! Picking the support check's weights and thresholds from labelled pairs: a logistic
//! regression over the check's features (gradient descent on standardised features with a
//! little L2), then thresholds on its probability, and the metrics that judge them.

use serde::Serialize;

use crate::rag::support::{FEATURE_COUNT, NUMBER_MISSING, Weights};

/// Recall of supported pairs the `weak` threshold keeps (a model's marker below it is dropped).
pub const WEAK_RECALL: f64 = 0.95;
/// Precision of supported pairs the `attribute` threshold reaches (Footnote adds a marker). Not
/// higher: SciFact's claims are never copied from their abstracts, and at 0.9 even a sentence
/// copied word for word from a source would stay below the threshold.
pub const ATTRIBUTE_PRECISION: f64 = 0.75;
const STEPS: usize = 4000;
const RATE: f64 = 0.5;
const L2: f64 = 1e-3;

/// Precision, recall and F1 of "supported" at one threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Prf {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Precision, recall, F1 of `predicted` against `truth`.
pub fn prf(predicted: &[bool], truth: &[bool], threshold: f32) -> Prf {
    let tp = predicted.iter().zip(truth).filter(|(p, t)| **p && **t).count() as f64;
    let fp = predicted.iter().zip(truth).filter(|(p, t)| **p && !**t).count() as f64;
    let fn_ = predicted.iter().zip(truth).filter(|(p, t)| !**p && **t).count() as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if tp > 0.0 { 2.0 * tp / (2.0 * tp + fp + fn_) } else { 0.0 };
    Prf { threshold, precision, recall, f1 }
}

/// ROC-AUC of `scores` for `truth` (ties count half).
pub fn auc(scores: &[f32], truth: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0f64; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    let positives = truth.iter().filter(|t| **t).count() as f64;
    let negatives = truth.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let sum: f64 = ranks.iter().zip(truth).filter(|(_, t)| **t).map(|(r, _)| r).sum();
    (sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// The threshold with the best F1 for "score ≥ threshold and not vetoed".
pub fn best_f1(scores: &[f32], vetoed: &[bool], truth: &[bool]) -> Prf {
    let mut candidates: Vec<f32> = scores.to_vec();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = Prf::default();
    for t in candidates {
        let predicted: Vec<bool> = scores.iter().zip(vetoed).map(|(s, v)| *s >= t && !v).collect();
        let here = prf(&predicted, truth, t);
        if here.f1 > best.f1 {
            best = here;
        }
    }
    best
}

/// The highest threshold whose recall of supported pairs is at least `recall`.
fn threshold_for_recall(scores: &[f32], truth: &[bool], recall: f64) -> f32 {
    let mut positives: Vec<f32> = scores.iter().zip(truth).filter(|(_, t)| **t).map(|(s, _)| *s).collect();
    positives.sort_by(|a, b| b.total_cmp(a));
    let keep = ((positives.len() as f64) * recall).ceil() as usize;
    positives.get(keep.saturating_sub(1)).copied().unwrap_or(0.0)
}

/// The lowest threshold at or above `floor` whose precision is at least `precision`.
fn threshold_for_precision(scores: &[f32], vetoed: &[bool], truth: &[bool], precision: f64, floor: f32) -> f32 {
    let mut candidates: Vec<f32> = scores.iter().copied().filter(|s| *s >= floor).collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    for t in candidates {
        let predicted: Vec<bool> = scores.iter().zip(vetoed).map(|(s, v)| *s >= t && !v).collect();
        if prf(&predicted, truth, t).precision >= precision {
            return t;
        }
    }
    1.0
}

/// A fitted model: raw-scale weights and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub bias: f32,
    pub weights: [f32; FEATURE_COUNT],
}

/// Fits a logistic regression of `truth` on `rows`, using only the features in `used` (the
/// others get weight 0).
pub fn fit(rows: &[[f32; FEATURE_COUNT]], truth: &[bool], used: [bool; FEATURE_COUNT]) -> Fit {
    let n = rows.len().max(1) as f64;
    let mut mean = [0f64; FEATURE_COUNT];
    let mut sd = [0f64; FEATURE_COUNT];
    for k in 0..FEATURE_COUNT {
        mean[k] = rows.iter().map(|r| f64::from(r[k])).sum::<f64>() / n;
        let var = rows.iter().map(|r| (f64::from(r[k]) - mean[k]).powi(2)).sum::<f64>() / n;
        sd[k] = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    let x: Vec<[f64; FEATURE_COUNT]> = rows
        .iter()
        .map(|r| {
            let mut z = [0f64; FEATURE_COUNT];
            for k in 0..FEATURE_COUNT {
                z[k] = if used[k] { (f64::from(r[k]) - mean[k]) / sd[k] } else { 0.0 };
            }
            z
        })
        .collect();
    let y: Vec<f64> = truth.iter().map(|t| if *t { 1.0 } else { 0.0 }).collect();
    let (mut w, mut b) = ([0f64; FEATURE_COUNT], 0f64);
    for _ in 0..STEPS {
        let mut grad = [0f64; FEATURE_COUNT];
        let mut grad_b = 0.0;
        for (xi, yi) in x.iter().zip(&y) {
            let z: f64 = b + (0..FEATURE_COUNT).map(|k| w[k] * xi[k]).sum::<f64>();
            let err = 1.0 / (1.0 + (-z).exp()) - yi;
            for k in 0..FEATURE_COUNT {
                grad[k] += err * xi[k];
            }
            grad_b += err;
        }
        for k in 0..FEATURE_COUNT {
            w[k] -= RATE * (grad[k] / n + L2 * w[k]);
        }
        b -= RATE * grad_b / n;
    }
    let mut weights = [0f32; FEATURE_COUNT];
    let mut bias = b;
    for k in 0..FEATURE_COUNT {
        if used[k] {
            weights[k] = (w[k] / sd[k]) as f32;
            bias -= w[k] * mean[k] / sd[k];
        }
    }
    Fit { bias: bias as f32, weights }
}

/// Fits on the pairs and picks the three thresholds: `supported` at the best F1, `weak` keeping
/// [`WEAK_RECALL`] of the supported pairs, `attribute` at [`ATTRIBUTE_PRECISION`].
pub fn tune(rows: &[[f32; FEATURE_COUNT]], truth: &[bool], used: [bool; FEATURE_COUNT]) -> Weights {
    let fit = fit(rows, truth, used);
    let mut weights = Weights { bias: fit.bias, weights: fit.weights, supported: 0.5, weak: 0.5, attribute: 0.5 };
    let vetoed: Vec<bool> = rows.iter().map(|r| r[NUMBER_MISSING] > 0.5).collect();
    let scores: Vec<f32> = rows.iter().map(|r| probability(&weights, r)).collect();
    let best = best_f1(&scores, &vetoed, truth);
    weights.supported = best.threshold;
    weights.weak = threshold_for_recall(&scores, truth, WEAK_RECALL).min(best.threshold);
    weights.attribute = threshold_for_precision(&scores, &vetoed, truth, ATTRIBUTE_PRECISION, best.threshold);
    weights
}

/// The model's probability for one row of features.
pub fn probability(weights: &Weights, row: &[f32; FEATURE_COUNT]) -> f32 {
    let z: f32 = weights.bias + weights.weights.iter().zip(row).map(|(w, x)| w * x).sum::<f32>();
    1.0 / (1.0 + (-z).exp())
}

/// The fold of each row: rows of one group (such as one statement) always share a fold, so that
/// no fold is scored by a model that saw the same statement with another passage. Groups go to
/// the folds in turn, in the order they first appear.
pub fn folds_by_group<K: std::hash::Hash + Eq>(groups: &[K], folds: usize) -> Vec<usize> {
    let mut fold_of: std::collections::HashMap<&K, usize> = std::collections::HashMap::new();
    groups
        .iter()
        .map(|g| {
            let next = fold_of.len() % folds.max(1);
            *fold_of.entry(g).or_insert(next)
        })
        .collect()
}

/// Cross-validated figures: each of `folds` parts scored by a model fitted on the others, the
/// rows of one group (`groups`, such as one statement's pairs) kept in one part.
pub fn cross_validate<K: std::hash::Hash + Eq>(
    rows: &[[f32; FEATURE_COUNT]],
    truth: &[bool],
    groups: &[K],
    used: [bool; FEATURE_COUNT],
    folds: usize,
) -> (f64, Prf) {
    let fold_of = folds_by_group(groups, folds);
    let mut scores = vec![0f32; rows.len()];
    for fold in 0..folds {
        let train: Vec<usize> = (0..rows.len()).filter(|&i| fold_of[i] != fold).collect();
        let fitted = fit(
            &train.iter().map(|&i| rows[i]).collect::<Vec<_>>(),
            &train.iter().map(|&i| truth[i]).collect::<Vec<_>>(),
            used,
        );
        let weights = Weights { bias: fitted.bias, weights: fitted.weights, supported: 0.5, weak: 0.5, attribute: 0.5 };
        for i in (0..rows.len()).filter(|&i| fold_of[i] == fold) {
            scores[i] = probability(&weights, &rows[i]);
        }
    }
    let vetoed: Vec<bool> = rows.iter().map(|r| r[NUMBER_MISSING] > 0.5).collect();
    (auc(&scores, truth), best_f1(&scores, &vetoed, truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_reversed_and_tied_scores() {
        let truth = [false, false, true, true];
        assert!((auc(&[0.1, 0.2, 0.8, 0.9], &truth) - 1.0).abs() < 1e-9);
        assert!(auc(&[0.9, 0.8, 0.2, 0.1], &truth).abs() < 1e-9);
        assert!((auc(&[0.5; 4], &truth) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_group_stays_in_one_fold_and_groups_take_turns() {
        let groups = [7, 7, 3, 9, 3, 1, 7, 4, 5];
        let folds = folds_by_group(&groups, 3);
        assert_eq!(folds, vec![0, 0, 1, 2, 1, 0, 0, 1, 2]);
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                assert!(g != h || folds[i] == folds[j], "group {g} split across folds");
            }
        }
    }

    #[test]
    fn the_fit_separates_a_separable_feature_and_thresholds_follow() {
        let rows: Vec<[f32; FEATURE_COUNT]> =
            (0..40).map(|i| [0.0, if i % 2 == 0 { 0.9 } else { 0.1 }, 0.0, 0.0, 0.0, 0.0, 0.0]).collect();
        let truth: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let w = tune(&rows, &truth, [false, true, false, false, false, false, false]);
        assert!(w.weights[1] > 0.0 && w.weights[0] == 0.0, "{w:?}");
        let scores: Vec<f32> = rows.iter().map(|r| probability(&w, r)).collect();
        assert_eq!(best_f1(&scores, &[false; 40], &truth).f1, 1.0);
        assert!(w.weak <= w.supported && w.supported <= w.attribute, "{w:?}");
    }
}
