//! Running an evaluation: fill the collection from the corpus, rank every judged query in the
//! three modes, score the document rankings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use footnote_adapter::{IngestOutcome, Upload};
use futures::StreamExt;
use serde::Serialize;

use super::EvalError;
use super::beir::{CorpusDoc, Dataset, Query};
use super::metrics::{self, Summary};
use crate::config::{Fusion, RetrievalConfig};
use crate::rag::{BulkInput, Rag, RagError, Settled};
use crate::retrieval::rerank::{self, RerankStats, Reranker};
use crate::retrieval::{self, Mode, Source};

/// Candidates taken from each retriever during an evaluation (chunk level, before the chunks
/// are folded into documents), so that 100 documents are there for Recall@100.
pub const DEFAULT_EVAL_TOP_K: usize = 200;

/// The three modes in the order they are reported.
pub const MODES: [(Mode, &str); 3] = [(Mode::Bm25, "bm25"), (Mode::Vector, "vector"), (Mode::Hybrid, "hybrid")];
/// The name of the fourth mode, reported when `retrieval.rerank.enabled`: hybrid, then reranked.
pub const RERANKED: &str = "hybrid+rerank";

/// What the caller hears while the evaluation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `total` corpus documents ingested.
    Ingest { done: usize, total: usize },
    /// `done` of `total` queries ranked (in all three modes).
    Query { done: usize, total: usize },
}

/// How the collection was filled.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CorpusSummary {
    /// Documents in the corpus file.
    pub corpus_documents: usize,
    /// Documents stored in the collection.
    pub documents: i64,
    /// Chunks stored in the collection.
    pub chunks: i64,
    /// True when an already filled collection was used as it was (`--reuse`).
    pub reused: bool,
    /// Corpus documents with the same content as an earlier one: not stored again, so they can
    /// never be retrieved.
    pub duplicates: Vec<String>,
    /// Corpus documents that could not be ingested, with the reason.
    pub failed: Vec<(String, String)>,
    /// Seconds spent ingesting (0 when reused).
    pub seconds: f64,
}

/// Which queries were evaluated, and which were not and why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QuerySummary {
    /// Queries ranked (they have qrels).
    pub evaluated: usize,
    /// Queries in `queries.jsonl` without any qrels line in this split: skipped.
    pub skipped_without_qrels: usize,
    /// Query ids in the qrels that `queries.jsonl` does not have: skipped.
    pub qrels_without_query: usize,
    /// Evaluated queries whose qrels name no relevant document: left out of the averages.
    pub without_relevant: usize,
    /// Judged pairs naming a document that is not in the corpus.
    pub qrels_unknown_documents: usize,
    /// Seconds spent ranking (query embedding included).
    pub seconds: f64,
}

/// The settings the numbers were produced with.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub embed_model: String,
    pub query_prefix: String,
    pub document_prefix: String,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    pub fusion: Fusion,
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub vector_weight: f32,
    pub document_weight: f32,
    pub document_evidence: f32,
    pub bm25_k1: f32,
    pub bm25_b: f32,
    pub bm25_title_weight: f32,
    pub bm25_headings_weight: f32,
    /// Candidates per retriever during the evaluation (chunks, before folding into documents).
    pub eval_top_k: usize,
    /// `retrieval.bm25_top_k` / `retrieval.vector_top_k` as configured for answers.
    pub configured_top_k: (usize, usize),
}

/// A judged query whose first document (hybrid, or reranked) is not a relevant one.
#[derive(Clone, Debug, Serialize)]
pub struct Miss {
    pub mode: String,
    pub query: String,
    pub text: String,
    /// The document ranked first.
    pub first: String,
    /// 1-based rank of the best-placed relevant document (`None`: not retrieved).
    pub relevant_at: Option<usize>,
}

