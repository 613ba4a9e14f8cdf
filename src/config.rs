//! Configuration: built-in defaults, then `OLLAMA_HOST`, then a TOML file, then `FOOTNOTE_…`
//! environment variables (`__` separates nesting: `FOOTNOTE_OLLAMA__CHAT_MODEL`).
//!
//! Loading reports every problem at once (unknown keys with where they came from, values of the
//! wrong type, values out of range) instead of stopping at the first. Secrets are
//! [`SecretString`]s: `Debug` and logs show `[REDACTED]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Provider};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod ollama_host;
pub use ollama_host::ollama_host_url;

/// The file read when neither `--config` nor `FOOTNOTE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "footnote.toml";
/// Environment prefix of every setting.
pub const ENV_PREFIX: &str = "FOOTNOTE_";

/// Everything Footnote can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the search indexes and adapter state live.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub ollama: OllamaConfig,
    pub ingest: IngestConfig,
    pub retrieval: RetrievalConfig,
    pub answer: AnswerConfig,
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
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty: SQLite in `data_dir`. A `sqlite:` URL picks another SQLite file.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OllamaConfig {
    /// Base URL of the Ollama server. `OLLAMA_HOST` sets it the way Ollama's CLI reads it.
    pub url: String,
    /// Model that writes the answers.
    pub chat_model: String,
    /// Model that embeds chunks and questions.
    pub embed_model: String,
    /// How long Ollama keeps a model loaded after a call (Ollama duration: `30m`, `1h`, `-1`).
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
    /// Longest time spent extracting text from one file.
    #[serde(with = "humantime_serde")]
    pub extract_timeout: Duration,
    /// Target chunk size in tokens (cl100k).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub chunk_overlap: usize,
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
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            bm25_top_k: 40,
            vector_top_k: 40,
            fusion: Fusion::Rrf,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            vector_weight: 1.0,
            max_sources: 6,
            exact_below: 10_000,
            hnsw_ef_search: 128,
            hnsw_ef_construction: 128,
            hnsw_connectivity: 16,
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
    pub system_prompt: String,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig { reserve_tokens: 768, history_turns: 6, snippet_chars: 220, system_prompt: String::new() }
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

fn serialize_secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

/// Every problem found while loading, one per line.
#[derive(Debug, thiserror::Error)]
#[error("the configuration has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// The config file to read: `--config`, else `FOOTNOTE_CONFIG`, else `./footnote.toml` if
/// present. A named file that does not exist is an error; the default one is optional.
fn config_file(file: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let named = file.map(Path::to_path_buf).or_else(|| var("FOOTNOTE_CONFIG").map(PathBuf::from));
    match named {
            Some(path) if path.is_file() => Ok(Some(path)),
            Some(path) => Err(format!("config file {} does not exist", path.display())),
        None => Ok(Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file())),
    }
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Loads from `file` (`--config`) or the default places and the process environment,
    /// reporting every problem at once.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut user = Figment::new();
        if let Some(host) = var("OLLAMA_HOST") {
            user = user.merge(Serialized::default("ollama.url", ollama_host_url(&host)));
        }
        match config_file(file) {
            Ok(Some(path)) => user = user.merge(Toml::file_exact(path)),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
        user = user.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["CONFIG"]));

        match user.data() {
            Ok(data) => {
                let known = serde_json::to_value(Config::default()).expect("defaults serialize");
                for dict in data.values() {
                    unknown_keys(dict, &known, "", &user, &mut problems);
                }
            }
            Err(e) => problems.extend(e.into_iter().map(|e| e.to_string())),
        }

        let figment = Figment::from(Serialized::defaults(Config::default())).merge(user);
        // Extract each section on its own so that one bad section does not hide another.
        for section in ["data_dir", "database", "ollama", "ingest", "retrieval", "answer"] {
            if let Err(e) = extract_section(&figment, section) {
                problems.extend(e.into_iter().map(|e| e.to_string()));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError(dedupe(problems)));
        }
        let config: Config = figment.extract().map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Range checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        let o = &self.ollama;
        if let Err(e) = reqwest::Url::parse(&o.url) {
            p.push(format!("ollama.url = {:?} is not a URL ({e})", o.url));
        }
        if o.chat_model.trim().is_empty() {
            p.push("ollama.chat_model must name a model".into());
        }
        if o.embed_model.trim().is_empty() {
            p.push("ollama.embed_model must name a model".into());
        }
        if !valid_keep_alive(&o.keep_alive) {
            p.push(format!("ollama.keep_alive = {:?} is not an Ollama duration such as \"30m\", \"1h\" or \"-1\"", o.keep_alive));
        }
        if o.embed_batch_size == 0 || o.embed_batch_size > 2048 {
            p.push("ollama.embed_batch_size must be between 1 and 2048".into());
        }
        if o.embed_parallelism == 0 || o.embed_parallelism > 64 {
            p.push("ollama.embed_parallelism must be between 1 and 64".into());
        }
        if !(0.0..=2.0).contains(&o.temperature) {
            p.push("ollama.temperature must be between 0 and 2".into());
        }
        let i = &self.ingest;
        if i.chunk_tokens < 32 || i.chunk_tokens > 4096 {
            p.push("ingest.chunk_tokens must be between 32 and 4096".into());
        }
        if i.chunk_overlap >= i.chunk_tokens / 2 {
            p.push("ingest.chunk_overlap must be less than half of ingest.chunk_tokens".into());
        }
        if i.max_file_size.as_u64() == 0 || i.max_pages == 0 || i.extract_timeout.is_zero() {
            p.push("ingest.max_file_size, ingest.max_pages and ingest.extract_timeout must be above zero".into());
        }
        let r = &self.retrieval;
        if r.bm25_top_k == 0 && r.vector_top_k == 0 {
            p.push("retrieval.bm25_top_k and retrieval.vector_top_k cannot both be 0".into());
        }
        if r.max_sources == 0 || r.max_sources > 50 {
            p.push("retrieval.max_sources must be between 1 and 50".into());
        }
        if r.rrf_k < 0.0 || r.bm25_weight < 0.0 || r.vector_weight < 0.0 {
            p.push("retrieval.rrf_k and the fusion weights cannot be negative".into());
        }
        if r.hnsw_connectivity < 4 || r.hnsw_ef_search == 0 || r.hnsw_ef_construction == 0 {
            p.push("retrieval.hnsw_connectivity must be at least 4 and the ef values above 0".into());
        }
        let url = secrecy::ExposeSecret::expose_secret(&self.database.url);
        if !url.is_empty() && !url.starts_with("sqlite:") {
            p.push("database.url must be empty (SQLite in data_dir) or a sqlite: URL".into());
        }
        if p.is_empty() { Ok(()) } else { Err(ConfigError(p)) }
    }

    /// The SQLite file used when `database.url` is empty.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("footnote.db")
    }
}

