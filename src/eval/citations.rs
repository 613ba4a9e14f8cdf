//! `footnote eval citations FILE`: the support check measured on labelled statement/passage
//! pairs (JSONL: `statement`, `passage`, `label` SUPPORT / CONTRADICT / NOINFO).
//!
//! Each pair is scored the way an answer's sentence is scored against a source: the statement
//! embedded with the query prefix, the passage with the document prefix (as chunks are stored),
//! the same lexical evidence, the same weights. The report gives precision, recall and F1 of
//! "supported" against the rest, ROC-AUC of the probability, the confusion per label, and two
//! baselines (content-word overlap alone, cosine alone). `tune` fits new weights and thresholds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::EvalError;
use super::tune::{self, Prf};
use crate::config::Config;
use crate::llm::OllamaClient;
use crate::rag::support::contrary::contrary;
use crate::rag::support::lexical::{Claim, Passage, evidence};
use crate::rag::support::{ClaimVectors, FEATURE_COUNT, FEATURES, Features, NUMBER_MISSING, Weights, judge};

/// One labelled pair.
#[derive(Clone, Debug, Deserialize)]
pub struct Pair {
    #[serde(default)]
    pub id: String,
    pub statement: String,
    pub passage: String,
    pub label: String,
}

impl Pair {
    /// True for SUPPORT.
    pub fn supported(&self) -> bool {
        self.label.eq_ignore_ascii_case("support")
    }
}

/// Reads a JSONL file of pairs; a line that is not a pair is an error naming it.
pub fn load(path: &Path) -> Result<Vec<Pair>, EvalError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| EvalError::Read { path: path.to_owned(), reason: e.to_string() })?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let pair: Pair = serde_json::from_str(line).map_err(|e| EvalError::BadLine {
            path: path.to_owned(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        let label = pair.label.to_ascii_uppercase();
        if !["SUPPORT", "CONTRADICT", "NOINFO"].contains(&label.as_str()) {
            let reason = format!("label {:?} is not SUPPORT, CONTRADICT or NOINFO", pair.label);
            return Err(EvalError::BadLine { path: path.to_owned(), line: i + 1, reason });
        }
        pairs.push(Pair { label, ..pair });
    }
    if pairs.is_empty() {
        return Err(EvalError::Empty(format!("{} has no pairs", path.display())));
    }
    Ok(pairs)
}

/// Features of every pair; with `embed`, the cosines come from the configured embedding model.
/// Returns them and the time spent embedding.
pub async fn features(config: &Config, pairs: &[Pair], embed: bool) -> Result<(Vec<Features>, Duration), EvalError> {
    let mut cosines: Vec<Option<(f32, f32)>> = vec![None; pairs.len()];
    let started = Instant::now();
    if embed {
        let ollama = OllamaClient::new(&config.ollama).map_err(crate::rag::RagError::from)?;
        let prefixes = config.ollama.embed_prefixes();
        let model = &config.ollama.embed_model;
        let mut passages: Vec<&str> = pairs.iter().map(|p| p.passage.as_str()).collect();
        passages.sort_unstable();
        passages.dedup();
        let inputs: Vec<String> = passages.iter().map(|p| format!("{}{p}", prefixes.document)).collect();
        let passage_vectors = ollama.embed(model, &inputs).await.map_err(crate::rag::RagError::from)?;
        let by_passage: HashMap<&str, &Vec<f32>> = passages.iter().copied().zip(&passage_vectors).collect();
        // As an answer's sentences are: the statements, then their contraries, in one call.
        let inputs: Vec<String> = pairs
            .iter()
            .map(|p| p.statement.clone())
            .chain(pairs.iter().map(|p| contrary(&p.statement)))
            .map(|t| format!("{}{t}", prefixes.query))
            .collect();
        let mut statement_vectors = ollama.embed(model, &inputs).await.map_err(crate::rag::RagError::from)?;
        let contrary_vectors = statement_vectors.split_off(pairs.len());
        cosines = pairs
            .iter()
            .zip(statement_vectors.into_iter().zip(contrary_vectors))
            .map(|(pair, (claim, contrary))| {
                let vectors = ClaimVectors { claim, contrary };
                by_passage.get(pair.passage.as_str()).map(|p| vectors.against(p))
            })
            .collect();
    }
    let took = started.elapsed();
    let mut analysed: HashMap<&str, Passage> = HashMap::new();
    let mut out = Vec::with_capacity(pairs.len());
    for (pair, cos) in pairs.iter().zip(cosines) {
        let passage = analysed.entry(pair.passage.as_str()).or_insert_with(|| Passage::new(&pair.passage));
        out.push(Features {
            cosine: cos.map(|c| c.0),
            contrary: cos.map(|c| c.1),
            evidence: evidence(&Claim::new(&pair.statement), passage),
        });
    }
    Ok((out, took))
}

/// How many pairs of one label the check called supported, and not.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Confusion {
    pub supported: usize,
    pub not_supported: usize,
}