/// What the reranker cost and did, per question.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RerankSummary {
    pub reranker: String,
    pub candidates: usize,
    pub weight: f32,
    /// Added time per question (grading only), mean / median / 95th percentile, in seconds.
    pub seconds_mean: f64,
    pub seconds_p50: f64,
    pub seconds_p95: f64,
    /// Share of the candidates that got a grade within the budget.
    pub graded: f64,
}

/// The whole result of `footnote eval`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dataset: String,
    pub split: String,
    pub collection: String,
    pub settings: Settings,
    pub corpus: CorpusSummary,
    pub queries: QuerySummary,
    /// Mode name (`bm25`, `vector`, `hybrid`, [`RERANKED`]) → averaged metrics.
    pub modes: BTreeMap<String, Summary>,
    /// Present when the reranker ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankSummary>,
    /// Queries whose first hybrid (and reranked) document is not relevant.
    pub misses: Vec<Miss>,
}

/// The Markdown text a corpus document is ingested as: `# title`, a blank line, the text.
pub fn document_markdown(doc: &CorpusDoc) -> String {
    let title = doc.title.trim();
    let text = doc.text.trim();
    match (title.is_empty(), text.is_empty()) {
        (true, _) => text.to_owned(),
        // A heading alone has no body to chunk: keep the title as the text.
        (false, true) => title.to_owned(),
        (false, false) => format!("# {}\n\n{text}", title.replace('\n', " ")),
    }
}

/// The upload of one corpus document: its Markdown text, or the file it names, as it is (sniffed
/// like any upload). Either way it is named by its corpus id, which is how chunks map back to it.
fn upload(doc: &CorpusDoc) -> Result<BulkInput, EvalError> {
    let (mime, bytes) = match &doc.file {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| EvalError::Read { path: path.clone(), reason: e.to_string() })?;
            (None, bytes)
        }
        None => (Some("text/markdown".into()), document_markdown(doc).into_bytes()),
    };
    Ok(Ok(Upload { file_name: doc.id.clone(), mime, bytes, origin: Default::default() }))
}

/// Fills `collection` with the corpus (each document an upload named by its corpus id), or
/// keeps it as it is when `reuse` is set and it already holds documents. The uploads go through
/// the bulk ingest ([`Rag::ingest_many`]), which packs the chunks of many small documents into
/// full embedding calls.
pub async fn fill_collection(
    rag: &Arc<Rag>,
    collection: &str,
    corpus: &[CorpusDoc],
    reuse: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<CorpusSummary, EvalError> {
    if !collection.starts_with("eval:") {
        return Err(EvalError::Collection(collection.to_owned()));
    }
    let scope = [collection.to_owned()];
    let mut summary = CorpusSummary { corpus_documents: corpus.len(), ..CorpusSummary::default() };
    let existing = rag.store().counts(Some(&scope)).await?;
    if reuse && existing.documents > 0 {
        summary.reused = true;
    } else {
        let started = Instant::now();
        if existing.documents > 0 {
            let ids: Vec<i64> = rag.store().documents(&scope).await?.iter().map(|d| d.id).collect();
            rag.forget(&scope, &ids).await?;
        }
        let total = corpus.len();
        let mut done = 0;
        progress(Progress::Ingest { done, total });
        let uploads = corpus.iter().map(upload).collect::<Result<Vec<BulkInput>, EvalError>>()?;
        // One result per upload, in input order. The stream ends once the indexes hold every
        // stored document, so it is read to its end (not zipped with the corpus, which ends first).
        let mut results = rag.ingest_many(collection, futures::stream::iter(uploads));
        let mut ids = corpus.iter().map(|doc| doc.id.as_str());
        while let Some(result) = results.next().await {
            let id = ids.next().unwrap_or_default();
            match result {
                Ok(receipt) if receipt.outcome == IngestOutcome::Duplicate => summary.duplicates.push(id.to_owned()),
                Ok(_) => {}
                Err(RagError::Ingest(e)) => summary.failed.push((id.to_owned(), e.to_string())),
                Err(e) => return Err(e.into()),
            }
            done += 1;
            progress(Progress::Ingest { done, total });
        }
        summary.duplicates.sort();
        summary.failed.sort();
        summary.seconds = started.elapsed().as_secs_f64();
    }
    let mut counts = rag.store().counts(Some(&scope)).await?;
    if counts.pending_embeddings > 0 {
        rag.backfill().await?;
        counts = rag.store().counts(Some(&scope)).await?;
    }
    rag.flush()?;
    if counts.pending_embeddings > 0 {
        return Err(EvalError::MissingEmbeddings(counts.pending_embeddings));
    }
    // Next to a running server, its catch-up indexes what was stored here.
    if let Settled::Behind { holder } = rag.settle().await? {
        return Err(EvalError::NotIndexed(holder));
    }
    summary.documents = counts.documents;
    summary.chunks = counts.chunks;
    Ok(summary)
}

/// Options of [`evaluate`].
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// Candidates per retriever (chunk level).
    pub top_k: usize,
    /// Evaluate only the first `n` judged queries (in `queries.jsonl` order).
    pub limit: Option<usize>,
    /// Write each query's two retriever lists here ([`super::dump`]).
    pub dump_lists: Option<std::path::PathBuf>,
}

