//! Configuration: built-in defaults, then `OLLAMA_HOST`, then a TOML file, then `FOOTNOTE_…`
//! environment variables (`__` separates nesting: `FOOTNOTE_OLLAMA__CHAT_MODEL`).
//!
//! Loading reports every problem at once (unknown keys with where they came from, values of the
//! wrong type, values out of range) instead of stopping at the first. Secrets are
//! [`SecretString`]s: `Debug` and logs show `[REDACTED]`; the adapter sections, whose secrets the
//! core cannot tell apart, show no text value at all ([`AdapterSections`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Provider};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod adapter_sections;
mod load;
mod ollama_host;
mod plugins;
mod scopes;
mod service;
mod support;
pub use adapter_sections::AdapterSections;
pub use load::ConfigError;
pub use ollama_host::ollama_host_url;
pub use plugins::PluginConfig;
pub use scopes::{ADMIN, ANYONE, Mapping, NamedCollection, Principal, RoomMatch, ScopesConfig};
pub use service::{DEFAULT_LISTEN, LimitsConfig, ScopedToken, ServerConfig};
pub use support::{SupportConfig, Verify};

/// The file read when neither `--config` nor `FOOTNOTE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "footnote.toml";
/// Environment prefix of every setting.
pub const ENV_PREFIX: &str = "FOOTNOTE_";

/// Everything Footnote can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the search indexes and adapter state live. Empty: [`default_data_dir`].
    #[serde(deserialize_with = "de_data_dir")]
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub ollama: OllamaConfig,
    pub ingest: IngestConfig,
    pub retrieval: RetrievalConfig,
    pub answer: AnswerConfig,
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub scopes: ScopesConfig,
    /// Plugins in other processes (`[[plugins]]`), each with its own token bound to a platform.
    pub plugins: Vec<PluginConfig>,
    /// One section per chat adapter (`[adapters.discord]`, …), read by the adapter itself;
    /// `Debug` and `Serialize` show none of its text values (secrets).
    pub adapters: AdapterSections,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            database: DatabaseConfig::default(),
            ollama: OllamaConfig::default(),
            ingest: IngestConfig::default(),
            retrieval: RetrievalConfig::default(),
            answer: AnswerConfig::default(),
            server: ServerConfig::default(),
            limits: LimitsConfig::default(),
            scopes: ScopesConfig::default(),
            plugins: Vec::new(),
            adapters: AdapterSections::default(),
        }
    }
}

/// Where the source of truth lives.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty: SQLite in `data_dir`. A `sqlite:` URL picks another SQLite file; a `postgres://`
    /// (or `postgresql://`) URL picks PostgreSQL with pgvector. `DATABASE_URL` applies when this
    /// is empty.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
    /// PostgreSQL: connections in the pool of this instance.
    pub max_connections: u32,
    /// PostgreSQL: how long an operation keeps retrying while the server is unreachable (for
    /// example during a restart) before it fails.
    #[serde(with = "humantime_serde")]
    pub retry_for: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: SecretString::default(), max_connections: 10, retry_for: Duration::from_secs(30) }
    }
}

/// The database that `database.url` selects, decided once (the store opens what this names).
#[derive(Clone, Debug)]
pub enum Database {
    /// SQLite in the given file (an empty `database.url`: the file in the data directory).
    Sqlite(PathBuf),
    /// SQLite through a `sqlite:` URL (another file, or `sqlite::memory:` in tests).
    SqliteUrl(String),
    /// PostgreSQL with pgvector (a `postgres://` or `postgresql://` URL).
    Postgres(SecretString),
}

