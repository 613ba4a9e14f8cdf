//! Loading the configuration: the layers (defaults, `OLLAMA_HOST`, the TOML file, `FOOTNOTE_…`
//! variables), every problem collected and reported at once (unknown keys with where they came
//! from, values of the wrong type, values out of range), and the range checks.

use super::*;

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
        // A `[answer.support]` section without `contrary` was tuned before that feature existed:
        // the shipped weight must not fill the gap unless the rest is shipped too.
        if user.find_value("answer.support").is_ok() && user.find_value("answer.support.contrary").is_err() {
            config.answer.support.tuned_without_contrary();
        }
        read.section("server", &mut config.server);
        read.section("limits", &mut config.limits);
        read.section("scopes", &mut config.scopes);
        read.section("plugins", &mut config.plugins);
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
        if i.workers > 256 {
            p.push("ingest.workers must be at most 256 (0: one per core)".into());
        }
        if i.worker_memory.as_u64() < 128 * 1024 * 1024 {
            p.push("ingest.worker_memory must be at least 128 MiB".into());
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
        if [r.bm25_k1, r.bm25_title_weight, r.bm25_headings_weight, r.document_evidence]
            .iter()
            .any(|w| !(0.0..).contains(w))
        {
            p.push(
                "retrieval.bm25_k1, the BM25 field weights and retrieval.document_evidence cannot be negative".into(),
            );
        }
        if ![r.bm25_b, r.document_weight].iter().all(|w| (0.0..=1.0).contains(w)) {
            p.push("retrieval.bm25_b and retrieval.document_weight must be between 0 and 1".into());
        }
        let k = &r.rerank;
        if k.enabled && (k.candidates == 0 || k.parallel == 0 || k.budget.is_zero()) {
            p.push("retrieval.rerank.candidates, .parallel and .budget must be above zero".into());
        }
        if !(0.0..=1.0).contains(&k.weight) {
            p.push("retrieval.rerank.weight must be between 0 and 1".into());
        }
        if r.hnsw_connectivity < 4 || r.hnsw_ef_search == 0 || r.hnsw_ef_construction == 0 {
            p.push("retrieval.hnsw_connectivity must be at least 4 and the ef values above 0".into());
        }
        self.server.problems(&mut p);
        self.limits.problems(&mut p);
        self.scopes.problems(&mut p);
        super::plugins::problems(&self.plugins, &mut p);
        // Each adapter checks its own section (an unknown name, or one not in this build, too).
        p.extend(crate::adapters::problems(&self.adapters));
        match self.database() {
            Ok(Database::Postgres(_)) if !cfg!(feature = "postgres") => p.push(POSTGRES_NOT_COMPILED.into()),
            Ok(_) => {}
            Err(problem) => p.push(problem),
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

    /// The database `database.url` selects: empty for SQLite in the data directory, a `sqlite:`
    /// URL for another SQLite file, a `postgres://` (or `postgresql://`) URL for PostgreSQL.
    pub fn database(&self) -> Result<Database, String> {
        let url = secrecy::ExposeSecret::expose_secret(&self.database.url);
        if url.is_empty() {
            Ok(Database::Sqlite(self.sqlite_path()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(self.database.url.clone()))
        } else if url.starts_with("sqlite:") {
            Ok(Database::SqliteUrl(url.to_owned()))
        } else {
            Err("database.url must be empty (SQLite in data_dir), a sqlite: URL or a postgres:// URL".into())
        }
    }

    /// The directory of the derived search indexes (and of their writer lock).
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
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