/// What [`evaluate`] found.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub queries: QuerySummary,
    pub modes: BTreeMap<String, Summary>,
    pub rerank: Option<RerankSummary>,
    pub misses: Vec<Miss>,
}

/// Ranks every judged query of `data` in the three modes (four with the reranker) and averages
/// the metrics.
pub async fn evaluate(
    rag: &Rag,
    collection: &str,
    data: &Dataset,
    options: &QueryOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Evaluation, EvalError> {
    let started = Instant::now();
    let mut summary = QuerySummary::default();
    let known: std::collections::HashSet<&str> = data.queries.iter().map(|q| q.id.as_str()).collect();
    summary.qrels_without_query = data.qrels.keys().filter(|id| !known.contains(id.as_str())).count();
    let corpus_ids: std::collections::HashSet<&str> = data.corpus.iter().map(|d| d.id.as_str()).collect();
    summary.qrels_unknown_documents =
        data.qrels.values().flat_map(|j| j.keys()).filter(|id| !corpus_ids.contains(id.as_str())).count();
    let judged: Vec<_> = data.queries.iter().filter(|q| data.qrels.contains_key(&q.id)).collect();
    summary.skipped_without_qrels = data.queries.len() - judged.len();
    let judged: Vec<_> = judged.into_iter().take(options.limit.unwrap_or(usize::MAX)).collect();
    if judged.is_empty() {
        return Err(EvalError::Empty("no query has qrels in this split".into()));
    }
    let cfg =
        RetrievalConfig { bm25_top_k: options.top_k, vector_top_k: options.top_k, ..rag.config().retrieval.clone() };
    let scope = [collection.to_owned()];
    let mut sources: HashMap<u64, String> = HashMap::new();
    let mut per_mode: Vec<Vec<Option<metrics::QueryScores>>> = vec![Vec::new(); MODES.len() + 1];
    let mut misses = Vec::new();
    let mut rerank_times = Vec::new();
    let (mut graded, mut candidates) = (0, 0);
    let mut dump =
        options.dump_lists.as_deref().map(|path| super::dump::ListDump::create(path, &cfg, collection)).transpose()?;
    progress(Progress::Query { done: 0, total: judged.len() });
    for (n, query) in judged.iter().enumerate() {
        let vector = rag.embed_query(&query.text).await?;
        let qrels = &data.qrels[&query.id];
        if let Some(dump) = dump.as_mut() {
            dump.write(rag, query, &vector, qrels, &mut sources).await?;
        }
        for (slot, (mode, name)) in MODES.iter().enumerate() {
            let fused = retrieval::rank(rag.indexes(), &cfg, &scope, &query.text, Some(&vector), *mode).await?;
            let order: Vec<(u64, f32)> = fused.iter().map(|f| (f.chunk_id, f.score)).collect();
            if *mode == Mode::Hybrid
                && let Some(reranker) = rag.reranker()
            {
                let reranked = reranked_order(rag, reranker, &query.text, &fused).await?;
                rerank_times.push(reranked.1.took.as_secs_f64());
                (graded, candidates) = (graded + reranked.1.graded, candidates + reranked.1.candidates);
                let run = document_run(rag, &mut sources, &reranked.0).await?;
                per_mode[MODES.len()].push(metrics::evaluate_query(&run, qrels));
                misses.extend(miss(RERANKED, query, &run, qrels));
            }
            let run = document_run(rag, &mut sources, &order).await?;
            per_mode[slot].push(metrics::evaluate_query(&run, qrels));
            if *mode == Mode::Hybrid {
                misses.extend(miss(name, query, &run, qrels));
            }
        }
        progress(Progress::Query { done: n + 1, total: judged.len() });
    }
    if let Some(dump) = dump {
        dump.finish()?;
    }
    summary.evaluated = judged.len();
    let mut modes: BTreeMap<String, Summary> = MODES
        .iter()
        .zip(&per_mode)
        .map(|((_, name), scores)| ((*name).to_owned(), metrics::aggregate(scores)))
        .collect();
    let rerank = rag.reranker().map(|reranker| {
        modes.insert(RERANKED.to_owned(), metrics::aggregate(&per_mode[MODES.len()]));
        rerank_summary(reranker.name(), &rag.config().retrieval.rerank, rerank_times, graded, candidates)
    });
    summary.without_relevant = modes.values().next().map_or(0, |s| s.without_relevant);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Evaluation { queries: summary, modes, rerank, misses })
}

