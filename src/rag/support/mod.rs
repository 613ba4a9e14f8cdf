//! The support check: does the source a sentence cites say what the sentence says?
//!
//! After the model's last token, the answer is split into sentences ([`answer`]) and each
//! sentence that makes a claim is scored against every packed source: the cosine of the
//! sentence's embedding (one batched `/api/embed` call for the whole answer) with the chunk's
//! stored vector, how much closer the chunk is to the sentence than to its [`contrary`], and the
//! [`lexical`] evidence (content words, word pairs, the best two-sentence window, named entities;
//! a number the source does not contain vetoes support). A logistic model turns these into a
//! probability; its [`Weights`] and thresholds are the ones
//! `footnote eval citations --tune` picked on labelled statement/passage pairs.
//!
//! Then ([`decide`]): a marker whose source supports its sentence stays; one whose source does
//! not moves to the source that does (`[n†]`), or is dropped; a sentence without markers gets
//! one (`[n†]`) where a source clearly supports it; a claim no source supports is tagged "not
//! found in the sources". With `answer.verify = "model"`, sentences the scores leave in doubt
//! go to the chat model as a strict yes/no question ([`judge`]), within a time budget.

pub mod answer;
pub mod contrary;
mod decide;
pub mod judge;
pub mod lexical;

use crate::config::SupportConfig;

pub use decide::{Checked, Scores, decide};

#[cfg(test)]
mod tests;

/// How many features the check weighs.
pub const FEATURE_COUNT: usize = 7;

/// Feature names in the order of [`Features::values`] (for reports).
pub const FEATURES: [&str; FEATURE_COUNT] =
    ["cosine", "recall", "window", "pairs", "entities", "number_missing", "contrary"];

/// Index of `number_missing` in [`FEATURES`] (it also vetoes support).
pub const NUMBER_MISSING: usize = 5;

/// What the check measures for one sentence against one source.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Features {
    /// Cosine of the sentence's and the chunk's embeddings; `None` without vectors.
    pub cosine: Option<f32>,
    /// That cosine minus the cosine of the sentence's [`contrary`] with the chunk: above 0 when
    /// the chunk is closer to what the sentence says than to its opposite; `None` without
    /// vectors.
    pub contrary: Option<f32>,
    pub evidence: lexical::Evidence,
}

impl Features {
    /// The feature values in the order of [`FEATURES`] (a missing cosine counts as 0).
    pub fn values(&self) -> [f32; FEATURE_COUNT] {
        let e = &self.evidence;
        [
            self.cosine.unwrap_or(0.0),
            e.recall,
            e.window,
            e.pairs,
            e.entities,
            f32::from(u8::from(e.number_missing)),
            self.contrary.unwrap_or(0.0),
        ]
    }
}

/// A logistic model over [`Features`] and the thresholds on its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    pub bias: f32,
    /// One weight per feature, in the order of [`FEATURES`].
    pub weights: [f32; FEATURE_COUNT],
    /// At or above: the source supports the sentence.
    pub supported: f32,
    /// At or above (and below `supported`): partly; a model's marker stays, flagged as partial.
    pub weak: f32,
    /// At or above: clear enough for Footnote to attribute a source to an unmarked sentence.
    pub attribute: f32,
}

impl Weights {
    /// Lexical evidence only, for when no embeddings can be compared (the embedding model is
    /// down, or is not the one the configured weights were tuned for). Picked by
    /// `footnote eval citations --tune` on the SciFact claims train split.
    pub const LEXICAL: Weights = Weights {
        bias: -4.1389,
        weights: [0.0, 5.0546, 0.6617, -0.6535, 0.6202, -0.9304, 0.0],
        supported: 0.2619,
        weak: 0.1439,
        attribute: 0.7293,
    };

    /// The configured weights (they include the cosine).
    pub fn from_config(cfg: &SupportConfig) -> Weights {
        Weights {
            bias: cfg.bias,
            weights: [cfg.cosine, cfg.recall, cfg.window, cfg.pairs, cfg.entities, cfg.number_missing, cfg.contrary],
            supported: cfg.supported,
            weak: cfg.weak,
            attribute: cfg.attribute,
        }
    }

    /// The probability that the source supports the sentence.
    pub fn probability(&self, features: &Features) -> f32 {
        let z: f32 = self.bias + self.weights.iter().zip(features.values()).map(|(w, x)| w * x).sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }

