//! `footnote eval DIR --dump-lists FILE`: each judged query's two retriever lists as they come
//! out of the indexes, before any fusion, one JSON line per query.
//!
//! With them, fusion settings can be tried outside the binary in seconds instead of one eval run
//! each (`scripts/eval/replay-fusion.py` replays the shipped fusion and reproduces the report's
//! figures). A line:
//!
//! ```json
//! {"query": "12", "judged": {"4983": 1},
//!  "bm25": [["4983", 17, 9.81], …], "vector": [["4983", 18, 0.71], …]}
//! ```
//!
//! Each hit is `[document, chunk, score]`: the corpus document id (the name the document was
//! stored under), the chunk id, and the retriever's raw score (BM25F, or the cosine similarity),
//! best first, at most `--top-k` of each.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::EvalError;
use super::beir::Query;
use super::metrics::Judgements;
use crate::config::RetrievalConfig;
use crate::index::bm25::Bm25Params;
use crate::rag::Rag;

/// One retrieved chunk: its document, its id, its raw score.
pub type Hit = (String, u64, f32);

#[derive(Serialize)]
struct Line<'a> {
    query: &'a str,
    judged: &'a Judgements,
    bm25: Vec<Hit>,
    vector: Vec<Hit>,
}

/// Writes the lists of one query after another to a file, created (or emptied) when opened.
pub struct ListDump {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    /// The retrieval settings of the evaluation (their top-k, their BM25 parameters).
    cfg: RetrievalConfig,
    scope: Vec<String>,
}

impl ListDump {
    /// A dump of searches in `collection` with `cfg`, written to `path`.
    pub fn create(path: &Path, cfg: &RetrievalConfig, collection: &str) -> Result<ListDump, EvalError> {
        let file = std::fs::File::create(path).map_err(|e| write_error(path, &e))?;
        Ok(ListDump {
            path: path.to_owned(),
            out: BufWriter::new(file),
            cfg: cfg.clone(),
            scope: vec![collection.to_owned()],
        })
    }

    /// Searches both indexes for `query` (the vector index with its `vector`) as the ranking
    /// does, and writes the line. `sources` is the evaluation's chunk → document cache.
    pub async fn write(
        &mut self,
        rag: &Rag,
        query: &Query,
        vector: &[f32],
        judged: &Judgements,
        sources: &mut HashMap<u64, String>,
    ) -> Result<(), EvalError> {
        let (cfg, scope) = (&self.cfg, &self.scope);
        let bm25: Vec<(u64, f32)> = rag
            .indexes()
            .bm25()
            .search_with(scope, &query.text, cfg.bm25_top_k, &Bm25Params::from(cfg))
            .map_err(crate::index::IndexError::from)?
            .iter()
            .map(|h| (h.chunk_id, h.score))
            .collect();
        let nearest = rag.indexes().vector_search().nearest(scope, vector, cfg.vector_top_k).await?;
        super::run::remember_sources(rag, sources, bm25.iter().chain(&nearest).map(|h| h.0)).await?;
        let named = |list: &[(u64, f32)]| -> Vec<Hit> {
            list.iter().filter_map(|&(chunk, score)| sources.get(&chunk).map(|d| (d.clone(), chunk, score))).collect()
        };
        let line = Line { query: &query.id, judged, bm25: named(&bm25), vector: named(&nearest) };
        serde_json::to_writer(&mut self.out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| write_error(&self.path, &e))
    }

    pub fn finish(mut self) -> Result<(), EvalError> {
        self.out.flush().map_err(|e| write_error(&self.path, &e))
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> EvalError {
    EvalError::Write { path: path.to_owned(), reason: e.to_string() }
}
