//! `[answer]` settings of the support check: whether it runs, the optional model judge, and the
//! weights and thresholds `footnote eval citations --tune` picked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How answers are checked against their sources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// No check: markers are only renumbered, and those naming no source dropped.
    Off,
    /// Embeddings and lexical evidence (the default).
    #[default]
    Embed,
    /// As `embed`, then the chat model answers yes or no for each doubtful sentence, within
    /// `answer.verify_budget`.
    Model,
}

/// `[answer.support]`: the support check's logistic model over its features, and the thresholds
/// on the probability it gives. The defaults were picked by `footnote eval citations --tune` on
/// the SciFact claims train split with `all-minilm`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// The embedding model these weights were tuned with. With another model, cosines are not
    /// comparable and the check uses its built-in lexical weights instead.
    pub tuned_for: String,
    pub bias: f32,
    /// Weight of the cosine of the sentence's and the chunk's embeddings.
    pub cosine: f32,
    /// Weight of the share of the sentence's content words found in the chunk.
    pub recall: f32,
    /// Weight of that share within the chunk's best two-sentence window.
    pub window: f32,
    /// Weight of the share of the sentence's word pairs found in the chunk.
    pub pairs: f32,
    /// Weight of the share of its names (capitalised words, `BRCA1`) found in the chunk.
    pub entities: f32,
    /// Weight of "the sentence states a number the chunk lacks" (which also vetoes support).
    pub number_missing: f32,
    /// Weight of how much closer the chunk's embedding is to the sentence's than to the
    /// embedding of the sentence turned around ("increases" → "decreases", a "not" added or
    /// removed). Missing from a section tuned before the feature existed: see
    /// [`SupportConfig::tuned_without_contrary`].
    pub contrary: f32,
    /// Probability at or above which a source supports a sentence.
    pub supported: f32,
    /// Probability at or above which a model's marker stays, flagged as partial support.
    pub weak: f32,
    /// Probability at or above which Footnote adds a marker to a sentence the model left without.
    pub attribute: f32,
}

impl Default for SupportConfig {
    fn default() -> Self {
        SupportConfig {
            tuned_for: "all-minilm".into(),
            bias: -5.1121,
            cosine: 3.2022,
            recall: 4.2043,
            window: 0.0631,
            pairs: -0.6888,
            entities: 0.3810,
            number_missing: -0.8514,
            contrary: 15.6806,
            supported: 0.2694,
            weak: 0.1552,
            attribute: 0.7015,
        }
    }
}

impl SupportConfig {
    /// Settles the contrary's weight for a user's section that does not give one. Such a section
    /// was written by `--tune` before the feature existed, and its other weights were fitted
    /// without it: weighing it 0 keeps that model exactly as tuned. Only a section whose weights
    /// are the shipped ones (one that just moves a threshold) keeps the shipped contrary weight.
    pub fn tuned_without_contrary(&mut self) {
        let shipped = SupportConfig::default();
        let weights = |c: &SupportConfig| [c.bias, c.cosine, c.recall, c.window, c.pairs, c.entities, c.number_missing];
        if self.tuned_for != shipped.tuned_for || weights(self) != weights(&shipped) {
            self.contrary = 0.0;
        }
    }
}

/// The time the model judge may add to one answer by default.
pub const DEFAULT_VERIFY_BUDGET: Duration = Duration::from_secs(5);