    /// The level the probability reaches, with the number veto applied.
    pub fn level(&self, probability: f32, number_missing: bool) -> Level {
        if number_missing || probability < self.weak {
            Level::None
        } else if probability < self.supported {
            Level::Partial
        } else {
            Level::Supported
        }
    }
}

/// How well one source backs one sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Partial,
    Supported,
}

/// Cosine similarity (0 when either vector is all zeros or their lengths differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

/// True when a sentence makes a claim worth checking: three content words or more, not a
/// question, and not the answer saying the documents lack something.
pub fn is_claim(sentence: &str, claim: &lexical::Claim) -> bool {
    if claim.len() < 3 || sentence.trim_end().ends_with('?') {
        return false;
    }
    let lower = sentence.to_lowercase();
    let negated = ["not", "no ", "n't", "nothing", "none"].iter().any(|w| lower.contains(w));
    let about_sources = ["document", "source", "context", "passage", "provided", "information", "mention"]
        .iter()
        .any(|w| lower.contains(w));
    !(negated && about_sources)
}

/// An answer split into sentences, with the claims to check.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub parsed: answer::Parsed,
    /// Per sentence: its text and analysis when it makes a claim.
    pub claims: Vec<Option<(String, lexical::Claim)>>,
}

impl Prepared {
    /// The texts of the claims, in order (what gets embedded).
    pub fn claim_texts(&self) -> Vec<String> {
        self.claims.iter().flatten().map(|(t, _)| t.clone()).collect()
    }

    /// The claims' contraries, in the same order (embedded with them).
    pub fn contrary_texts(&self) -> Vec<String> {
        self.claims.iter().flatten().map(|(t, _)| contrary::contrary(t)).collect()
    }
}

/// Splits the model's answer (`raw`, before renumbering) given `sources` numbered sources, and
/// picks the sentences that make claims; `cut_short` leaves an unfinished last sentence out.
pub fn prepare(raw: &str, sources: usize, cut_short: bool) -> Prepared {
    let parsed = answer::parse(raw, sources);
    let last = parsed.sentences.len().saturating_sub(1);
    let claims = parsed
        .sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = s.claim();
            let claim = lexical::Claim::new(&text);
            let unfinished = cut_short && i == last && s.end.is_empty();
            let question = s.end.contains('?');
            (is_claim(&text, &claim) && !unfinished && !question).then_some((text, claim))
        })
        .collect();
    Prepared { parsed, claims }
}

/// A claim's embedding and its contrary's.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimVectors {
    pub claim: Vec<f32>,
    pub contrary: Vec<f32>,
}

impl ClaimVectors {
    /// The cosine with a source's vector, and how much closer the source is to the claim than
    /// to its contrary.
    pub fn against(&self, source: &[f32]) -> (f32, f32) {
        let cos = cosine(&self.claim, source);
        (cos, cos - cosine(&self.contrary, source))
    }
}

/// Scores every claim against every passage. `claim_vectors` (one per claim, in order) and
/// `source_vectors` (one per passage, `None` when missing) add the cosines with `configured`
/// weights; a pair without both vectors is scored by [`Weights::LEXICAL`]. Returns the scores and
/// the weights whose thresholds apply.
pub fn score(
    prepared: &Prepared,
    passages: &[lexical::Passage],
    claim_vectors: Option<&[ClaimVectors]>,
    source_vectors: &[Option<&[f32]>],
    configured: &Weights,
) -> (Scores, Weights) {
    let mut scores: Scores = Vec::with_capacity(prepared.claims.len());
    let mut next = 0;
    for sentence in &prepared.claims {
        let Some((_, claim)) = sentence else {
            scores.push(None);
            continue;
        };
        let vector = claim_vectors.and_then(|v| v.get(next));
        next += 1;
        let row = passages
            .iter()
            .enumerate()
            .map(|(j, passage)| {
                let source = source_vectors.get(j).copied().flatten();
                let cosines = vector.zip(source).map(|(v, s)| v.against(s));
                let features = Features {
                    cosine: cosines.map(|c| c.0),
                    contrary: cosines.map(|c| c.1),
                    evidence: lexical::evidence(claim, passage),
                };
                let cos = features.cosine;
                let weights = if cos.is_some() { configured } else { &Weights::LEXICAL };
                (weights.probability(&features), features.evidence.number_missing)
            })
            .collect();
        scores.push(Some(row));
    }
    let weights = if claim_vectors.is_some() { *configured } else { Weights::LEXICAL };
    (scores, weights)
}
