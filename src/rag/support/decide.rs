//! What the scores mean for the answer: markers kept, moved, dropped or added, and sentences
//! tagged as not found in the sources. Pure: the scores (and the model judge's verdicts, if any)
//! go in, the checked text and the support of each sentence and citation come out.

use std::collections::HashMap;

use footnote_adapter::{CitedBy, SentenceCheck, Support};

use super::answer::{By, Mark, Parsed, render};
use super::{Level, Weights};

/// One sentence's scores against each source (`None` for a sentence that makes no claim):
/// (probability, the number veto).
pub type Scores = Vec<Option<Vec<(f32, bool)>>>;

/// The checked answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    pub text: String,
    /// 0-based source indexes in the order the text numbers them.
    pub order: Vec<usize>,
    pub sentences: Vec<SentenceCheck>,
    /// Per entry of `order`: support, its score, and who cited it.
    pub citations: Vec<(Support, Option<f32>, CitedBy)>,
    /// (sentence, source) pairs the scores leave in doubt, for the model judge.
    pub doubts: Vec<(usize, usize)>,
}

fn support(level: Level) -> Support {
    match level {
        Level::Supported => Support::Supported,
        Level::Partial => Support::Partial,
        Level::None => Support::NotFound,
    }
}

/// Applies the check to `parsed` (the model's answer) given `scores`, the `weights` and the
/// judge's `verdicts` ((sentence, source) → supported?), and renders the result.
pub fn decide(
    parsed: &Parsed,
    scores: &Scores,
    weights: &Weights,
    verdicts: &HashMap<(usize, usize), bool>,
) -> Checked {
    let mut parsed = parsed.clone();
    let level = |s: usize, j: usize| -> Level {
        if let Some(&yes) = verdicts.get(&(s, j)) {
            return if yes { Level::Supported } else { Level::None };
        }
        match scores.get(s).and_then(Option::as_ref).and_then(|row| row.get(j)) {
            Some(&(p, veto)) => weights.level(p, veto),
            None => Level::None,
        }
    };
    let probability =
        |s: usize, j: usize| scores.get(s).and_then(Option::as_ref).and_then(|r| r.get(j)).map_or(0.0, |x| x.0);
    let mut doubts = Vec::new();
    let mut outcomes: Vec<(Support, Option<f32>)> = Vec::new();
    for s in 0..parsed.sentences.len() {
        let Some(row) = scores.get(s).and_then(Option::as_ref) else {
            outcomes.push((Support::Unchecked, None));
            continue;
        };
        // The best source that supports the sentence, if any.
        let best = (0..row.len())
            .filter(|&j| level(s, j) == Level::Supported)
            .max_by(|&a, &b| probability(s, a).total_cmp(&probability(s, b)));
        let groups = parsed.sentences[s].groups();
        let cited: Vec<usize> = groups.iter().flat_map(|&g| parsed.groups[g].iter().map(|m| m.source)).collect();
        for &g in &groups {
            let mut kept: Vec<Mark> = Vec::new();
            for mark in parsed.groups[g].clone() {
                let replacement = best.filter(|b| !cited.contains(b));
                let new = match (level(s, mark.source), replacement) {
                    (Level::Supported, _) => Some(mark),
                    (_, Some(b)) => Some(Mark { source: b, by: By::Footnote }),
                    (Level::Partial, None) => Some(mark),
                    (Level::None, None) => None,
                };
                if let Some(new) = new.filter(|n| !kept.iter().any(|k| k.source == n.source)) {
                    kept.push(new);
                }
            }
            parsed.groups[g] = kept;
        }
        let marks: Vec<usize> = groups.iter().flat_map(|&g| parsed.groups[g].iter().map(|m| m.source)).collect();
        let outcome = if marks.is_empty() {
            let top = (0..row.len()).max_by(|&a, &b| probability(s, a).total_cmp(&probability(s, b)));
            match top.map(|j| (j, level(s, j))) {
                Some((j, Level::Supported))
                    if verdicts.contains_key(&(s, j)) || probability(s, j) >= weights.attribute =>
                {
                    parsed.sentences[s].added.push(Mark { source: j, by: By::Footnote });
                    (Support::Supported, Some(probability(s, j)))
                }
                Some((j, Level::Supported | Level::Partial)) => {
                    doubts.push((s, j));
                    (Support::Partial, Some(probability(s, j)))
                }
                Some((j, Level::None)) => {
                    parsed.sentences[s].not_found = true;
                    (Support::NotFound, Some(probability(s, j)))
                }
                None => {
                    parsed.sentences[s].not_found = true;
                    (Support::NotFound, None)
                }
            }
        } else {
            let top = marks.iter().copied().max_by_key(|&j| level(s, j)).unwrap_or_default();
            for &j in &marks {
                if level(s, j) == Level::Partial {
                    doubts.push((s, j));
                }
            }
            (support(level(s, top)), Some(probability(s, top)))
        };
        outcomes.push(outcome);
    }
    doubts.retain(|pair| !verdicts.contains_key(pair));

    let (text, order) = render(&parsed);
    let numbered = |source: usize| order.iter().position(|&o| o == source).map(|i| i as u32 + 1);
    let mut sentences = Vec::new();
    for (s, sentence) in parsed.sentences.iter().enumerate() {
        let claim = sentence.claim();
        if claim.is_empty() {
            continue;
        }
        let mut sources: Vec<u32> = sentence
            .groups()
            .iter()
            .flat_map(|&g| parsed.groups[g].iter())
            .chain(&sentence.added)
            .filter_map(|m| numbered(m.source))
            .collect();
        sources.dedup();
        let (support, score) = outcomes[s];
        sentences.push(SentenceCheck { text: claim, sources, support, score });
    }

    let mut citations = Vec::new();
    for &source in &order {
        let mut worst: Option<(Level, f32)> = None;
        let (mut by_model, mut by_footnote) = (false, false);
        for (s, sentence) in parsed.sentences.iter().enumerate() {
            let marks: Vec<Mark> = sentence
                .groups()
                .iter()
                .flat_map(|&g| parsed.groups[g].iter().copied())
                .chain(sentence.added.iter().copied())
                .filter(|m| m.source == source)
                .collect();
            if marks.is_empty() {
                continue;
            }
            by_model |= marks.iter().any(|m| m.by == By::Model);
            by_footnote |= marks.iter().any(|m| m.by == By::Footnote);
            if scores.get(s).is_some_and(Option::is_some) {
                let here = (level(s, source), probability(s, source));
                worst = Some(match worst {
                    Some(w) if w.0 <= here.0 => w,
                    _ => here,
                });
            }
        }
        let cited_by = match (by_model, by_footnote) {
            (true, true) => CitedBy::Both,
            (false, true) => CitedBy::Footnote,
            _ => CitedBy::Model,
        };
        let (support, score) = match worst {
            Some((level, p)) => (support(level), Some(p)),
            None => (Support::Unchecked, None),
        };
        citations.push((support, score, cited_by));
    }
    Checked { text, order, sentences, citations, doubts }
}