/// The startup error for a PostgreSQL URL in a build without PostgreSQL support.
pub const POSTGRES_NOT_COMPILED: &str = "database.url is a PostgreSQL URL, but this footnote was built without PostgreSQL support: rebuild with the cargo feature `postgres` (on by default; `cargo build --features postgres`)";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OllamaConfig {
    /// Base URL of the Ollama server. `OLLAMA_HOST` sets it the way Ollama's CLI reads it.
    pub url: String,
    /// Model that writes the answers.
    #[serde(deserialize_with = "de_lenient_string")]
    pub chat_model: String,
    /// Model that embeds chunks and questions.
    #[serde(deserialize_with = "de_lenient_string")]
    pub embed_model: String,
    /// How long Ollama keeps a model loaded after a call (Ollama duration: `30m`, `1h`, `-1`).
    /// A bare number (seconds) is accepted too, as `FOOTNOTE_OLLAMA__KEEP_ALIVE=-1` yields one.
    #[serde(deserialize_with = "de_lenient_string")]
    pub keep_alive: String,
    /// Longest wait for a TCP connection to Ollama.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for a whole non-streamed reply, and for each streamed line.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Texts per `/api/embed` call.
    pub embed_batch_size: usize,
    /// `/api/embed` calls in flight at once.
    pub embed_parallelism: usize,
    /// Context window to request (`num_ctx`); 0 uses the model's own (from `/api/show`) capped
    /// at 8192.
    pub num_ctx: u32,
    /// Sampling temperature for answers.
    pub temperature: f32,
    /// Answers the chat model writes at once; further questions wait in a fair queue.
    pub max_parallel: usize,
    /// Task prefixes per embedding model (matched on the name without a `:tag`).
    pub prefixes: BTreeMap<String, EmbedPrefixes>,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        let mut prefixes = BTreeMap::new();
        prefixes.insert(
            "nomic-embed-text".to_owned(),
            EmbedPrefixes { query: "search_query: ".into(), document: "search_document: ".into() },
        );
        OllamaConfig {
            url: "http://127.0.0.1:11434".into(),
            chat_model: "qwen2.5:3b-instruct".into(),
            embed_model: "nomic-embed-text".into(),
            keep_alive: "30m".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
            embed_batch_size: 32,
            embed_parallelism: 2,
            num_ctx: 0,
            temperature: 0.2,
            max_parallel: 1,
            prefixes,
        }
    }
}

impl OllamaConfig {
    /// The task prefixes for the configured embedding model (empty when it needs none).
    pub fn embed_prefixes(&self) -> EmbedPrefixes {
        let base = self.embed_model.split(':').next().unwrap_or_default();
        self.prefixes.get(&self.embed_model).or_else(|| self.prefixes.get(base)).cloned().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedPrefixes {
    /// Put before a question.
    pub query: String,
    /// Put before a chunk.
    pub document: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest file accepted.
    pub max_file_size: ByteSize,
    /// Largest total a compressed file (DOCX) or email may unpack to.
    pub max_unpacked_size: ByteSize,
    /// Most pages read from a PDF.
    pub max_pages: u32,
    /// Most attachments read from one email (nested ones included).
    pub max_attachments: usize,
    /// Longest time spent extracting text from one file; a worker still at it is killed.
    #[serde(with = "humantime_serde")]
    pub extract_timeout: Duration,
    /// Target chunk size in tokens (cl100k).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub chunk_overlap: usize,
    /// Extraction worker processes at most (files beyond wait their turn); 0: one per core.
    pub workers: usize,
    /// Address space each extraction worker may use (enforced by the kernel, Linux).
    pub worker_memory: ByteSize,
    /// The `footnote` binary started as extraction worker; empty: the running `footnote` itself.
    pub worker_program: PathBuf,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_file_size: ByteSize::mib(50),
            max_unpacked_size: ByteSize::mib(200),
            max_pages: 2000,
            max_attachments: 20,
            extract_timeout: Duration::from_secs(60),
            chunk_tokens: 200,
            chunk_overlap: 30,
            workers: 0,
            worker_memory: ByteSize::gib(1),
            worker_program: PathBuf::new(),
        }
    }
}

/// How scores from the two retrievers are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion: `sum(weight / (rrf_k + rank))`.
    Rrf,
    /// Min-max normalised scores blended by weight.
    Linear,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Candidates taken from BM25.
    pub bm25_top_k: usize,
    /// Candidates taken from the vector index.
    pub vector_top_k: usize,
    pub fusion: Fusion,
    /// The `k` of reciprocal rank fusion.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub vector_weight: f32,
    /// Share of a chunk's fused score that comes from its document's fused score (0..1).
    pub document_weight: f32,
    /// How much a document's further matching chunks add to its best one (0: nothing).
    pub document_evidence: f32,
    /// BM25 term frequency saturation.
    pub bm25_k1: f32,
    /// BM25 length normalisation (0..1).
    pub bm25_b: f32,
    /// Weight of the document title in BM25, relative to the chunk text.
    pub bm25_title_weight: f32,
    /// Weight of the headings above a chunk in BM25, relative to the chunk text.
    pub bm25_headings_weight: f32,
    /// Most sources handed to the model.
    pub max_sources: usize,
    /// Collections with fewer vectors than this are searched exactly instead of through HNSW.
    pub exact_below: usize,
    /// HNSW search breadth (higher: better recall, slower).
    pub hnsw_ef_search: usize,
    /// HNSW build breadth.
    pub hnsw_ef_construction: usize,
    /// HNSW links per node.
    pub hnsw_connectivity: usize,
    /// The optional reranking stage (`[retrieval.rerank]`).
    pub rerank: RerankConfig,
}