/// The figures for one scoring of the pairs.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Precision/recall/F1 of "supported" at the shipped `supported` threshold.
    pub at_threshold: Prf,
    /// ROC-AUC of the probability for SUPPORT against the rest.
    pub auc: f64,
    /// ROC-AUC for SUPPORT against CONTRADICT only (the hard part).
    pub auc_support_vs_contradict: f64,
    /// Per label: called supported or not.
    pub confusion: BTreeMap<String, Confusion>,
}

/// The figures of `scores` (probabilities) with `weights`' threshold and the number veto.
pub fn figures(pairs: &[Pair], rows: &[[f32; FEATURE_COUNT]], scores: &[f32], threshold: f32) -> Figures {
    let truth: Vec<bool> = pairs.iter().map(Pair::supported).collect();
    let predicted: Vec<bool> =
        scores.iter().zip(rows).map(|(s, r)| *s >= threshold && r[NUMBER_MISSING] < 0.5).collect();
    let mut confusion: BTreeMap<String, Confusion> = BTreeMap::new();
    for (pair, p) in pairs.iter().zip(&predicted) {
        let entry = confusion.entry(pair.label.clone()).or_default();
        if *p {
            entry.supported += 1;
        } else {
            entry.not_supported += 1;
        }
    }
    let (hard_scores, hard_truth): (Vec<f32>, Vec<bool>) =
        pairs.iter().zip(scores).filter(|(p, _)| p.label != "NOINFO").map(|(p, s)| (*s, p.supported())).unzip();
    Figures {
        at_threshold: tune::prf(&predicted, &truth, threshold),
        auc: tune::auc(scores, &truth),
        auc_support_vs_contradict: tune::auc(&hard_scores, &hard_truth),
        confusion,
    }
}

/// A single-feature baseline: AUC and the best F1 over thresholds.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub auc: f64,
    pub best: Prf,
}

fn baseline(values: &[f32], truth: &[bool]) -> Baseline {
    Baseline { auc: tune::auc(values, truth), best: tune::best_f1(values, &vec![false; values.len()], truth) }
}

