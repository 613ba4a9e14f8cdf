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
mod scopes;
mod service;
pub use ollama_host::ollama_host_url;
pub use scopes::{ADMIN, ANYONE, Mapping, NamedCollection, Principal, RoomMatch, ScopesConfig};
pub use service::{DEFAULT_LISTEN, LimitsConfig, ServerConfig};

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
    /// One section per chat adapter (`[adapters.discord]`, …), read by the adapter itself.
    pub adapters: Dict,
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
            adapters: Dict::new(),
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
            // Tuned with `footnote eval` on SciFact train (all-minilm, 200-token chunks): see
            // BENCHMARKS.md. Linear 0.6/0.4 beat RRF (k = 10 or 60) at 40 and 200 candidates.
            fusion: Fusion::Linear,
            rrf_k: 10.0,
            bm25_weight: 0.6,
            vector_weight: 0.4,
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
    #[serde(deserialize_with = "de_lenient_string")]
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
        Some(path) if path.exists() => Err(format!("config file {} is not a file", path.display())),
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
            Ok(Some(path)) => {
                // A file that cannot be read or parsed is left out, so that it does not hide the
                // problems of the environment.
                let toml = Toml::file_exact(&path);
                match toml.data() {
                    Ok(_) => user = user.merge(toml),
                    Err(e) => problems
                        .extend(e.into_iter().map(|e| format!("cannot read config file {}: {e}", path.display()))),
                }
            }
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
        user = user.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["CONFIG"]));

        let mut unknown = Vec::new();
        let mut settings = Dict::new();
        match user.data() {
            Ok(data) => {
                let known = serde_json::to_value(Config::default()).expect("defaults serialize");
                for dict in data.into_values() {
                    unknown_keys(&dict, &known, "", &user, &mut unknown);
                    settings = dict;
                }
            }
            Err(e) => problems.extend(e.into_iter().map(|e| e.to_string())),
        }
        problems.extend(unknown.iter().map(|(_, problem)| problem.clone()));

        // Extract each section on its own so that one bad section does not hide another, and
        // each bad value in it (see `section`). Bad values keep their defaults so that the range
        // checks still run on the good ones.
        let mut config = Config::default();
        let mut read = Reader { user: &user, settings, unknown: &unknown, problems: &mut problems };
        read.section("data_dir", &mut config.data_dir);
        config.data_dir = or_default_data_dir(config.data_dir);
        read.section("database", &mut config.database);
        // The conventional DATABASE_URL, lowest precedence: only when nothing else set the URL.
        if secrecy::ExposeSecret::expose_secret(&config.database.url).is_empty()
            && let Some(url) = var("DATABASE_URL")
        {
            config.database.url = SecretString::from(url);
        }
        read.section("ollama", &mut config.ollama);
        read.section("ingest", &mut config.ingest);
        read.section("retrieval", &mut config.retrieval);
        read.section("answer", &mut config.answer);
        read.section("server", &mut config.server);
        read.section("limits", &mut config.limits);
        read.section("scopes", &mut config.scopes);
        read.section("adapters", &mut config.adapters);
        if let Err(ConfigError(range)) = config.validate() {
            problems.extend(range);
        }
        if problems.is_empty() { Ok(config) } else { Err(ConfigError(dedupe(problems))) }
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
            p.push(format!(
                "ollama.keep_alive = {:?} is not an Ollama duration such as \"30m\", \"1h\" or \"-1\"",
                o.keep_alive
            ));
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
        if o.max_parallel == 0 || o.max_parallel > 64 {
            p.push("ollama.max_parallel must be between 1 and 64".into());
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
        // Written as "not in 0..", so that NaN (TOML's `nan`) is refused too.
        if [r.rrf_k, r.bm25_weight, r.vector_weight].iter().any(|w| !(0.0..).contains(w)) {
            p.push("retrieval.rrf_k and the fusion weights cannot be negative".into());
        }
        if r.hnsw_connectivity < 4 || r.hnsw_ef_search == 0 || r.hnsw_ef_construction == 0 {
            p.push("retrieval.hnsw_connectivity must be at least 4 and the ef values above 0".into());
        }
        self.server.problems(&mut p);
        self.limits.problems(&mut p);
        self.scopes.problems(&mut p);
        let url = secrecy::ExposeSecret::expose_secret(&self.database.url);
        let postgres = crate::store::is_postgres_url(url);
        if !url.is_empty() && !url.starts_with("sqlite:") && !postgres {
            p.push("database.url must be empty (SQLite in data_dir), a sqlite: URL or a postgres:// URL".into());
        }
        if postgres && !cfg!(feature = "postgres") {
            p.push(POSTGRES_NOT_COMPILED.into());
        }
        if self.database.max_connections == 0 {
            p.push("database.max_connections must be at least 1".into());
        }
        if p.is_empty() { Ok(()) } else { Err(ConfigError(p)) }
    }

    /// The SQLite file used when `database.url` is empty.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("footnote.db")
    }
}

