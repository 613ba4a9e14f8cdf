//! `footnote eval` end to end: the binary ingests the tiny BEIR fixture (`fixtures/beir-mini`)
//! with Ollama played by the double, then ranks its queries in the three modes.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{Cli, text};
use footnote_ollama_double::OllamaDouble;
use serde_json::Value;

trait Json {
    fn json(&self, args: &[&str]) -> Value;
}

impl Json for Cli {
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/beir-mini")
}

fn metric(report: &Value, mode: &str, name: &str) -> f64 {
    report["modes"][mode][name].as_f64().unwrap_or_else(|| panic!("no {mode}.{name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_ingests_the_fixture_and_scores_three_modes() {
    let double = OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let dir = fixture();
    let dir = dir.to_str().unwrap();

    let report = cli.json(&["eval", dir, "--json"]);
    assert_eq!(report["collection"], "eval:beir-mini");
    assert_eq!(report["split"], "test");
    assert_eq!(report["settings"]["embed_model"], "nomic-embed-text");
    assert_eq!(report["settings"]["eval_top_k"], 200);
    assert_eq!(report["settings"]["fusion"], "linear");
    let corpus = &report["corpus"];
    assert_eq!(corpus["corpus_documents"], 10);
    assert_eq!(corpus["documents"], 10);
    assert_eq!(corpus["reused"], false);
    assert!(corpus["chunks"].as_i64().unwrap() >= 10, "{corpus}");
    assert_eq!(corpus["failed"].as_array().unwrap().len(), 0);
    let queries = &report["queries"];
    assert_eq!(queries["evaluated"], 6, "q1-q6 have qrels: {queries}");
    assert_eq!(queries["skipped_without_qrels"], 1, "q7");
    assert_eq!(queries["qrels_without_query"], 1, "q99");
    assert_eq!(queries["without_relevant"], 1, "q6 is judged 0 only");
    assert_eq!(queries["qrels_unknown_documents"], 0);

    for mode in ["bm25", "vector", "hybrid"] {
        let m = &report["modes"][mode];
        assert_eq!(m["queries"], 5, "{mode}: {m}");
        assert_eq!(m["without_relevant"], 1, "{mode}: {m}");
        for name in ["ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"] {
            let v = metric(&report, mode, name);
            assert!((0.0..=1.0).contains(&v), "{mode}.{name} = {v}");
        }
        // Every relevant document is among the 10 documents of the collection.
        assert_eq!(metric(&report, mode, "recall_at_100"), 1.0, "{mode}");
    }
    assert!(metric(&report, "hybrid", "ndcg_at_10") >= 0.8, "{report:#}");
    assert!(metric(&report, "bm25", "mrr_at_10") >= 0.8, "{report:#}");

    // Changing nothing but retrieval settings: the collection is used as it is.
    let reused = cli.json(&["eval", dir, "--json", "--reuse"]);
    assert_eq!(reused["corpus"]["reused"], true);
    assert_eq!(reused["modes"], report["modes"]);

    // Without --reuse the collection is emptied and filled again, not doubled.
    let again = cli.json(&["eval", dir, "--json", "--limit-queries", "2"]);
    assert_eq!(again["corpus"]["documents"], 10);
    assert_eq!(again["corpus"]["reused"], false);
    assert_eq!(again["queries"]["evaluated"], 2);

    // The text table names the modes, the metrics and the settings.
    let out = cli.run(&["eval", dir, "--reuse"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for needle in [
        "| bm25 ",
        "| vector ",
        "| hybrid ",
        "nDCG@10",
        "Recall@100",
        "MRR@10",
        "Fusion linear (min-max), weights BM25 0.6 / vector 0.4",
        "top 200 chunks",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing in:\n{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_refuses_bad_data_and_unsafe_collections() {
    let double = OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let dir = cli.data.path().join("broken");
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(dir.join("corpus.jsonl"), "{\"_id\":\"a\",\"text\":\"fine\"}\n{\"_id\":\"b\",\"text\":\"cut\n")
        .unwrap();
    std::fs::write(dir.join("queries.jsonl"), "{\"_id\":\"q\",\"text\":\"fine?\"}\n").unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq\ta\t1\n").unwrap();
    let out = cli.run(&["eval", dir.to_str().unwrap()]);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("corpus.jsonl, line 2"), "{shown}");

    let out = cli.run(&["eval", fixture().to_str().unwrap(), "--split", "dev"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("dev.tsv"), "{}", text(&out));

    let out = cli.run(&["eval", fixture().to_str().unwrap(), "-c", "handbook"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("must be named `eval:"), "{}", text(&out));
}
