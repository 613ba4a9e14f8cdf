//! The whole check on hand-made answers and sources, with the shipped lexical weights (what runs
//! when no embeddings can be compared) and with the configured weights and toy vectors.

use std::collections::HashMap;

use footnote_adapter::{ATTRIBUTED_MARK, CitedBy, NOT_FOUND_TAG, Support};

use super::lexical::Passage;
use super::*;
use crate::config::SupportConfig;

const SOURCES: [&str; 3] = [
    "Emperor penguins breed during the Antarctic winter. The male keeps the egg warm on his feet for about two months \
     while the female feeds at sea. Penguins eat krill, squid and fish caught while diving.",
    "A volcano erupts when magma rises through the crust. Basaltic lava is runny and forms shield volcanoes such as \
     Mauna Loa. Pyroclastic flows are fast currents of hot gas and ash.",
    "Sourdough rises thanks to a starter of wild yeast and lactic acid bacteria. Feed the starter with flour and water \
     every day. In the survey, sales of sourdough loaves grew by 21 percent last year.",
];

fn check(raw: &str) -> Checked {
    let passages: Vec<Passage> = SOURCES.iter().map(|s| Passage::new(s)).collect();
    let prepared = prepare(raw, SOURCES.len(), false);
    let (scores, weights) = score(&prepared, &passages, None, &[None, None, None], &Weights::LEXICAL);
    decide(&prepared.parsed, &scores, &weights, &HashMap::new())
}

#[test]
fn a_correct_marker_is_kept() {
    let c = check("Penguins eat krill, squid and fish caught while diving [1].");
    assert_eq!(c.text, "Penguins eat krill, squid and fish caught while diving [1].");
    assert_eq!(c.citations, vec![(Support::Supported, c.citations[0].1, CitedBy::Model)]);
    assert_eq!(c.sentences[0].support, Support::Supported);
}

#[test]
fn a_marker_on_the_wrong_source_moves_to_the_right_one() {
    let c = check("A volcano erupts when magma rises through the crust [3].");
    assert_eq!(c.text, format!("A volcano erupts when magma rises through the crust [1{ATTRIBUTED_MARK}]."));
    assert_eq!(c.order, vec![1], "now citing the volcano source");
    assert_eq!(c.citations[0].2, CitedBy::Footnote);
}

#[test]
fn an_unsupported_sentence_is_marked_and_its_marker_dropped() {
    let c = check("Penguins eat krill and fish [1]. Jupiter has ninety-five known moons orbiting it [2].");
    assert_eq!(
        c.text,
        format!("Penguins eat krill and fish [1]. Jupiter has ninety-five known moons orbiting it {NOT_FOUND_TAG}.")
    );
    assert_eq!(c.sentences[1].support, Support::NotFound);
    assert!(c.sentences[1].sources.is_empty());
}

#[test]
fn an_unmarked_answer_gets_footnote_markers_where_a_source_clearly_supports() {
    let c = check(
        "The male penguin keeps the egg warm on his feet while the female feeds at sea. \
         Sourdough rises thanks to a starter of wild yeast. Hope this helps!",
    );
    assert_eq!(
        c.text,
        format!(
            "The male penguin keeps the egg warm on his feet while the female feeds at sea [1{ATTRIBUTED_MARK}]. \
             Sourdough rises thanks to a starter of wild yeast [2{ATTRIBUTED_MARK}]. Hope this helps!"
        )
    );
    assert_eq!(c.order, vec![0, 2]);
    assert!(c.citations.iter().all(|x| x.2 == CitedBy::Footnote));
}

#[test]
fn a_different_number_is_not_support() {
    let c = check("Sales of sourdough loaves grew by 12 percent last year [3].");
    assert_eq!(c.text, format!("Sales of sourdough loaves grew by 12 percent last year {NOT_FOUND_TAG}."));
    let c = check("Sales of sourdough loaves grew by 21 percent last year [3].");
    assert_eq!(c.text, "Sales of sourdough loaves grew by 21 percent last year [1].");
}

#[test]
fn questions_hedges_and_short_sentences_are_not_checked() {
    let c = check("Do you mean penguins? The documents do not mention Jupiter. Thanks [2].");
    assert!(!c.text.contains(NOT_FOUND_TAG), "{}", c.text);
    assert_eq!(c.text, "Do you mean penguins? The documents do not mention Jupiter. Thanks [1].");
}

#[test]
fn the_configured_weights_use_the_cosine_when_vectors_are_there() {
    let weights = Weights::from_config(&SupportConfig::default());
    let passages: Vec<Passage> = SOURCES.iter().map(|s| Passage::new(s)).collect();
    let prepared = prepare("Penguins eat krill [1].", 3, false);
    let claim = vec![ClaimVectors { claim: vec![1.0, 0.0], contrary: vec![-1.0, 0.0] }];
    let near = [1.0f32, 0.0];
    let far = [0.0f32, 1.0];
    let (with_near, _) = score(&prepared, &passages, Some(claim.as_slice()), &[Some(&near[..]), None, None], &weights);
    let (with_far, _) = score(&prepared, &passages, Some(claim.as_slice()), &[Some(&far[..]), None, None], &weights);
    let p = |s: &Scores| s[0].as_ref().map(|r| r[0].0).unwrap_or_default();
    assert!(p(&with_near) > p(&with_far), "{} vs {}", p(&with_near), p(&with_far));
}

#[test]
fn a_source_nearer_the_contrary_of_a_claim_scores_lower() {
    let weights = Weights::from_config(&SupportConfig::default());
    assert!(weights.weights[6] > 0.0, "the shipped weights use the contrary");
    let passages: Vec<Passage> = SOURCES.iter().map(|s| Passage::new(s)).collect();
    let prepared = prepare("Penguins eat krill [1].", 3, false);
    let claim = vec![ClaimVectors { claim: vec![1.0, 0.0, 0.0], contrary: vec![0.0, 1.0, 0.0] }];
    // Both sources are as near the claim (cosine 0.71); the second is as near its contrary too.
    let agrees = [0.7f32, 0.0, 0.7];
    let ambiguous = [0.7f32, 0.7, 0.0];
    assert!((claim[0].against(&agrees).0 - claim[0].against(&ambiguous).0).abs() < 1e-6);
    assert!(
        (claim[0].against(&agrees).1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3
            && claim[0].against(&ambiguous).1.abs() < 1e-6
    );
    let p = |source: &[f32]| {
        let (s, _) = score(&prepared, &passages, Some(claim.as_slice()), &[Some(source), None, None], &weights);
        s[0].as_ref().map(|r| r[0].0).unwrap_or_default()
    };
    assert!(p(&agrees) > p(&ambiguous), "{} vs {}", p(&agrees), p(&ambiguous));
}