/// Reads the sections of the user's settings over the defaults.
struct Reader<'a> {
    /// Where each setting came from.
    user: &'a Figment,
    /// The user's settings; bad values are taken out as they are found.
    settings: Dict,
    /// Unknown keys already reported by [`unknown_keys`].
    unknown: &'a [(String, String)],
    problems: &'a mut Vec<String>,
}

impl Reader<'_> {
    /// Extracts `section` into `slot`, reporting every bad value in it. serde stops at the first
    /// error in a struct, so after each error the value at fault is taken out (its default
    /// applies) and the section is read again.
    fn section<T: serde::de::DeserializeOwned>(&mut self, section: &str, slot: &mut T) {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        loop {
            let figment = defaults.clone().merge(Serialized::defaults(&self.settings));
            let errors = match figment.extract_inner::<T>(section) {
                Ok(value) => return *slot = value,
                Err(errors) => errors,
            };
            let mut progress = false;
            for e in errors {
                let key = error_key(&e, section);
                let from = self.origin(&key);
                if let figment::error::Kind::UnknownField(..) = e.kind {
                    // The walk names most of these already (not those inside free maps).
                    if !self.unknown.iter().any(|(k, _)| *k == key) {
                        self.problems.push(format!("unknown setting `{key}`{from}"));
                    }
                } else {
                    self.problems.push(format!("{} for `{key}`{from}", e.kind));
                }
                progress |= remove(&mut self.settings, &key);
            }
            if !progress && !remove(&mut self.settings, section) {
                return; // cannot happen: the defaults alone are valid
            }
        }
    }

    /// Where the user's value at `key`, or the nearest enclosing one, came from.
    fn origin(&self, key: &str) -> String {
        let mut key = key;
        loop {
            if let Some(md) = self.user.find_metadata(key) {
                return origin(md, key);
            }
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => return String::new(),
            }
        }
    }
}

/// Takes the value at the dotted `key` (or the nearest enclosing one present) out of `dict`.
fn remove(dict: &mut Dict, key: &str) -> bool {
    let (first, rest) = match key.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (key, None),
    };
    if let (Some(rest), Some(Value::Dict(_, inner))) = (rest, dict.get_mut(first))
        && remove(inner, rest)
    {
        return true;
    }
    dict.remove(first).is_some()
}

/// The dotted key an extraction error is about. `Figment::extract_inner` appends the section to
/// the error's path (`chat_model.ollama`), so it is moved to the front.
fn error_key(e: &figment::Error, section: &str) -> String {
    let mut path = e.path.clone();
    if path.len() > 1 && path.last().is_some_and(|last| last == section) {
        path.pop();
        path.insert(0, section.to_owned());
    }
    if path.is_empty() {
        return section.to_owned();
    }
    path.join(".")
}

/// Maps whose keys are the user's own (model names), not field names. What is inside each entry
/// is checked by serde (`deny_unknown_fields`).
/// `adapters` holds one section per adapter, checked by the adapter's own config type.
const FREE_MAPS: &[&str] = &["ollama.prefixes", "adapters"];

/// Reports every key of the user's settings that `Config` does not have, as `(key, problem)`.
fn unknown_keys(dict: &Dict, known: &serde_json::Value, prefix: &str, fig: &Figment, out: &mut Vec<(String, String)>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(known_child) = known.get(key.as_str()) else {
            let from = fig.find_metadata(&path).map(|md| origin(md, &path)).unwrap_or_default();
            out.push((path.clone(), format!("unknown setting `{path}`{from}")));
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

/// Where the value at `key` came from: ` (in TOML file …)`, ` (from environment variable
/// FOOTNOTE_…)`.
fn origin(md: &figment::Metadata, key: &str) -> String {
    if md.name == Env::prefixed(ENV_PREFIX).metadata().name {
        let var = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "__"));
        return format!(" (from environment variable {var})");
    }
    match &md.source {
        Some(source) => format!(" (in {} {source})", md.name),
        None => format!(" (from {})", md.name),
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