fn extract_section(figment: &Figment, section: &str) -> Result<(), figment::Error> {
    match section {
        "data_dir" => figment.extract_inner::<PathBuf>(section).map(drop),
        "database" => figment.extract_inner::<DatabaseConfig>(section).map(drop),
        "ollama" => figment.extract_inner::<OllamaConfig>(section).map(drop),
        "ingest" => figment.extract_inner::<IngestConfig>(section).map(drop),
        "retrieval" => figment.extract_inner::<RetrievalConfig>(section).map(drop),
        _ => figment.extract_inner::<AnswerConfig>(section).map(drop),
    }
}

/// Maps whose keys are the user's own (model names), not field names.
const FREE_MAPS: &[&str] = &["ollama.prefixes"];

fn unknown_keys(dict: &Dict, known: &serde_json::Value, prefix: &str, fig: &Figment, out: &mut Vec<String>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(known_child) = known.get(key.as_str()) else {
            let from = fig.find_metadata(&path).map(|m| format!(" (from {})", m.name)).unwrap_or_default();
            out.push(format!("unknown setting `{path}`{from}"));
            continue;
        };
        if FREE_MAPS.contains(&path.as_str()) {
            continue;
        }
        if let (Value::Dict(_, inner), serde_json::Value::Object(_)) = (value, known_child) {
            unknown_keys(inner, known_child, &path, fig, out);
        }
    }
}

fn dedupe(mut problems: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    problems
}

/// Ollama accepts a Go duration (`30m`, `1h30m`, `10s`), a number of seconds, or a negative
/// number for "forever".
pub fn valid_keep_alive(s: &str) -> bool {
    let s = s.trim();
    if s.parse::<f64>().is_ok() {
        return true;
    }
    let body = s.strip_prefix('-').unwrap_or(s);
    !body.is_empty() && humantime::parse_duration(body).is_ok()
}

/// The keep-alive as a duration, for the keep-warm timer (`None` = forever).
pub fn keep_alive_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    if s.starts_with('-') {
        return None;
    }
    humantime::parse_duration(s).ok()
}

#[cfg(test)]
mod tests;
