//! Reading a BEIR-layout directory: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
//!
//! Corpus lines are `{"_id", "title", "text"}` and query lines `{"_id", "text"}`; an `"id"` key
//! is accepted in place of `"_id"` (some exports use it). The qrels file is tab-separated
//! `query-id corpus-id score` with a header line. Every malformed line is an error naming the
//! file and the line number; blank lines are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::EvalError;
use super::metrics::Judgements;

/// One corpus document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusDoc {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// One query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// A BEIR data set with the qrels of one split.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub corpus: Vec<CorpusDoc>,
    pub queries: Vec<Query>,
    /// Query id → judged documents.
    pub qrels: BTreeMap<String, Judgements>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "_id", alias = "id")]
    id: IdValue,
    #[serde(default)]
    title: Option<String>,
    text: Option<String>,
}

/// Ids are strings in BEIR, but some exports write numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(serde_json::Number),
}

impl IdValue {
    fn into_string(self) -> String {
        match self {
            IdValue::Text(s) => s,
            IdValue::Number(n) => n.to_string(),
        }
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|e| EvalError::Read { path: path.to_path_buf(), reason: e.to_string() })
}

fn bad(path: &Path, line: usize, reason: impl Into<String>) -> EvalError {
    EvalError::BadLine { path: path.to_path_buf(), line, reason: reason.into() }
}

/// Parses JSON lines into `(id, title, text)`, 1-based line numbers in errors.
fn json_lines(path: &Path, text: &str) -> Result<Vec<(String, String, String)>, EvalError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| bad(path, i + 1, e.to_string()))?;
        let id = line.id.into_string();
        if id.trim().is_empty() {
            return Err(bad(path, i + 1, "empty id"));
        }
        let body = line.text.ok_or_else(|| bad(path, i + 1, "missing field `text`"))?;
        out.push((id, line.title.unwrap_or_default(), body));
    }
    Ok(out)
}

/// Reads `corpus.jsonl`.
pub fn read_corpus(path: &Path) -> Result<Vec<CorpusDoc>, EvalError> {
    let docs = json_lines(path, &read(path)?)?;
    Ok(docs.into_iter().map(|(id, title, text)| CorpusDoc { id, title, text }).collect())
}

/// Reads `queries.jsonl`.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, EvalError> {
    let queries = json_lines(path, &read(path)?)?;
    Ok(queries.into_iter().map(|(id, _, text)| Query { id, text }).collect())
}

/// Parses a qrels TSV (header `query-id corpus-id score`). A repeated pair keeps its last grade.
pub fn parse_qrels(path: &Path, text: &str) -> Result<BTreeMap<String, Judgements>, EvalError> {
    let mut qrels: BTreeMap<String, Judgements> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if i == 0 && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("query-id")) {
            continue;
        }
        let [query, doc, score] = fields[..] else {
            return Err(bad(path, i + 1, format!("expected 3 tab-separated fields, found {}", fields.len())));
        };
        let grade: i32 = score.parse().map_err(|_| bad(path, i + 1, format!("score {score:?} is not an integer")))?;
        if query.is_empty() || doc.is_empty() {
            return Err(bad(path, i + 1, "empty query or corpus id"));
        }
        qrels.entry(query.to_owned()).or_default().insert(doc.to_owned(), grade);
    }
    Ok(qrels)
}

/// Reads `qrels/<split>.tsv`.
pub fn read_qrels(path: &Path) -> Result<BTreeMap<String, Judgements>, EvalError> {
    parse_qrels(path, &read(path)?)
}

/// The three files of a BEIR directory.
pub fn paths(dir: &Path, split: &str) -> [PathBuf; 3] {
    [dir.join("corpus.jsonl"), dir.join("queries.jsonl"), dir.join("qrels").join(format!("{split}.tsv"))]
}

/// Reads a whole BEIR directory with the qrels of `split`.
pub fn load(dir: &Path, split: &str) -> Result<Dataset, EvalError> {
    let [corpus, queries, qrels] = paths(dir, split);
    Ok(Dataset { corpus: read_corpus(&corpus)?, queries: read_queries(&queries)?, qrels: read_qrels(&qrels)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("x.jsonl")
    }

    #[test]
    fn accepts_id_or_underscore_id_and_numbers() {
        let text = "{\"_id\":\"a\",\"title\":\"T\",\"text\":\"body\"}\n\n{\"id\":7,\"text\":\"b\"}\n";
        let docs = json_lines(&p(), text).unwrap();
        assert_eq!(docs, vec![("a".into(), "T".into(), "body".into()), ("7".into(), String::new(), "b".into())]);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let text = "{\"_id\":\"a\",\"text\":\"ok\"}\n{\"_id\":\"b\",\"text\":\n";
        let err = json_lines(&p(), text).unwrap_err().to_string();
        assert!(err.contains("x.jsonl") && err.contains("line 2"), "{err}");
        let err = json_lines(&p(), "{\"_id\":\"a\"}").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("text"), "{err}");
        let err = json_lines(&p(), "{\"text\":\"no id\"}").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn qrels_with_header_grades_and_errors() {
        let q = parse_qrels(&p(), "query-id\tcorpus-id\tscore\n1\ta\t1\n1\tb\t2\n2\tc\t0\n").unwrap();
        assert_eq!(q["1"]["b"], 2);
        assert_eq!(q["2"]["c"], 0);
        let err = parse_qrels(&p(), "query-id\tcorpus-id\tscore\n1\ta\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_qrels(&p(), "1\ta\tyes\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("yes"), "{err}");
    }
}
