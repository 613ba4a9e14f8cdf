//! `footnote eval DIR`: retrieval quality on a BEIR-layout data set, as a table or JSON; and
//! `footnote eval citations FILE`: the support check on labelled statement/passage pairs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use footnote::config::Config;
use footnote::eval::run::{self, Progress, QueryOptions, Report};
use footnote::eval::{beir, metrics::Summary};
use footnote::rag::{ModelCheck, Rag};
use indicatif::{ProgressBar, ProgressStyle};

/// What `footnote eval` was asked.
#[derive(Clone, Debug)]
pub struct EvalArgs {
    pub split: String,
    /// `None`: `eval:<directory name>`.
    pub collection: Option<String>,
    pub reuse: bool,
    pub json: bool,
    pub limit_queries: Option<usize>,
    pub top_k: usize,
    /// Where to write each query's retriever lists (`--dump-lists`).
    pub dump_lists: Option<std::path::PathBuf>,
}

/// `eval:` followed by the data set directory's name, lower-cased.
fn default_collection(dir: &Path) -> String {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    format!("eval:{}", name.to_lowercase())
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let template = format!("{what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// `footnote eval DIR`
pub async fn eval(config: Config, dir: &Path, args: EvalArgs) -> Result<ExitCode> {
    let data =
        beir::load(dir, &args.split).with_context(|| format!("cannot read the BEIR data set in {}", dir.display()))?;
    let collection = args.collection.clone().unwrap_or_else(|| default_collection(dir));
    let access = Rag::index_access(&config, "eval")?;
    let rag = Rag::open_as(config, ModelCheck::Refuse, access).await.context("cannot open the data directory")?;
    if !args.json {
        eprintln!(
            "Data set {}: {} documents, {} queries, qrels/{}.tsv for {} queries; collection “{collection}”.",
            dir.display(),
            data.corpus.len(),
            data.queries.len(),
            args.split,
            data.qrels.len()
        );
    }
    if let Some(path) = &args.dump_lists {
        // Refused now rather than after a long ingest.
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ingest_bar = bar(data.corpus.len(), "ingest");
    let query_bar = bar(0, "query ");
    let progress = |p: Progress| match p {
        Progress::Ingest { done, total } => {
            ingest_bar.set_length(total as u64);
            ingest_bar.set_position(done as u64);
        }
        Progress::Query { done, total } => {
            ingest_bar.finish_and_clear();
            query_bar.set_length(total as u64);
            query_bar.set_position(done as u64);
        }
    };
    let corpus = run::fill_collection(&rag, &collection, &data.corpus, args.reuse, &progress).await?;
    ingest_bar.finish_and_clear();
    if corpus.documents == 0 {
        let why = corpus.failed.first().map_or_else(String::new, |(id, why)| format!(" (document {id}: {why})"));
        anyhow::bail!("no document of the corpus could be stored{why}: there is nothing to measure; see the log above");
    }
    let options = QueryOptions { top_k: args.top_k, limit: args.limit_queries, dump_lists: args.dump_lists.clone() };
    let evaluation = run::evaluate(&rag, &collection, &data, &options, &progress).await?;
    query_bar.finish_and_clear();
    let report = Report {
        dataset: dir.display().to_string(),
        split: args.split.clone(),
        collection,
        settings: run::settings(&rag, args.top_k),
        corpus,
        queries: evaluation.queries,
        modes: evaluation.modes,
        rerank: evaluation.rerank,
        misses: evaluation.misses,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text: the metrics table, then the settings and counts behind it.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.settings;
    out.push_str(&format!("{} ({} split), collection “{}”\n\n", r.dataset, r.split, r.collection));
    out.push_str("| mode   | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |\n");
    out.push_str("|--------|--------:|----------:|-----------:|-------:|\n");
    let names = run::MODES.iter().map(|(_, name)| *name).chain([run::RERANKED]);
    for (name, m) in names.filter_map(|name| r.modes.get(name).map(|m| (name, m))) {
        let Summary { ndcg_at_10, recall_at_10, recall_at_100, mrr_at_10, .. } = m;
        out.push_str(&format!(
            "| {name:<6} | {ndcg_at_10:>7.4} | {recall_at_10:>9.4} | {recall_at_100:>10.4} | {mrr_at_10:>6.4} |\n"
        ));
    }
    let prefix = if s.query_prefix.is_empty() && s.document_prefix.is_empty() {
        "no prefixes".to_owned()
    } else {
        format!("prefixes {:?} / {:?}", s.query_prefix, s.document_prefix)
    };
    out.push_str(&format!(
        "\nEmbedding model {} ({prefix}); chunks of {} tokens, overlap {}.\n",
        s.embed_model, s.chunk_tokens, s.chunk_overlap
    ));
    let fusion = match s.fusion {
        footnote::config::Fusion::Rrf => format!("RRF, k = {}", s.rrf_k),
        footnote::config::Fusion::Linear => "linear (min-max)".to_owned(),
    };
    out.push_str(&format!(
        "Fusion {fusion}, weights BM25 {} / vector {}. Each retriever returned its top {} chunks (answers use {} / {}); \
         chunks were folded into documents, each ranked at its best chunk.\n",
        s.bm25_weight, s.vector_weight, s.eval_top_k, s.configured_top_k.0, s.configured_top_k.1
    ));
    out.push_str(&format!(
        "BM25 k1 {}, b {}, field weights title {} / headings {}; documents weigh {} in the fusion (evidence {}).\n",
        s.bm25_k1, s.bm25_b, s.bm25_title_weight, s.bm25_headings_weight, s.document_weight, s.document_evidence
    ));
    if let Some(k) = &r.rerank {
        out.push_str(&format!(
            "Reranker {}: {} candidates, weight {}; {:.0}% graded in time; added {:.2} s per question \
             (median {:.2} s, 95th percentile {:.2} s).\n",
            k.reranker,
            k.candidates,
            k.weight,
            k.graded * 100.0,
            k.seconds_mean,
            k.seconds_p50,
            k.seconds_p95
        ));
    }
    let c = &r.corpus;
    let how = if c.reused { "reused as stored".to_owned() } else { format!("ingested in {:.0} s", c.seconds) };
    out.push_str(&format!(
        "Corpus: {} documents → {} stored ({} chunks), {how}; {} duplicate(s), {} refused.\n",
        c.corpus_documents,
        c.documents,
        c.chunks,
        c.duplicates.len(),
        c.failed.len()
    ));
    for (id, why) in c.failed.iter().take(5) {
        out.push_str(&format!("  refused {id}: {why}\n"));
    }
    let q = &r.queries;
    out.push_str(&format!(
        "Queries: {} evaluated in {:.0} s; {} skipped without qrels, {} qrels for unknown queries, \
         {} without a relevant document (not averaged), {} judged pairs name unknown documents.\n",
        q.evaluated,
        q.seconds,
        q.skipped_without_qrels,
        q.qrels_without_query,
        q.without_relevant,
        q.qrels_unknown_documents
    ));
    if !r.misses.is_empty() {
        out.push_str(&format!("\n{} question(s) whose first document is not a relevant one:\n", r.misses.len()));
        for m in &r.misses {
            let at = m.relevant_at.map_or("not retrieved".to_owned(), |n| format!("relevant at {n}"));
            out.push_str(&format!("  [{}] {}: first {}, {at}: {}\n", m.mode, m.query, m.first, m.text));
        }
    }
    out
}

/// What `footnote eval citations` was asked.
#[derive(Clone, Debug)]
pub struct CitationArgs {
    pub json: bool,
    /// Fit new weights and thresholds on the file and report those.
    pub tune: bool,
    /// Lexical evidence only (no embeddings).
    pub lexical: bool,
    /// Ask the chat model about up to this many doubtful pairs.
    pub judge: Option<usize>,
}

/// `footnote eval citations FILE`
pub async fn eval_citations(config: Config, file: &Path, args: CitationArgs) -> Result<ExitCode> {
    use footnote::eval::citations;
    use footnote::eval::tune;
    use footnote::rag::support::{FEATURE_COUNT, Features, Weights};

    let pairs = citations::load(file).with_context(|| format!("cannot read the pairs in {}", file.display()))?;
    let embed = !args.lexical;
    if !args.json {
        let how = if embed { format!("embedding with {}", config.ollama.embed_model) } else { "lexical only".into() };
        eprintln!("{} pairs from {}; {how}…", pairs.len(), file.display());
    }
    let (features, embedding) = citations::features(&config, &pairs, embed).await?;
    let rows: Vec<[f32; FEATURE_COUNT]> = features.iter().map(Features::values).collect();
    let truth: Vec<bool> = pairs.iter().map(citations::Pair::supported).collect();
    let used = [embed, true, true, true, true, true, embed];
    let (weights, cross_validated) = if args.tune {
        let groups: Vec<&str> = pairs.iter().map(|p| p.statement.as_str()).collect();
        (tune::tune(&rows, &truth, used), Some(tune::cross_validate(&rows, &truth, &groups, used, 5)))
    } else if embed {
        (Weights::from_config(&config.answer.support), None)
    } else {
        (Weights::LEXICAL, None)
    };
    let model = embed.then_some(config.ollama.embed_model.as_str());
    let mut report = citations::report(file, &pairs, &features, &weights, model, embedding, cross_validated);
    if let Some(limit) = args.judge {
        report.judge = Some(citations::judge_doubtful(&config, &pairs, &features, &weights, limit).await?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", citation_table(&report));
        if args.tune {
            println!("\nWeights picked on this file (for footnote.toml):\n");
            print!("{}", citations::toml_section(&weights, model.unwrap_or("")));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The citation report as text.
pub fn citation_table(r: &footnote::eval::citations::CitationReport) -> String {
    let mut out = String::new();
    let labels: Vec<String> = r.labels.iter().map(|(l, n)| format!("{n} {l}")).collect();
    out.push_str(&format!("{}: {} pairs ({})\n", r.file, r.pairs, labels.join(", ")));
    match &r.embed_model {
        Some(m) => out.push_str(&format!("Mode: embed ({m}, {:.0} s embedding) + lexical\n\n", r.embedding_seconds)),
        None => out.push_str("Mode: lexical only\n\n"),
    }
    let f = &r.figures;
    let p = &f.at_threshold;
    out.push_str("| scorer | threshold | precision | recall | F1 | ROC-AUC |\n|---|---:|---:|---:|---:|---:|\n");
    out.push_str(&format!(
        "| support check | {:.3} | {:.3} | {:.3} | **{:.3}** | **{:.3}** |\n",
        p.threshold, p.precision, p.recall, p.f1, f.auc
    ));
    let b = &r.overlap_baseline;
    out.push_str(&format!(
        "| content-word overlap alone (best threshold) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        b.best.threshold, b.best.precision, b.best.recall, b.best.f1, b.auc
    ));
    if let Some(b) = &r.cosine_baseline {
        out.push_str(&format!(
            "| embedding cosine alone (best threshold) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            b.best.threshold, b.best.precision, b.best.recall, b.best.f1, b.auc
        ));
    }
    if let Some((auc, best)) = &r.cross_validated {
        out.push_str(&format!(
            "| support check, 5-fold cross-validated by statement | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            best.threshold, best.precision, best.recall, best.f1, auc
        ));
    }
    out.push_str(&format!("\nSUPPORT vs CONTRADICT only: ROC-AUC {:.3}\n", f.auc_support_vs_contradict));
    out.push_str("\n| label | called supported | not supported |\n|---|---:|---:|\n");
    for (label, c) in &f.confusion {
        out.push_str(&format!("| {label} | {} | {} |\n", c.supported, c.not_supported));
    }
    let names: Vec<String> = r.features.iter().zip(&r.weights).map(|(n, w)| format!("{n} {w:.3}")).collect();
    out.push_str(&format!(
        "\nWeights: bias {:.3}, {}; thresholds supported {:.3}, weak {:.3}, attribute {:.3}.\n",
        r.bias,
        names.join(", "),
        r.supported,
        r.weak,
        r.attribute
    ));
    if let Some(j) = &r.judge {
        let w = &j.with_judge;
        out.push_str(&format!(
            "\nModel judge ({}): {} doubtful pairs asked, {} answered yes/no, {:.1}% right, {:.0} s. With its verdicts: \
             precision {:.3}, recall {:.3}, F1 {:.3}, ROC-AUC {:.3}.\n",
            j.model,
            j.asked,
            j.answered,
            j.accuracy * 100.0,
            j.seconds,
            w.at_threshold.precision,
            w.at_threshold.recall,
            w.at_threshold.f1,
            w.auc
        ));
    }
    out
}
