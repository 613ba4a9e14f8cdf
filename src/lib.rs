//! Footnote's core: answers questions from your own documents with numbered, checked sources,
//! using local models served by Ollama.
//!
//! - [`config`]: layered configuration (defaults, `OLLAMA_HOST`, TOML file, `FOOTNOTE_…` env).
//! - [`llm`]: the Ollama REST client (embed, chat, generate, ps, tags, show, warm-up).
//! - [`ingest`]: file type sniffing, text extraction with limits, heading- and page-aware chunking.
//! - [`store`]: the database (source of truth): collections, documents, chunks, vectors, change log.
//! - [`index`]: derived search indexes rebuilt from the store: tantivy BM25 and the vector index.
//! - [`retrieval`]: BM25 + vector search inside the asker's collections, fused by RRF.
//! - [`eval`]: retrieval quality on BEIR data sets (`footnote eval`): nDCG@10, Recall, MRR.
//! - [`rag`]: the `Rag` service (ingest, ask with checked citations) implementing
//!   [`footnote_adapter::Gateway`], with the scope policy and the model queue in front of it.
//! - [`http`]: the JSON API, metrics, OpenAPI document and web page (axum).
//! - [`plugins`]: the host of plugins in other processes, over the wire protocol of
//!   [`footnote_adapter::wire`].
//! - [`serve`]: `footnote serve`: the HTTP server, the adapter runtime and background work.

pub mod adapters;
pub mod config;
pub mod eval;
pub mod http;
pub mod index;
pub mod ingest;
pub mod llm;
pub mod mcp;
pub mod plugins;
pub mod rag;
pub mod retrieval;
pub mod serve;
pub mod store;

/// Installs the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
