//! Retrieval evaluation on BEIR-layout data sets (`footnote eval DIR`), and the support check
//! measured on labelled statement/passage pairs (`footnote eval citations FILE`, [`citations`],
//! with [`tune`] picking its weights).
//!
//! - [`beir`] reads the corpus, the queries and the qrels of one split.
//! - [`run`] ingests the corpus into a throwaway collection through [`crate::rag::Rag`], ranks
//!   every judged query in the three [`crate::retrieval::Mode`]s and maps chunks back to corpus
//!   documents (a document ranks where its best chunk ranks).
//! - [`dump`] writes each query's two retriever lists for replaying fusion settings outside.
//! - [`metrics`] holds the pure metric functions (nDCG@10, Recall@10/100, MRR@10).
//!
//! Only `Rag`, `Store` and `retrieval` are used, so the evaluation runs against any Ollama (or
//! the test double) and any store backend.

pub mod beir;
pub mod citations;
pub mod dump;
pub mod metrics;
pub mod run;
pub mod tune;

use std::path::PathBuf;

use crate::index::IndexError;
use crate::rag::RagError;
use crate::store::StoreError;

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A data set file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    /// An output file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    /// A line of a data set file is malformed.
    #[error("{}, line {line}: {reason}", path.display())]
    BadLine { path: PathBuf, line: usize, reason: String },
    /// The data set has nothing to evaluate.
    #[error("nothing to evaluate: {0}")]
    Empty(String),
    /// The collection name could wipe real documents.
    #[error("the evaluation collection must be named `eval:…` (it is emptied and refilled), not {0:?}")]
    Collection(String),
    /// Some chunks have no embedding after ingestion (the embedding model was unreachable).
    #[error("{0} chunk(s) have no embedding: is the embedding model reachable? Run again with --reuse once it is")]
    MissingEmbeddings(i64),
    /// The process keeping the search indexes (named) has not indexed the collection in time.
    #[error("{0} has not indexed the collection yet: run again with --reuse in a moment")]
    NotIndexed(String),
    #[error(transparent)]
    Rag(#[from] RagError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
}