/// The optional second stage that re-orders the best candidates with a model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    /// Off by default: it costs model time on every question.
    pub enabled: bool,
    /// The model that grades the passages; empty: `ollama.chat_model`.
    #[serde(deserialize_with = "de_lenient_string")]
    pub model: String,
    /// How many of the best candidates are graded.
    pub candidates: usize,
    /// Longest time spent grading for one question; passages not graded by then keep their
    /// retrieval score.
    #[serde(with = "humantime_serde")]
    pub budget: Duration,
    /// Share of the grade in the final order (0: retrieval only, 1: the grade only).
    pub weight: f32,
    /// Grading calls in flight at once.
    pub parallel: usize,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            enabled: false,
            model: String::new(),
            candidates: 10,
            budget: Duration::from_secs(10),
            weight: 0.5,
            parallel: 2,
        }
    }
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            bm25_top_k: 40,
            vector_top_k: 40,
            // Tuned with `footnote eval` on SciFact train (all-minilm, 200-token chunks): see
            // BENCHMARKS.md. Linear 0.6/0.4 beat RRF (k = 10 or 60) at 40 and 200 candidates.
            fusion: Fusion::Linear,
            rrf_k: 10.0,
            bm25_weight: 0.6,
            vector_weight: 0.4,
            document_weight: 0.9,
            document_evidence: 0.0,
            bm25_k1: 0.9,
            bm25_b: 0.4,
            bm25_title_weight: 1.0,
            bm25_headings_weight: 0.5,
            max_sources: 6,
            exact_below: 10_000,
            hnsw_ef_search: 128,
            hnsw_ef_construction: 128,
            hnsw_connectivity: 16,
            rerank: RerankConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerConfig {
    /// Tokens kept free in the context window for the answer itself.
    pub reserve_tokens: u32,
    /// Earlier thread turns carried into a follow-up question.
    pub history_turns: usize,
    /// Length of the quoted snippet of each citation, in characters.
    pub snippet_chars: usize,
    /// Replaces the built-in system prompt when not empty.
    #[serde(deserialize_with = "de_lenient_string")]
    pub system_prompt: String,
    /// How answers are checked against their sources: `off`, `embed`, `model`.
    pub verify: Verify,
    /// Longest time the model judge (`verify = "model"`) may add to one answer.
    #[serde(with = "humantime_serde")]
    pub verify_budget: Duration,
    /// Weights and thresholds of the support check.
    pub support: SupportConfig,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig {
            reserve_tokens: 768,
            history_turns: 6,
            snippet_chars: 220,
            system_prompt: String::new(),
            verify: Verify::default(),
            verify_budget: support::DEFAULT_VERIFY_BUDGET,
            support: SupportConfig::default(),
        }
    }
}

/// `$XDG_DATA_HOME/footnote`, else `~/.local/share/footnote`, else `./footnote-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("footnote");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/footnote"),
        None => PathBuf::from("footnote-data"),
    }
}

/// An empty `data_dir` (as in the example file) means [`default_data_dir`].
fn or_default_data_dir(dir: PathBuf) -> PathBuf {
    if dir.as_os_str().is_empty() { default_data_dir() } else { dir }
}

fn de_data_dir<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    PathBuf::deserialize(d).map(or_default_data_dir)
}

/// A string, or a number or boolean taken as its text: `FOOTNOTE_…` values are parsed, so
/// `FOOTNOTE_OLLAMA__KEEP_ALIVE=-1` arrives as an integer.
fn de_lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Lenient;
    impl serde::de::Visitor<'_> for Lenient {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Lenient)
}

fn serialize_secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

/// Ollama accepts a Go duration (`30m`, `1h30m`, `10s`), a number of seconds, or a negative
/// number for "forever".
pub fn valid_keep_alive(s: &str) -> bool {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return secs.is_finite(); // not "NaN" or "inf", which Rust parses but Ollama does not
    }
    let body = s.strip_prefix('-').unwrap_or(s);
    !body.is_empty() && humantime::parse_duration(body).is_ok()
}

/// The keep-alive as a duration, for the keep-warm timer (`None` = forever).
pub fn keep_alive_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        // `try_`: `from_secs_f64` panics on NaN, infinity and overflow; those mean "forever".
        return Duration::try_from_secs_f64(secs).ok();
    }
    if s.starts_with('-') {
        return None;
    }
    humantime::parse_duration(s).ok()
}

#[cfg(test)]
mod tests;
