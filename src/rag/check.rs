//! Running the support check on a finished answer (see [`super::support`]): score every claim
//! against every packed source, decide, and with `answer.verify = "model"` ask the chat model
//! about what stays in doubt.

use std::collections::HashMap;
use std::time::Instant;

use super::Rag;
use super::support::lexical::Passage;
use super::support::{Checked, ClaimVectors, Prepared, Weights, decide, judge, prepare, score};
use crate::config::Verify;
use crate::retrieval::Source;

impl Rag {
    /// True when the configured weights were tuned for the configured embedding model, so that
    /// their cosine weight means something.
    fn weights_fit_embed_model(&self) -> bool {
        let base = |m: &str| m.split(':').next().unwrap_or_default().to_owned();
        base(&self.cfg.answer.support.tuned_for) == base(&self.cfg.ollama.embed_model)
    }

    /// Checks `raw` (the model's answer) against `sources`; `None` when `answer.verify = "off"`.
    /// `cut_short` leaves an unfinished last sentence unchecked.
    pub(super) async fn check_support(
        &self,
        raw: &str,
        sources: &[Source],
        cut_short: bool,
        num_ctx: u32,
    ) -> Option<Checked> {
        if self.cfg.answer.verify == Verify::Off {
            return None;
        }
        let started = Instant::now();
        let prepared = prepare(raw, sources.len(), cut_short);
        let vectors = if prepared.claims.iter().all(Option::is_none) || !self.weights_fit_embed_model() {
            None
        } else {
            self.claim_and_source_vectors(&prepared, sources).await
        };
        let passages: Vec<Passage> = sources.iter().map(|s| Passage::new(&s.chunk.text)).collect();
        let source_vectors: Vec<Option<&[f32]>> = sources
            .iter()
            .map(|s| vectors.as_ref().and_then(|(_, stored)| stored.get(&s.chunk.id)).map(Vec::as_slice))
            .collect();
        let configured = Weights::from_config(&self.cfg.answer.support);
        let claim_vectors = vectors.as_ref().map(|(claims, _)| claims.as_slice());
        let (scores, weights) = score(&prepared, &passages, claim_vectors, &source_vectors, &configured);
        let mut verdicts = HashMap::new();
        let mut checked = decide(&prepared.parsed, &scores, &weights, &verdicts);
        let scored = started.elapsed();
        if self.cfg.answer.verify == Verify::Model && !checked.doubts.is_empty() {
            let pairs: Vec<(String, String)> = checked
                .doubts
                .iter()
                .map(|&(s, j)| (prepared.parsed.sentences[s].claim(), sources[j].chunk.text.clone()))
                .collect();
            let model = &self.cfg.ollama.chat_model;
            let budget = self.cfg.answer.verify_budget;
            let found = judge::ask_all(&self.ollama, model, Some(num_ctx), &pairs, budget).await;
            for (&pair, verdict) in checked.doubts.iter().zip(found) {
                if let Some(yes) = verdict {
                    verdicts.insert(pair, yes);
                }
            }
            tracing::debug!(asked = pairs.len(), decided = verdicts.len(), "Support judge ran.");
            checked = decide(&prepared.parsed, &scores, &weights, &verdicts);
        }
        tracing::debug!(
            sentences = prepared.claims.len(),
            embedded = vectors.is_some(),
            scored_ms = scored.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "Support check done."
        );
        Some(checked)
    }

    /// The embeddings of the claims and of their contraries (one call) and the sources' stored
    /// vectors by chunk id; `None` when either cannot be had (the check then uses lexical
    /// evidence alone).
    async fn claim_and_source_vectors(
        &self,
        prepared: &Prepared,
        sources: &[Source],
    ) -> Option<(Vec<ClaimVectors>, HashMap<i64, Vec<f32>>)> {
        let ids: Vec<i64> = sources.iter().map(|s| s.chunk.id).collect();
        let texts = prepared.claim_texts();
        let inputs: Vec<String> =
            texts.iter().chain(&prepared.contrary_texts()).map(|t| format!("{}{t}", self.prefixes.query)).collect();
        let (embedded, stored) =
            tokio::join!(self.ollama.embed(&self.cfg.ollama.embed_model, &inputs), self.store.chunk_vectors(&ids));
        match (embedded, stored) {
            (Ok(mut claims), Ok(stored)) if claims.len() == inputs.len() => {
                let contraries = claims.split_off(texts.len());
                let vectors = claims
                    .into_iter()
                    .zip(contraries)
                    .map(|(claim, contrary)| ClaimVectors { claim, contrary })
                    .collect();
                Some((vectors, stored.into_iter().collect()))
            }
            (Err(error), _) => {
                super::error::count_ollama_error(&error);
                tracing::warn!(%error, "Cannot embed the answer's sentences; checking them by their words alone.");
                None
            }
            (_, Err(error)) => {
                tracing::warn!(%error, "Cannot read the sources' vectors; checking by words alone.");
                None
            }
            _ => None,
        }
    }
}
