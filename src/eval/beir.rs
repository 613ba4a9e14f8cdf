//! Reading a BEIR-layout directory: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
//!
//! Corpus lines are `{"_id", "title", "text"}` and query lines `{"_id", "text"}`; an `"id"` key
//! is accepted in place of `"_id"` (some exports use it). A corpus line may name a `"file"`
//! (relative to the data set directory) instead of giving a text: that document is ingested as
//! the file it is (an email, a PDF, …), sniffed like any upload, named by its id. The qrels file is tab-separated
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
    /// The file to ingest instead of `title` and `text` (resolved against the data set directory).
    pub file: Option<PathBuf>,
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
    #[serde(default)]
    file: Option<String>,
}

/// One parsed line: id, title, text, file.
type Fields = (String, String, String, Option<String>);

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

/// Parses JSON lines into `(id, title, text, file)`, 1-based line numbers in errors. A line
/// needs a `text`, or (`allow_file`) a `file`.
fn json_lines(path: &Path, text: &str, allow_file: bool) -> Result<Vec<Fields>, EvalError> {
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
        let file = line.file.filter(|_| allow_file);
        let body = match (line.text, &file) {
            (Some(body), _) => body,
            (None, Some(_)) => String::new(),
            (None, None) => return Err(bad(path, i + 1, "missing field `text`")),
        };
        out.push((id, line.title.unwrap_or_default(), body, file));
    }
    Ok(out)
}

/// Reads `corpus.jsonl`; `file` entries are resolved against its directory.
pub fn read_corpus(path: &Path) -> Result<Vec<CorpusDoc>, EvalError> {
    let docs = json_lines(path, &read(path)?, true)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(docs
        .into_iter()
        .map(|(id, title, text, file)| CorpusDoc { id, title, text, file: file.map(|f| dir.join(f)) })
        .collect())
}

/// Reads `queries.jsonl`.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, EvalError> {
    let queries = json_lines(path, &read(path)?, false)?;
    Ok(queries.into_iter().map(|(id, _, text, _)| Query { id, text }).collect())
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
        let docs = json_lines(&p(), text, false).unwrap();
        assert_eq!(
            docs,
            vec![("a".into(), "T".into(), "body".into(), None), ("7".into(), String::new(), "b".into(), None)]
        );
    }

    #[test]
    fn bad_lines_name_their_number() {
        let text = "{\"_id\":\"a\",\"text\":\"ok\"}\n{\"_id\":\"b\",\"text\":\n";
        let err = json_lines(&p(), text, true).unwrap_err().to_string();
        assert!(err.contains("x.jsonl") && err.contains("line 2"), "{err}");
        let err = json_lines(&p(), "{\"_id\":\"a\"}", true).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("text"), "{err}");
        let err = json_lines(&p(), "{\"text\":\"no id\"}", true).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn corpus_lines_may_name_a_file_instead_of_a_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.jsonl");
        std::fs::write(&path, "{\"_id\":\"m.eml\",\"file\":\"files/m.eml\"}\n{\"_id\":\"b\",\"text\":\"x\"}\n")
            .unwrap();
        let docs = read_corpus(&path).unwrap();
        assert_eq!(docs[0].file.as_deref(), Some(dir.path().join("files/m.eml").as_path()));
        assert_eq!(docs[1].file, None);
        // Queries never read a file: a query line still needs its text.
        let err = json_lines(&p(), "{\"_id\":\"q\",\"file\":\"f\"}", false).unwrap_err().to_string();
        assert!(err.contains("text"), "{err}");
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