#[cfg(test)]
mod tests {
    use footnote_adapter::{ATTRIBUTED_MARK, NOT_FOUND_TAG};

    use super::super::answer::parse;
    use super::*;

    const W: Weights =
        Weights { bias: 0.0, weights: [0.0; super::super::FEATURE_COUNT], supported: 0.6, weak: 0.3, attribute: 0.8 };

    fn run(raw: &str, scores: Scores) -> Checked {
        decide(&parse(raw, 3), &scores, &W, &HashMap::new())
    }

    #[test]
    fn a_supported_marker_stays() {
        let c = run("Penguins eat krill [2].", vec![Some(vec![(0.1, false), (0.9, false), (0.2, false)])]);
        assert_eq!(c.text, "Penguins eat krill [1].");
        assert_eq!(c.order, vec![1]);
        assert_eq!(c.citations, vec![(Support::Supported, Some(0.9), CitedBy::Model)]);
    }

    #[test]
    fn a_marker_on_the_wrong_source_moves() {
        let c = run("Penguins eat krill [1].", vec![Some(vec![(0.1, false), (0.9, false), (0.2, false)])]);
        assert_eq!(c.text, format!("Penguins eat krill [1{ATTRIBUTED_MARK}]."));
        assert_eq!(c.order, vec![1]);
        assert_eq!(c.citations[0].2, CitedBy::Footnote);
    }

    #[test]
    fn an_unsupported_marker_is_dropped_and_the_sentence_tagged() {
        let c = run(
            "The moon is cheese [1]. Penguins eat krill [2].",
            vec![
                Some(vec![(0.1, false), (0.2, false), (0.05, false)]),
                Some(vec![(0.1, false), (0.9, false), (0.2, false)]),
            ],
        );
        assert_eq!(c.text, format!("The moon is cheese {NOT_FOUND_TAG}. Penguins eat krill [1]."));
        assert_eq!(c.sentences[0].support, Support::NotFound);
        assert!(c.sentences[0].sources.is_empty());
    }

    #[test]
    fn unmarked_sentences_get_a_clear_source_only() {
        let c = run(
            "Penguins eat krill. Volcanoes erupt. Bread rises.",
            vec![
                Some(vec![(0.1, false), (0.95, false), (0.2, false)]),
                Some(vec![(0.7, false), (0.1, false), (0.1, false)]),
                Some(vec![(0.1, false), (0.1, false), (0.2, false)]),
            ],
        );
        assert_eq!(
            c.text,
            format!("Penguins eat krill [1{ATTRIBUTED_MARK}]. Volcanoes erupt. Bread rises {NOT_FOUND_TAG}.")
        );
        assert_eq!(c.doubts, vec![(1, 0)], "supported but not clearly enough: left to the judge");
        let verdicts = HashMap::from([((1, 0), true)]);
        let judged = decide(
            &parse("Penguins eat krill. Volcanoes erupt.", 3),
            &vec![
                Some(vec![(0.1, false), (0.95, false), (0.2, false)]),
                Some(vec![(0.7, false), (0.1, false), (0.1, false)]),
            ],
            &W,
            &verdicts,
        );
        assert_eq!(
            judged.text,
            format!("Penguins eat krill [1{ATTRIBUTED_MARK}]. Volcanoes erupt [2{ATTRIBUTED_MARK}].")
        );
    }

    #[test]
    fn a_number_veto_beats_a_high_score() {
        let c = run("Sales grew 12 percent [1].", vec![Some(vec![(0.99, true), (0.1, false), (0.1, false)])]);
        assert_eq!(c.text, format!("Sales grew 12 percent {NOT_FOUND_TAG}."));
    }

    #[test]
    fn sentences_without_a_claim_keep_their_markers_unchecked() {
        let c = run(
            "Penguins eat krill [1]. See also [3].",
            vec![Some(vec![(0.9, false), (0.1, false), (0.1, false)]), None],
        );
        assert_eq!(c.text, "Penguins eat krill [1]. See also [2].");
        assert_eq!(c.citations[1], (Support::Unchecked, None, CitedBy::Model));
    }
}
