//! Hand-computed cases for the metrics.

use super::*;

fn run(items: &[(&str, f64)]) -> Vec<(String, f64)> {
    items.iter().map(|(id, s)| (id.to_string(), *s)).collect()
}

fn qrels(items: &[(&str, i32)]) -> Judgements {
    items.iter().map(|(id, g)| (id.to_string(), *g)).collect()
}

/// A run whose scores fall with the position, so that the order is the one written.
fn in_order(ids: &[&str]) -> Vec<(String, f64)> {
    ids.iter().enumerate().map(|(i, id)| (id.to_string(), 100.0 - i as f64)).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn one_relevant_document_at_rank_three() {
    let s = evaluate_query(&in_order(&["x", "y", "r", "z"]), &qrels(&[("r", 1)])).unwrap();
    // DCG = 1 / log2(4) = 0.5, IDCG = 1.
    assert!(close(s.ndcg_at_10, 0.5), "{s:?}");
    assert!(close(s.mrr_at_10, 1.0 / 3.0));
    assert!(close(s.recall_at_10, 1.0));
    assert!(close(s.recall_at_100, 1.0));
}

#[test]
fn graded_relevance_uses_the_linear_gain() {
    // qrels a:2, b:1; ranking b, x, a.
    // DCG = 1/log2(2) + 0 + 2/log2(4) = 2; IDCG = 2/log2(2) + 1/log2(3) = 2.630930.
    let s = evaluate_query(&in_order(&["b", "x", "a"]), &qrels(&[("a", 2), ("b", 1)])).unwrap();
    let expected = 2.0 / (2.0 + 1.0 / 3f64.log2());
    assert!(close(s.ndcg_at_10, expected), "{} vs {expected}", s.ndcg_at_10);
    assert!((s.ndcg_at_10 - 0.760_19).abs() < 1e-5);
    // The exponential gain (2^g - 1) would give 2.5 / 3.630930 = 0.6885: not what trec_eval does.
    assert!(close(s.mrr_at_10, 1.0), "any grade above 0 counts as relevant");
    assert!(close(s.recall_at_10, 1.0));
}

#[test]
fn zero_and_negative_grades_are_not_relevant() {
    let q = qrels(&[("a", 0), ("b", -1), ("r", 1)]);
    let s = evaluate_query(&in_order(&["a", "b", "r"]), &q).unwrap();
    assert!(close(s.mrr_at_10, 1.0 / 3.0));
    assert!(close(s.recall_at_10, 1.0), "only r is relevant");
    assert!(close(s.ndcg_at_10, 0.5));
}

#[test]
fn ties_are_broken_by_document_id_descending() {
    // a and b tie: b (the larger id) ranks first whatever the input order.
    for items in [[("a", 1.0), ("b", 1.0), ("c", 0.5)], [("b", 1.0), ("a", 1.0), ("c", 0.5)]] {
        assert_eq!(ranked(&run(&items)), vec!["b", "a", "c"]);
    }
    let s = evaluate_query(&run(&[("a", 1.0), ("b", 1.0)]), &qrels(&[("a", 1)])).unwrap();
    assert!(close(s.mrr_at_10, 0.5));
    assert!(close(s.ndcg_at_10, 1.0 / 3f64.log2()));
    // Byte order, not numeric: "9" > "10".
    assert_eq!(ranked(&run(&[("10", 2.0), ("9", 2.0)])), vec!["9", "10"]);
}

#[test]
fn scores_decide_before_input_order_and_nan_goes_last() {
    let r = run(&[("low", 0.1), ("nan", f64::NAN), ("high", 0.9)]);
    assert_eq!(ranked(&r), vec!["high", "low", "nan"]);
}

#[test]
fn duplicates_count_once_at_their_best_rank() {
    // x twice, then r: r is second, not third.
    let s = evaluate_query(&run(&[("x", 0.9), ("x", 0.8), ("r", 0.7)]), &qrels(&[("r", 1)])).unwrap();
    assert!(close(s.mrr_at_10, 0.5));
    // A relevant document listed twice is found once: recall 1/2, and its gain is not doubled.
    let q = qrels(&[("r", 1), ("s", 1)]);
    let s = evaluate_query(&run(&[("r", 0.9), ("r", 0.8)]), &q).unwrap();
    assert!(close(s.recall_at_10, 0.5));
    assert!(close(s.ndcg_at_10, 1.0 / (1.0 + 1.0 / 3f64.log2())));
}

#[test]
fn cut_offs_apply() {
    // Relevant documents at ranks 1 and 11.
    let mut ids: Vec<String> = (0..12).map(|i| format!("d{i:02}")).collect();
    ids[0] = "r1".into();
    ids[10] = "r2".into();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let q = qrels(&[("r1", 1), ("r2", 1)]);
    let s = evaluate_query(&in_order(&ids), &q).unwrap();
    assert!(close(s.recall_at_10, 0.5));
    assert!(close(s.recall_at_100, 1.0));
    assert!(close(s.mrr_at_10, 1.0));
    // DCG@10 = 1; IDCG@10 = 1 + 1/log2(3).
    assert!(close(s.ndcg_at_10, 1.0 / (1.0 + 1.0 / 3f64.log2())));

    // The first relevant document at rank 11 is outside MRR@10.
    let fillers: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let mut late: Vec<&str> = fillers.iter().map(String::as_str).collect();
    late.push("r1");
    let s = evaluate_query(&in_order(&late), &qrels(&[("r1", 1)])).unwrap();
    assert!(close(s.mrr_at_10, 0.0));
    assert!(close(s.ndcg_at_10, 0.0));
    assert!(close(s.recall_at_100, 1.0));
}

#[test]
fn nothing_retrieved_scores_zero() {
    let s = evaluate_query(&[], &qrels(&[("r", 1)])).unwrap();
    assert_eq!(s, QueryScores::default());
}

#[test]
fn queries_without_relevant_documents_are_left_out() {
    assert_eq!(evaluate_query(&in_order(&["a"]), &qrels(&[("a", 0)])), None);
    assert_eq!(evaluate_query(&in_order(&["a"]), &Judgements::new()), None);
    assert_eq!(ndcg_at(&["a"], &Judgements::new(), 10), None);
    assert_eq!(recall_at(&["a"], &Judgements::new(), 10), None);
    assert_eq!(mrr_at(&["a"], &Judgements::new(), 10), None);
}

#[test]
fn aggregate_averages_the_defined_queries_only() {
    let perfect = QueryScores { ndcg_at_10: 1.0, recall_at_10: 1.0, recall_at_100: 1.0, mrr_at_10: 1.0 };
    let half = QueryScores { ndcg_at_10: 0.5, recall_at_10: 0.0, recall_at_100: 1.0, mrr_at_10: 0.5 };
    let s = aggregate(&[Some(perfect), None, Some(half)]);
    assert_eq!(s.queries, 2);
    assert_eq!(s.without_relevant, 1);
    assert!(close(s.ndcg_at_10, 0.75));
    assert!(close(s.recall_at_10, 0.5));
    assert!(close(s.recall_at_100, 1.0));
    assert!(close(s.mrr_at_10, 0.75));
    let empty = aggregate(&[None]);
    assert_eq!((empty.queries, empty.without_relevant, empty.ndcg_at_10), (0, 1, 0.0));
}