/// The documents of a chunk ranking, each where its best chunk ranks (the first time it is
/// seen), with that chunk's score.
async fn document_run(
    rag: &Rag,
    sources: &mut HashMap<u64, String>,
    order: &[(u64, f32)],
) -> Result<Vec<(String, f64)>, EvalError> {
    remember_sources(rag, sources, order.iter().map(|f| f.0)).await?;
    let mut seen = std::collections::HashSet::new();
    Ok(order
        .iter()
        .filter_map(|(chunk, score)| sources.get(chunk).map(|s| (s, *score)))
        .filter(|(s, _)| seen.insert(s.as_str()))
        .map(|(s, score)| (s.clone(), f64::from(score)))
        .collect())
}

/// Adds to `sources` the corpus document of each of `chunks` it does not know yet (one store
/// read for all of them).
pub(super) async fn remember_sources(
    rag: &Rag,
    sources: &mut HashMap<u64, String>,
    chunks: impl Iterator<Item = u64>,
) -> Result<(), EvalError> {
    let missing: Vec<i64> = chunks.filter(|id| !sources.contains_key(id)).map(|id| id as i64).collect();
    if !missing.is_empty() {
        for row in rag.store().chunks(&missing).await? {
            sources.insert(row.id as u64, row.source);
        }
    }
    Ok(())
}

/// The hybrid ranking with its head re-ordered by the reranker. Scores become positions (the
/// first scores highest), since the blended order has no scores of its own.
async fn reranked_order(
    rag: &Rag,
    reranker: &dyn Reranker,
    question: &str,
    fused: &[retrieval::Fused],
) -> Result<(Vec<(u64, f32)>, RerankStats), EvalError> {
    let cfg = &rag.config().retrieval.rerank;
    let head: Vec<i64> = fused.iter().take(cfg.candidates).map(|f| f.chunk_id as i64).collect();
    let mut rows: HashMap<i64, crate::store::ChunkRow> =
        rag.store().chunks(&head).await?.into_iter().map(|r| (r.id, r)).collect();
    let sources: Vec<Source> = fused
        .iter()
        .take(cfg.candidates)
        .filter_map(|f| {
            let chunk = rows.remove(&(f.chunk_id as i64))?;
            Some(Source { chunk, score: f.score, bm25_rank: f.bm25_rank, vector_rank: f.vector_rank })
        })
        .collect();
    let (ranked, stats) = rerank::rerank(reranker, cfg, question, sources).await;
    let mut order: Vec<u64> = ranked.iter().map(|s| s.chunk.id as u64).collect();
    let placed: std::collections::HashSet<u64> = order.iter().copied().collect();
    order.extend(fused.iter().map(|f| f.chunk_id).filter(|id| !placed.contains(id)));
    let n = order.len() as f32;
    Ok((order.into_iter().enumerate().map(|(i, id)| (id, n - i as f32)).collect(), stats))
}