/// What the model judge changed on the doubtful pairs.
#[derive(Clone, Debug, Serialize)]
pub struct JudgeFigures {
    pub model: String,
    /// Pairs in the doubtful band (probability between `weak` and `supported`) that were asked.
    pub asked: usize,
    /// Of those, how many got a clear yes or no.
    pub answered: usize,
    /// Share of the answered verdicts that match the label (yes for SUPPORT).
    pub accuracy: f64,
    pub seconds: f64,
    /// The figures with the judge's verdicts applied to the asked pairs.
    pub with_judge: Figures,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct CitationReport {
    pub file: String,
    pub pairs: usize,
    pub labels: BTreeMap<String, usize>,
    /// `embed` (cosine and lexical) or `lexical`.
    pub mode: String,
    pub embed_model: Option<String>,
    pub embedding_seconds: f64,
    pub features: Vec<String>,
    pub bias: f32,
    pub weights: Vec<f32>,
    pub supported: f32,
    pub weak: f32,
    pub attribute: f32,
    pub figures: Figures,
    /// Content-word overlap alone.
    pub overlap_baseline: Baseline,
    /// Embedding cosine alone (with `embed`).
    pub cosine_baseline: Option<Baseline>,
    /// With `--tune`: 5-fold cross-validated AUC and best F1 of the fitted model on this file
    /// (one statement's pairs always in one fold).
    pub cross_validated: Option<(f64, Prf)>,
    pub judge: Option<JudgeFigures>,
}

/// Scores the pairs with `weights` and writes the report (`tuned` says the weights were fitted
/// on these very pairs, and adds cross-validated figures).
pub fn report(
    file: &Path,
    pairs: &[Pair],
    features: &[Features],
    weights: &Weights,
    embed_model: Option<&str>,
    embedding: Duration,
    cross_validated: Option<(f64, Prf)>,
) -> CitationReport {
    let rows: Vec<[f32; FEATURE_COUNT]> = features.iter().map(Features::values).collect();
    let scores: Vec<f32> = rows.iter().map(|r| tune::probability(weights, r)).collect();
    let truth: Vec<bool> = pairs.iter().map(Pair::supported).collect();
    let mut labels = BTreeMap::new();
    for pair in pairs {
        *labels.entry(pair.label.clone()).or_insert(0) += 1;
    }
    let overlap: Vec<f32> = features.iter().map(|f| f.evidence.recall).collect();
    let cos: Option<Vec<f32>> = features.iter().map(|f| f.cosine).collect();
    CitationReport {
        file: file.display().to_string(),
        pairs: pairs.len(),
        labels,
        mode: if embed_model.is_some() { "embed" } else { "lexical" }.to_owned(),
        embed_model: embed_model.map(str::to_owned),
        embedding_seconds: embedding.as_secs_f64(),
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        bias: weights.bias,
        weights: weights.weights.to_vec(),
        supported: weights.supported,
        weak: weights.weak,
        attribute: weights.attribute,
        figures: figures(pairs, &rows, &scores, weights.supported),
        overlap_baseline: baseline(&overlap, &truth),
        cosine_baseline: cos.map(|c| baseline(&c, &truth)),
        cross_validated,
        judge: None,
    }
}

/// Asks the chat model about the pairs in the doubtful band (at most `limit`, in file order) and
/// adds what it changed to the report.
pub async fn judge_doubtful(
    config: &Config,
    pairs: &[Pair],
    features: &[Features],
    weights: &Weights,
    limit: usize,
) -> Result<JudgeFigures, EvalError> {
    let ollama = OllamaClient::new(&config.ollama).map_err(crate::rag::RagError::from)?;
    let rows: Vec<[f32; FEATURE_COUNT]> = features.iter().map(Features::values).collect();
    let mut scores: Vec<f32> = rows.iter().map(|r| tune::probability(weights, r)).collect();
    let doubtful: Vec<usize> = (0..pairs.len())
        .filter(|&i| scores[i] >= weights.weak && scores[i] < weights.supported && rows[i][NUMBER_MISSING] < 0.5)
        .take(limit)
        .collect();
    let started = Instant::now();
    let (mut answered, mut right) = (0, 0);
    for &i in &doubtful {
        let wait = config.ollama.request_timeout;
        let verdict =
            judge::ask(&ollama, &config.ollama.chat_model, None, &pairs[i].statement, &pairs[i].passage, wait).await;
        if let Some(yes) = verdict {
            answered += 1;
            right += usize::from(yes == pairs[i].supported());
            // A yes lifts the pair to the threshold; a no drops it to zero.
            scores[i] = if yes { weights.supported } else { 0.0 };
        }
    }
    Ok(JudgeFigures {
        model: config.ollama.chat_model.clone(),
        asked: doubtful.len(),
        answered,
        accuracy: if answered > 0 { right as f64 / answered as f64 } else { 0.0 },
        seconds: started.elapsed().as_secs_f64(),
        with_judge: figures(pairs, &rows, &scores, weights.supported),
    })
}

/// The `[answer.support]` section for these weights.
pub fn toml_section(weights: &Weights, embed_model: &str) -> String {
    let w = &weights.weights;
    format!(
        "[answer.support]\ntuned_for = {embed_model:?}\nbias = {:.4}\ncosine = {:.4}\nrecall = {:.4}\nwindow = {:.4}\n\
         pairs = {:.4}\nentities = {:.4}\nnumber_missing = {:.4}\ncontrary = {:.4}\nsupported = {:.4}\nweak = {:.4}\nattribute = {:.4}\n",
        weights.bias, w[0], w[1], w[2], w[3], w[4], w[5], w[6], weights.supported, weights.weak, weights.attribute
    )
}
