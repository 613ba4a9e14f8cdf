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

/// The figures `scripts/eval/replay-fusion.py` computes from a `--dump-lists` file.
fn replay(dump: &Path, settings: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/eval/replay-fusion.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dump)
        .args(settings)
        .arg("--json")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (needed by {}): {e}", script.display()));
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// A BEIR data set whose documents run to several chunks and whose questions share words with
/// many documents, so that fusion settings change the figures (`beir-mini` ranks almost
/// perfectly whatever the settings).
fn overlapping_data_set(dir: &Path) {
    const WORDS: [&str; 24] = [
        "river", "copper", "lantern", "harvest", "signal", "glacier", "orchard", "furnace", "ledger", "compass",
        "meadow", "turbine", "archive", "pollen", "harbor", "quartz", "thread", "summit", "ember", "canal", "violin",
        "cedar", "marble", "beacon",
    ];
    // A small deterministic generator (no randomness between runs).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let mut docs: Vec<(String, String)> = Vec::new();
    for _ in 0..30 {
        let words: Vec<&str> = (0..200 + next(600)).map(|_| WORDS[next(WORDS.len())]).collect();
        let text = words.chunks(13).map(|s| format!("{}.", s.join(" "))).collect::<Vec<_>>().join(" ");
        docs.push((format!("{} {}", WORDS[next(WORDS.len())], WORDS[next(WORDS.len())]), text));
    }
    // doc28 is doc05 again: the two always tie, and the tie is broken by id (doc28 first).
    docs[28] = docs[5].clone();
    let mut corpus = String::new();
    for (d, (title, text)) in docs.iter().enumerate() {
        corpus.push_str(&serde_json::json!({"_id": format!("doc{d:02}"), "title": title, "text": text}).to_string());
        corpus.push('\n');
    }
    let (mut queries, mut qrels) = (String::new(), String::from("query-id\tcorpus-id\tscore\n"));
    for q in 0..16 {
        let text: Vec<&str> = (0..4).map(|_| WORDS[next(WORDS.len())]).collect();
        queries.push_str(&serde_json::json!({"_id": format!("q{q:02}"), "text": text.join(" ")}).to_string());
        queries.push('\n');
        qrels.push_str(&format!("q{q:02}\tdoc05\t1\n"));
        for _ in 0..3 {
            qrels.push_str(&format!("q{q:02}\tdoc{:02}\t{}\n", next(30), 1 + next(2)));
        }
    }
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_dumps_lists_that_replay_to_the_same_figures() {
    let double = OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let data = cli.data.path().join("overlap");
    overlapping_data_set(&data);
    let dir = data.to_str().unwrap();
    let dump = cli.data.path().join("lists.jsonl");
    let dump_arg = dump.to_str().unwrap();

    let report = cli.json(&["eval", dir, "--json", "--dump-lists", dump_arg]);
    let lines: Vec<Value> =
        std::fs::read_to_string(&dump).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // One line per judged query, in queries.jsonl order.
    let ids: Vec<String> = lines.iter().map(|l| l["query"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, (0..16).map(|q| format!("q{q:02}")).collect::<Vec<_>>());
    assert!(report["corpus"]["chunks"].as_i64().unwrap() >= 60, "documents of several chunks: {report}");
    let corpus: Vec<String> = std::fs::read_to_string(data.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["_id"].as_str().unwrap().to_owned())
        .collect();
    for line in &lines {
        assert!(line["judged"].as_object().is_some_and(|j| !j.is_empty()), "{line}");
        for list in ["bm25", "vector"] {
            let hits = line[list].as_array().unwrap();
            assert!(!hits.is_empty(), "{list}: {line}");
            let scores: Vec<f64> = hits.iter().map(|h| h[2].as_f64().unwrap()).collect();
            assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{list} is best first: {scores:?}");
            for hit in hits {
                let doc = hit[0].as_str().unwrap();
                assert!(corpus.iter().any(|id| id == doc), "{doc} is a corpus id");
                assert!(hit[1].as_u64().is_some(), "{hit}");
            }
        }
    }

    // Replayed with the settings the eval ran with, the lists give the eval's own figures.
    let same = |replayed: &Value, report: &Value| {
        for mode in ["bm25", "vector", "hybrid"] {
            for name in ["ndcg_at_10", "recall_at_100"] {
                let (r, e) = (replayed[mode][name].as_f64().unwrap(), metric(report, mode, name));
                assert!((r - e).abs() < 1e-6, "{mode}.{name}: replayed {r}, eval {e}");
            }
        }
    };
    same(&replay(&dump, &[]), &report);

    // And with other settings, what the eval gives under them.
    let other: [&[(&str, &str)]; 3] = [
        &[("FOOTNOTE_RETRIEVAL__DOCUMENT_WEIGHT", "0.5"), ("FOOTNOTE_RETRIEVAL__DOCUMENT_EVIDENCE", "0.3")],
        &[
            ("FOOTNOTE_RETRIEVAL__FUSION", "rrf"),
            ("FOOTNOTE_RETRIEVAL__RRF_K", "1"),
            ("FOOTNOTE_RETRIEVAL__BM25_WEIGHT", "1"),
            ("FOOTNOTE_RETRIEVAL__VECTOR_WEIGHT", "1.5"),
            ("FOOTNOTE_RETRIEVAL__DOCUMENT_WEIGHT", "0.5"),
        ],
        &[("FOOTNOTE_RETRIEVAL__FUSION", "rrf"), ("FOOTNOTE_RETRIEVAL__DOCUMENT_EVIDENCE", "2")],
    ];
    for settings in other {
        let out = cli.run_with(&["eval", dir, "--json", "--reuse"], settings);
        assert!(out.status.success(), "{}", text(&out));
        let evaluated: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_ne!(evaluated["modes"], report["modes"], "the settings matter on this data set: {settings:?}");
        let args: Vec<String> = settings
            .iter()
            .flat_map(|(key, value)| {
                let name = key.trim_start_matches("FOOTNOTE_RETRIEVAL__").to_lowercase().replace('_', "-");
                [format!("--{name}"), (*value).to_owned()]
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        same(&replay(&dump, &args), &evaluated);
    }

    // A dump that cannot be written is an error naming the file, before any query runs.
    let out = cli.run(&["eval", dir, "--reuse", "--dump-lists", "/nonexistent/dir/lists.jsonl"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot write /nonexistent/dir/lists.jsonl"), "{}", text(&out));
}

/// Labelled pairs made from the `beir-mini` abstracts: each abstract with its own first
/// sentence (SUPPORT), with that sentence negated (CONTRADICT) and with another abstract's first
/// sentence (NOINFO), so most statements come in two pairs, as in SciFact.
fn labelled_pairs(path: &Path) -> usize {
    let docs: Vec<Value> = std::fs::read_to_string(fixture().join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = |d: &Value| d["text"].as_str().unwrap().split(". ").next().unwrap().trim_end_matches('.').to_owned();
    let mut lines = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let passage = doc["text"].as_str().unwrap();
        let own = first(doc);
        let other = first(&docs[(i + 3) % docs.len()]);
        let negated = own.replacen(' ', " does not say that ", 1);
        for (statement, label) in
            [(own.as_str(), "SUPPORT"), (negated.as_str(), "CONTRADICT"), (other.as_str(), "noinfo")]
        {
            lines.push(
                serde_json::json!({"statement": format!("{statement}."), "passage": passage, "label": label})
                    .to_string(),
            );
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    lines.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_citations_scores_tunes_and_refuses_bad_pairs() {
    let double = OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let file = cli.data.path().join("pairs.jsonl");
    let n = labelled_pairs(&file);
    let file = file.to_str().unwrap();

    let report = cli.json(&["eval", "citations", file, "--json"]);
    assert_eq!(report["pairs"], n);
    assert_eq!(
        report["labels"],
        serde_json::json!({"CONTRADICT": 10, "NOINFO": 10, "SUPPORT": 10}),
        "labels read case-blind"
    );
    assert_eq!(report["mode"], "embed");
    assert_eq!(report["embed_model"], "nomic-embed-text");
    let figures = &report["figures"];
    let confusion = &figures["confusion"];
    for label in ["SUPPORT", "CONTRADICT", "NOINFO"] {
        let c = &confusion[label];
        assert_eq!(c["supported"].as_u64().unwrap() + c["not_supported"].as_u64().unwrap(), 10, "{label}: {c}");
    }
    // A statement copied from its passage is told apart from another passage's sentence.
    assert!(figures["auc"].as_f64().unwrap() > 0.6, "{figures}");
    assert!(confusion["SUPPORT"]["supported"].as_u64().unwrap() >= 8, "{confusion}");
    assert!(confusion["NOINFO"]["supported"].as_u64().unwrap() <= 2, "{confusion}");
    assert!(report["cross_validated"].is_null(), "only --tune cross-validates");
    assert!(report["cosine_baseline"]["auc"].as_f64().is_some());

    // Without embeddings: the lexical fallback, no cosine baseline.
    let lexical = cli.json(&["eval", "citations", file, "--json", "--lexical"]);
    assert_eq!(lexical["mode"], "lexical");
    assert!(lexical["cosine_baseline"].is_null());

    // --tune fits the weights on the file, cross-validates them and prints a config section.
    let tuned = cli.json(&["eval", "citations", file, "--json", "--tune"]);
    let cv = tuned["cross_validated"].as_array().unwrap_or_else(|| panic!("{tuned}"));
    assert!((0.0..=1.0).contains(&cv[0].as_f64().unwrap()), "{cv:?}");
    assert_ne!(tuned["weights"], report["weights"]);
    let out = cli.run(&["eval", "citations", file, "--tune"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for needle in
        ["cross-validated by statement", "[answer.support]", "tuned_for = \"nomic-embed-text\"", "contrary = "]
    {
        assert!(shown.contains(needle), "{needle:?} missing in:\n{shown}");
    }

    // A line that is not a labelled pair is refused with its line number.
    let bad = cli.data.path().join("bad.jsonl");
    let first_line = std::fs::read_to_string(file).unwrap().lines().next().unwrap().to_owned();
    std::fs::write(&bad, format!("{first_line}\n{}\n", first_line.replace("SUPPORT", "MAYBE"))).unwrap();
    let out = cli.run(&["eval", "citations", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("line 2: label \"MAYBE\""), "{}", text(&out));
}