/// The miss of one query in one mode, if its first document is not relevant.
fn miss(mode: &str, query: &Query, run: &[(String, f64)], qrels: &metrics::Judgements) -> Option<Miss> {
    let ranking = metrics::ranked(run);
    let relevant = |id: &str| qrels.get(id).is_some_and(|g| *g > 0);
    if !qrels.values().any(|g| *g > 0) || ranking.first().is_some_and(|id| relevant(id)) {
        return None;
    }
    Some(Miss {
        mode: mode.to_owned(),
        query: query.id.clone(),
        text: query.text.clone(),
        first: ranking.first().map(|s| (*s).to_owned()).unwrap_or_default(),
        relevant_at: ranking.iter().position(|id| relevant(id)).map(|p| p + 1),
    })
}

fn rerank_summary(
    name: String,
    cfg: &crate::config::RerankConfig,
    mut times: Vec<f64>,
    graded: usize,
    candidates: usize,
) -> RerankSummary {
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times.get(((times.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    RerankSummary {
        reranker: name,
        candidates: cfg.candidates,
        weight: cfg.weight,
        seconds_mean: times.iter().sum::<f64>() / times.len().max(1) as f64,
        seconds_p50: at(0.5),
        seconds_p95: at(0.95),
        graded: graded as f64 / candidates.max(1) as f64,
    }
}

/// The settings of `rag` as the report states them.
pub fn settings(rag: &Rag, top_k: usize) -> Settings {
    let cfg = rag.config();
    let prefixes = cfg.ollama.embed_prefixes();
    Settings {
        embed_model: cfg.ollama.embed_model.clone(),
        query_prefix: prefixes.query,
        document_prefix: prefixes.document,
        chunk_tokens: cfg.ingest.chunk_tokens,
        chunk_overlap: cfg.ingest.chunk_overlap,
        fusion: cfg.retrieval.fusion,
        rrf_k: cfg.retrieval.rrf_k,
        bm25_weight: cfg.retrieval.bm25_weight,
        vector_weight: cfg.retrieval.vector_weight,
        document_weight: cfg.retrieval.document_weight,
        document_evidence: cfg.retrieval.document_evidence,
        bm25_k1: cfg.retrieval.bm25_k1,
        bm25_b: cfg.retrieval.bm25_b,
        bm25_title_weight: cfg.retrieval.bm25_title_weight,
        bm25_headings_weight: cfg.retrieval.bm25_headings_weight,
        eval_top_k: top_k,
        configured_top_k: (cfg.retrieval.bm25_top_k, cfg.retrieval.vector_top_k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, text: &str) -> CorpusDoc {
        CorpusDoc { id: "1".into(), title: title.into(), text: text.into(), file: None }
    }

    #[test]
    fn documents_become_markdown_with_the_title_as_heading() {
        assert_eq!(document_markdown(&doc("A title", "Body.")), "# A title\n\nBody.");
        assert_eq!(document_markdown(&doc("", " Body. ")), "Body.");
        assert_eq!(document_markdown(&doc("Only\ntitle", "")), "Only\ntitle");
        assert_eq!(document_markdown(&doc("Two\nlines", "x")), "# Two lines\n\nx");
    }
}
