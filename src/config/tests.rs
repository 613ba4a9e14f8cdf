//! Loading tests. Each runs in a `figment::Jail`: a fresh current directory and an environment
//! emptied of everything (so `OLLAMA_HOST` or `FOOTNOTE_…` set around the test run cannot leak
//! in), restored afterwards. Jails take a global lock, so these tests do not race on the
//! process environment.

// `Jail` closures return `figment::Result`, whose error is large; that is figment's API.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::Jail;
use secrecy::ExposeSecret;
use serde_json::Value as Json;

use super::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/footnote.example.toml");

/// Runs `f` in a jail with an empty environment.
fn jail(f: impl FnOnce(&mut Jail) -> figment::Result<()>) {
    Jail::expect_with(|jail| {
        jail.clear_env();
        f(jail)
    });
}

/// Loads, expecting success.
fn load(file: Option<&Path>) -> Config {
    Config::load(file).unwrap_or_else(|e| panic!("expected the configuration to load: {e}"))
}

/// Loads, expecting failure; returns the problems.
fn problems(file: Option<&Path>) -> Vec<String> {
    match Config::load(file) {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(ConfigError(problems)) => {
            assert!(!problems.is_empty(), "an error must carry at least one problem");
            problems
        }
    }
}

/// Writes `footnote.toml`-like content to `name` in the jail and returns its absolute path.
fn file(jail: &Jail, name: &str, contents: &str) -> PathBuf {
    jail.create_file(name, contents).expect("create file");
    jail.directory().join(name)
}

fn json(config: &Config) -> Json {
    serde_json::to_value(config).expect("config serializes")
}

/// Every leaf of a JSON tree as a dotted key.
fn leaves(value: &Json, prefix: &str, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                leaves(child, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

fn toml_has(value: &toml::Value, dotted: &str) -> bool {
    let mut cur = value;
    for part in dotted.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    !cur.is_table()
}

/// The dotted key of every `key = value` line of a TOML text, in order.
fn key_lines(text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_end_matches(']').replace('"', "");
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            keys.push(if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") });
        }
    }
    keys
}

fn contains(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

// ---------------------------------------------------------------------------------------------
// The example file

#[test]
fn example_file_loads_to_exactly_the_defaults() {
    jail(|_| {
        let loaded = load(Some(Path::new(EXAMPLE)));
        assert_eq!(json(&loaded), json(&Config::default()));
        // `data_dir = ""` in the example means the per-user default.
        assert_eq!(loaded.data_dir, default_data_dir());
        assert_eq!(loaded.ollama.prefixes, Config::default().ollama.prefixes);
        Ok(())
    });
}

#[test]
fn example_file_documents_every_setting() {
    let text = std::fs::read_to_string(EXAMPLE).expect("read the example file");
    let parsed: toml::Value = toml::from_str(&text).expect("the example file is TOML");

    let mut expected = Vec::new();
    leaves(&json(&Config::default()), "", &mut expected);
    assert!(expected.len() > 30, "the walk found too few settings: {expected:?}");
    let missing: Vec<_> = expected.iter().filter(|k| !toml_has(&parsed, k)).collect();
    assert!(missing.is_empty(), "settings missing from config/footnote.example.toml: {missing:?}");

    // Every setting line has its own explanation right above it (a comment, not a blank line).
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let is_setting = !line.is_empty() && !line.starts_with('#') && !line.starts_with('[');
        if is_setting {
            assert!(i > 0 && lines[i - 1].starts_with('#'), "no comment above `{line}`");
        }
    }
}

#[test]
fn example_file_lists_the_settings_in_struct_order() {
    let text = std::fs::read_to_string(EXAMPLE).expect("read the example file");
    // `toml` writes the fields in declaration order, unlike the sorted JSON map.
    let defaults = toml::to_string(&Config::default()).expect("defaults serialize to TOML");
    assert_eq!(key_lines(&text), key_lines(&defaults));
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

#[test]
fn unknown_keys_in_the_file_are_errors_naming_key_and_file() {
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "colour = \"blue\"\n[ollama]\nchat_modle = \"x\"\n[olama]\nurl = \"http://x\"\n",
        );
        let p = problems(Some(&path));
        assert!(contains(&p, "unknown setting `colour`"), "{p:?}");
        assert!(contains(&p, "unknown setting `ollama.chat_modle`"), "{p:?}");
        assert!(contains(&p, "unknown setting `olama`"), "{p:?}");
        // figment shows the file relative to the current directory.
        assert!(p.iter().all(|p| p.contains("(in TOML file footnote.toml)")), "{p:?}");
        // Each reported once, not again by serde's own `unknown field` check.
        assert_eq!(p.len(), 3, "{p:?}");
        Ok(())
    });
}

#[test]
fn unknown_footnote_variables_are_errors_naming_the_variable() {
    jail(|jail| {
        jail.set_env("FOOTNOTE_OLLAMA__BOGUS", "1");
        jail.set_env("FOOTNOTE_RETRIEVAL__TOP_K", "5");
        // A single `_` does not nest: this is the top-level key `ollama_chat_model`.
        jail.set_env("FOOTNOTE_OLLAMA_CHAT_MODEL", "x");
        let p = problems(None);
        assert!(contains(&p, "unknown setting `ollama.bogus`"), "{p:?}");
        assert!(contains(&p, "FOOTNOTE_OLLAMA__BOGUS"), "{p:?}");
        assert!(contains(&p, "unknown setting `retrieval.top_k`"), "{p:?}");
        assert!(contains(&p, "FOOTNOTE_RETRIEVAL__TOP_K"), "{p:?}");
        assert!(contains(&p, "unknown setting `ollama_chat_model`"), "{p:?}");
        assert_eq!(p.len(), 3, "{p:?}");
        Ok(())
    });
}

#[test]
fn footnote_config_is_not_taken_for_a_setting() {
    jail(|jail| {
        let path = file(jail, "elsewhere.toml", "");
        jail.set_env("FOOTNOTE_CONFIG", path.display());
        load(None);
        Ok(())
    });
}

#[test]
fn prefix_tables_take_any_model_name_but_only_known_fields() {
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "[ollama]\nembed_model = \"mxbai-embed-large:335m\"\n\
             [ollama.prefixes.\"mxbai-embed-large\"]\nquery = \"Represent this: \"\n",
        );
        // figment trims variable values; quotes keep the space.
        jail.set_env("FOOTNOTE_OLLAMA__PREFIXES__ALL-MINILM__DOCUMENT", "\"doc: \"");
        let config = load(Some(&path));
        let prefixes = &config.ollama.prefixes;
        // The built-in entry stays; the file's and the environment's are added.
        assert!(prefixes.contains_key("nomic-embed-text"), "{prefixes:?}");
        assert_eq!(prefixes["all-minilm"].document, "doc: ");
        let mxbai = config.ollama.embed_prefixes();
        assert_eq!(mxbai.query, "Represent this: ");
        assert_eq!(mxbai.document, "", "a field left out of an entry defaults to empty");

        let path = file(jail, "bad.toml", "[ollama.prefixes.\"nomic-embed-text\"]\nquerry = \"q: \"\n");
        let p = problems(Some(&path));
        let expected = "unknown setting `ollama.prefixes.nomic-embed-text.querry` (in TOML file bad.toml)";
        assert_eq!(p, [expected]);

        jail.set_env("FOOTNOTE_OLLAMA__PREFIXES__ALL-MINILM__BOGUS", "x");
        let p = problems(None);
        let expected = "unknown setting `ollama.prefixes.all-minilm.bogus` \
                        (from environment variable FOOTNOTE_OLLAMA__PREFIXES__ALL-MINILM__BOGUS)";
        assert_eq!(p, [expected]);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// All problems at once

#[test]
fn several_problems_are_reported_in_one_error() {
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "[ollama]\ntemperature = 5.0\n\
             [retrieval]\nbm25_top_k = \"many\"\n\
             [answer]\nhistory = 3\n",
        );
        jail.set_env("FOOTNOTE_INGEST__CHUNK_TOKENS", "5000");
        let err = Config::load(Some(&path)).expect_err("four problems");
        let p = &err.0;
        assert!(contains(p, "unknown setting `answer.history`"), "{p:?}");
        assert!(contains(p, "bm25_top_k"), "{p:?}");
        assert!(contains(p, "invalid type"), "{p:?}");
        assert!(contains(p, "ollama.temperature must be between 0 and 2"), "{p:?}");
        assert!(contains(p, "ingest.chunk_tokens must be between 32 and 4096"), "{p:?}");
        assert_eq!(p.len(), 4, "{p:?}");
        let shown = err.to_string();
        assert!(shown.starts_with("the configuration has 4 problem(s):"), "{shown}");
        Ok(())
    });
}

#[test]
fn every_bad_value_in_a_section_is_reported() {
    // serde stops at the first error in a struct; `load` reads the section again without it.
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "[ollama]
chat_modle = \"x\"
request_timeout = \"soon\"
embed_batch_size = -1
\
             temperature = 9.0
\
             [ollama.prefixes.\"nomic-embed-text\"]
querry = \"q: \"
",
        );
        jail.set_env("FOOTNOTE_OLLAMA__NUM_CTX", "lots");
        jail.set_env("OLLAMA_HOST", "bad host");
        let p = problems(Some(&path));
        let expected = [
            "unknown setting `ollama.chat_modle` (in TOML file footnote.toml)",
            "invalid value signed int `-1`, expected usize for `ollama.embed_batch_size` \
             (in TOML file footnote.toml)",
            "invalid type: found string \"lots\", expected u32 for `ollama.num_ctx` \
             (from environment variable FOOTNOTE_OLLAMA__NUM_CTX)",
            "unknown setting `ollama.prefixes.nomic-embed-text.querry` (in TOML file footnote.toml)",
            "invalid value string \"soon\", expected a duration for `ollama.request_timeout` \
             (in TOML file footnote.toml)",
            "ollama.url = \"http://bad host:11434\" is not a URL (invalid international domain name)",
            "ollama.temperature must be between 0 and 2",
        ];
        let mut sorted = p.clone();
        sorted.sort();
        let mut expected = expected.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(sorted, expected);
        Ok(())
    });
}

#[test]
fn a_toml_syntax_error_does_not_hide_the_other_problems() {
    jail(|jail| {
        let path = file(jail, "footnote.toml", "[ollama\nurl = ");
        jail.set_env("FOOTNOTE_ANSWER__BOGUS", "1");
        let p = problems(Some(&path));
        assert!(contains(&p, &format!("cannot read config file {}", path.display())), "{p:?}");
        assert!(contains(&p, "invalid table header"), "{p:?}");
        assert!(contains(&p, "unknown setting `answer.bogus`"), "{p:?}");
        assert_eq!(p.len(), 2, "{p:?}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Where settings come from

#[test]
fn footnote_variables_nest_with_double_underscores_and_beat_the_file() {
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "[ollama]\nchat_model = \"from-file\"\nembed_model = \"embed-from-file\"\n\
             [retrieval]\nrrf_k = 30.0\nmax_sources = 9\n",
        );
        jail.set_env("FOOTNOTE_OLLAMA__CHAT_MODEL", "x");
        jail.set_env("FOOTNOTE_RETRIEVAL__RRF_K", "10");
        jail.set_env("FOOTNOTE_DATA_DIR", "/srv/footnote");
        let config = load(Some(&path));
        assert_eq!(config.ollama.chat_model, "x");
        assert_eq!(config.retrieval.rrf_k, 10.0);
        assert_eq!(config.data_dir, PathBuf::from("/srv/footnote"));
        assert_eq!(config.sqlite_path(), PathBuf::from("/srv/footnote/footnote.db"));
        // What the environment does not set still comes from the file.
        assert_eq!(config.ollama.embed_model, "embed-from-file");
        assert_eq!(config.retrieval.max_sources, 9);
        Ok(())
    });
}

#[test]
fn footnote_config_picks_the_file_and_config_flag_beats_it() {
    jail(|jail| {
        let by_env = file(jail, "by-env.toml", "[ollama]\nchat_model = \"by-env\"\n");
        let by_flag = file(jail, "by-flag.toml", "[ollama]\nchat_model = \"by-flag\"\n");
        file(jail, "footnote.toml", "[ollama]\nchat_model = \"by-cwd\"\n");
        jail.set_env("FOOTNOTE_CONFIG", by_env.display());
        assert_eq!(load(None).ollama.chat_model, "by-env");
        assert_eq!(load(Some(&by_flag)).ollama.chat_model, "by-flag");
        Ok(())
    });
}

#[test]
fn a_named_file_that_is_missing_is_an_error() {
    jail(|jail| {
        let p = problems(Some(Path::new("/nonexistent/footnote.toml")));
        assert!(contains(&p, "config file /nonexistent/footnote.toml does not exist"), "{p:?}");

        jail.set_env("FOOTNOTE_CONFIG", "missing.toml");
        let p = problems(None);
        assert!(contains(&p, "config file missing.toml does not exist"), "{p:?}");

        jail.create_dir("a-directory")?;
        let p = problems(Some(Path::new("a-directory")));
        assert!(contains(&p, "config file a-directory is not a file"), "{p:?}");
        Ok(())
    });
}

#[test]
fn footnote_toml_in_the_current_directory_is_read_when_nothing_names_a_file() {
    jail(|jail| {
        // None there: the defaults, without complaint.
        assert_eq!(json(&load(None)), json(&Config::default()));
        file(jail, DEFAULT_CONFIG_FILE, "[answer]\nhistory_turns = 2\n");
        assert_eq!(load(None).answer.history_turns, 2);
        Ok(())
    });
}

#[test]
fn ollama_host_sets_the_url_below_the_file_and_footnote_variables() {
    jail(|jail| {
        jail.set_env("OLLAMA_HOST", "0.0.0.0:12345");
        assert_eq!(load(None).ollama.url, "http://127.0.0.1:12345");

        let path = file(jail, "footnote.toml", "[ollama]\nurl = \"http://from-file:1\"\n");
        assert_eq!(load(Some(&path)).ollama.url, "http://from-file:1");

        jail.set_env("FOOTNOTE_OLLAMA__URL", "http://from-env:2");
        assert_eq!(load(Some(&path)).ollama.url, "http://from-env:2");
        assert_eq!(load(None).ollama.url, "http://from-env:2");
        Ok(())
    });
}

#[test]
fn without_ollama_host_the_url_is_the_default() {
    jail(|jail| {
        jail.set_env("OLLAMA_HOST", "");
        assert_eq!(load(None).ollama.url, "http://127.0.0.1:11434");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Values

#[test]
fn durations_and_sizes_parse_from_human_text() {
    jail(|jail| {
        let path = file(
            jail,
            "footnote.toml",
            "[ollama]\nrequest_timeout = \"90s\"\nconnect_timeout = \"1500ms\"\n\
             [ingest]\nmax_file_size = \"10 MiB\"\nmax_unpacked_size = 1048576\n\
             extract_timeout = \"2m 30s\"\n",
        );
        jail.set_env("FOOTNOTE_INGEST__MAX_FILE_SIZE", "12 MB");
        let config = load(Some(&path));
        assert_eq!(config.ollama.request_timeout, Duration::from_secs(90));
        assert_eq!(config.ollama.connect_timeout, Duration::from_millis(1500));
        assert_eq!(config.ingest.max_file_size, ByteSize::mb(12));
        assert_eq!(config.ingest.max_unpacked_size, ByteSize::mib(1));
        assert_eq!(config.ingest.extract_timeout, Duration::from_secs(150));

        Ok(())
    });
}

#[test]
fn sizes_in_the_file_parse() {
    jail(|jail| {
        let path = file(jail, "footnote.toml", "[ingest]\nmax_file_size = \"10 MiB\"\n");
        assert_eq!(load(Some(&path)).ingest.max_file_size, ByteSize::mib(10));
        Ok(())
    });
}

#[test]
fn bad_durations_and_sizes_are_errors() {
    jail(|jail| {
        let path =
            file(jail, "footnote.toml", "[ollama]\nrequest_timeout = \"soon\"\n[ingest]\nmax_file_size = \"big\"\n");
        let p = problems(Some(&path));
        assert!(contains(&p, "request_timeout"), "{p:?}");
        assert!(contains(&p, "max_file_size"), "{p:?}");
        Ok(())
    });
}

#[test]
fn keep_alive_takes_ollama_durations() {
    jail(|jail| {
        let path = file(jail, "footnote.toml", "[ollama]\nkeep_alive = \"-1\"\n");
        assert_eq!(load(Some(&path)).ollama.keep_alive, "-1");

        // In the environment `-1` is parsed as a number; it must still be taken.
        jail.set_env("FOOTNOTE_OLLAMA__KEEP_ALIVE", "-1");
        assert_eq!(load(None).ollama.keep_alive, "-1");
        jail.set_env("FOOTNOTE_OLLAMA__KEEP_ALIVE", "3600");
        assert_eq!(load(None).ollama.keep_alive, "3600");
        jail.set_env("FOOTNOTE_OLLAMA__KEEP_ALIVE", "1h");
        assert_eq!(load(None).ollama.keep_alive, "1h");

        jail.set_env("FOOTNOTE_OLLAMA__KEEP_ALIVE", "soon");
        let p = problems(None);
        assert!(contains(&p, "ollama.keep_alive = \"soon\" is not an Ollama duration"), "{p:?}");
        Ok(())
    });
}

#[test]
fn keep_alive_helpers() {
    for ok in ["30m", "1h", "1h30m", "10s", "0", "-1", "-1m", "3600", "2.5"] {
        assert!(valid_keep_alive(ok), "{ok}");
    }
    for bad in ["soon", "", "-", "30 minutes later", "NaN", "inf", "-inf"] {
        assert!(!valid_keep_alive(bad), "{bad}");
    }
    assert_eq!(keep_alive_duration("30m"), Some(Duration::from_secs(1800)));
    assert_eq!(keep_alive_duration("3600"), Some(Duration::from_secs(3600)));
    assert_eq!(keep_alive_duration("0"), Some(Duration::ZERO));
    assert_eq!(keep_alive_duration("-1"), None);
    assert_eq!(keep_alive_duration("-5m"), None);
    // Used to panic inside `Duration::from_secs_f64`.
    assert_eq!(keep_alive_duration("inf"), None);
    assert_eq!(keep_alive_duration("1e300"), None);
}

#[test]
fn fusion_numbers_cannot_be_negative_or_nan() {
    jail(|jail| {
        let path = file(jail, "footnote.toml", "[retrieval]\nrrf_k = nan\n");
        let p = problems(Some(&path));
        assert_eq!(p, ["retrieval.rrf_k and the fusion weights cannot be negative"]);
        jail.set_env("FOOTNOTE_RETRIEVAL__BM25_WEIGHT", "-0.5");
        assert_eq!(problems(None), p);
        Ok(())
    });
}

#[test]
fn fusion_is_one_of_the_named_methods() {
    jail(|jail| {
        jail.set_env("FOOTNOTE_RETRIEVAL__FUSION", "linear");
        assert_eq!(load(None).retrieval.fusion, Fusion::Linear);
        jail.set_env("FOOTNOTE_RETRIEVAL__FUSION", "average");
        let p = problems(None);
        assert!(contains(&p, "average"), "{p:?}");
        Ok(())
    });
}

#[test]
fn data_dir_defaults_per_user_when_empty() {
    jail(|jail| {
        jail.set_env("HOME", "/home/someone");
        assert_eq!(default_data_dir(), PathBuf::from("/home/someone/.local/share/footnote"));
        jail.set_env("XDG_DATA_HOME", "/xdg");
        assert_eq!(default_data_dir(), PathBuf::from("/xdg/footnote"));
        let path = file(jail, "footnote.toml", "data_dir = \"\"\n");
        assert_eq!(load(Some(&path)).data_dir, PathBuf::from("/xdg/footnote"));
        assert_eq!(load(Some(&path)).sqlite_path(), PathBuf::from("/xdg/footnote/footnote.db"));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[test]
fn the_database_url_is_redacted() {
    jail(|jail| {
        let path = file(jail, "footnote.toml", "[database]\nurl = \"sqlite:///tmp/x.db?password=hunter2\"\n");
        let config = load(Some(&path));
        assert_eq!(config.database.url.expose_secret(), "sqlite:///tmp/x.db?password=hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{config:#?}").contains("hunter2"));
        assert!(!json(&config).to_string().contains("hunter2"));

        // Nor does an error about it show it.
        jail.set_env("FOOTNOTE_DATABASE__URL", "mysql://me:hunter2@db/footnote");
        let err = Config::load(Some(&path)).expect_err("not a supported URL");
        assert!(err.to_string().contains("database.url must be empty"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        Ok(())
    });
}

#[test]
fn scoped_tokens_load_are_checked_and_redacted() {
    jail(|jail| {
        let toml = "[server]\ntokens = [\"operator-secret-0123456789\"]\n\n\
                    [[server.scoped_tokens]]\nname = \"editor\"\ntoken = \"scoped-secret-0123456789\"\n\
                    read = [\"handbook\", \"notes\"]\nwrite = [\"notes\"]\n";
        let path = file(jail, "footnote.toml", toml);
        let config = load(Some(&path));
        let scoped = &config.server.scoped_tokens[0];
        assert_eq!((scoped.name.as_str(), scoped.read.len(), scoped.write.len()), ("editor", 2, 1));
        assert_eq!(scoped.token.expose_secret(), "scoped-secret-0123456789");
        for shown in [format!("{config:?}"), format!("{config:#?}"), json(&config).to_string()] {
            assert!(!shown.contains("scoped-secret") && !shown.contains("operator-secret"), "{shown}");
        }
        let path = file(jail, "short.toml", "[[server.scoped_tokens]]\ntoken = \"short\"\nread = [\"\"]\n");
        let p = problems(Some(&path));
        assert!(contains(&p, "the token must be at least 16 characters long"), "{p:?}");
        assert!(contains(&p, "a collection name is empty"), "{p:?}");
        assert!(!p.iter().any(|p| p.contains("short\"")), "{p:?}");
        Ok(())
    });
}

#[test]
fn validate_accepts_the_defaults() {
    Config::default().validate().expect("the defaults are valid");
}

#[test]
fn the_database_is_chosen_by_its_url_once() {
    use crate::config::Database;
    let mut config = Config { data_dir: "/srv/footnote".into(), ..Config::default() };
    assert!(matches!(config.database(), Ok(Database::Sqlite(path)) if path == Path::new("/srv/footnote/footnote.db")));
    config.database.url = SecretString::from("sqlite:///tmp/other.db");
    assert!(matches!(config.database(), Ok(Database::SqliteUrl(url)) if url == "sqlite:///tmp/other.db"));
    config.database.url = SecretString::from("postgresql://me:pw@db/footnote");
    assert!(matches!(config.database(), Ok(Database::Postgres(_))));
    config.database.url = SecretString::from("mysql://me:pw@db/footnote");
    let problem = config.database().unwrap_err();
    assert!(!problem.contains("pw"), "{problem}");
}

#[test]
fn a_postgres_url_selects_postgres_and_database_url_is_the_fallback() {
    jail(|jail| {
        // DATABASE_URL applies only while nothing else names a database.
        jail.set_env("DATABASE_URL", "postgres://app:pw1@fallback/footnote");
        assert_eq!(load(None).database.url.expose_secret(), "postgres://app:pw1@fallback/footnote");
        jail.set_env("FOOTNOTE_DATABASE__URL", "postgresql://app:pw2@primary/footnote");
        let config = load(None);
        assert_eq!(config.database.url.expose_secret(), "postgresql://app:pw2@primary/footnote");
        assert!(matches!(config.database(), Ok(crate::config::Database::Postgres(_))));
        let path = file(jail, "footnote.toml", "[database]\nurl = \"sqlite::memory:\"\nretry_for = \"5s\"\n");
        jail.clear_env();
        jail.set_env("DATABASE_URL", "postgres://app:pw1@fallback/footnote");
        let config = load(Some(&path));
        assert_eq!(config.database.url.expose_secret(), "sqlite::memory:");
        assert_eq!(config.database.retry_for, Duration::from_secs(5));
        Ok(())
    });
}

#[test]
fn a_postgres_url_without_the_feature_names_the_feature() {
    jail(|jail| {
        jail.set_env("FOOTNOTE_DATABASE__URL", "postgres://me:hunter2@db/footnote");
        if cfg!(feature = "postgres") {
            load(None);
        } else {
            let all = problems(None).join("\n");
            assert!(all.contains("feature `postgres`"), "{all}");
            assert!(!all.contains("hunter2"), "{all}");
        }
        Ok(())
    });
}

#[test]
fn plugins_load_are_checked_and_redacted() {
    jail(|jail| {
        jail.set_env("IRC_PLUGIN_TOKEN", "plugin-secret-from-env-0123");
        let path = file(
            jail,
            "plugins.toml",
            "[[plugins]]\nname = \"irc\"\nplatform = \"irc\"\ntoken = \"plugin-secret-0123456789\"\n\
             [[plugins]]\nname = \"teams\"\nplatform = \"teams\"\ntoken_env = \"IRC_PLUGIN_TOKEN\"\n",
        );
        let config = load(Some(&path));
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(config.plugins[1].secret().expose_secret(), "plugin-secret-from-env-0123");
        let shown = format!("{config:?}{}", serde_json::to_string(&config).unwrap());
        assert!(!shown.contains("plugin-secret"), "a plugin token shows: {shown}");

        let bad = file(
            jail,
            "bad.toml",
            "[[plugins]]\nname = \"a\"\nplatform = \"http\"\ntoken = \"plugin-secret-0123456789\"\n\
             [[plugins]]\nname = \"a\"\nplatform = \"x y\"\ntoken = \"plugin-secret-0123456789\"\n\
             [[plugins]]\nname = \"b\"\nplatform = \"irc\"\ntoken_env = \"UNSET_PLUGIN_TOKEN\"\n",
        );
        let p = problems(Some(&bad));
        assert!(contains(&p, "platform “http” is the operator's own surface"), "{p:?}");
        assert!(contains(&p, "the name “a” is used twice"), "{p:?}");
        assert!(contains(&p, "platform must be one word"), "{p:?}");
        assert!(contains(&p, "another plugin has the same token"), "{p:?}");
        assert!(contains(&p, "plugins “b”: the token (from $UNSET_PLUGIN_TOKEN) must be at least 16"), "{p:?}");
        Ok(())
    });
}

#[test]
fn a_support_section_tuned_before_the_contrary_weighs_it_zero() {
    jail(|jail| {
        let shipped = SupportConfig::default().contrary;
        assert!(shipped > 0.0);
        // No section: the shipped weights, contrary included.
        assert_eq!(load(None).answer.support.contrary, shipped);
        // A section from an earlier `--tune` (its own weights, no contrary): fitted without it.
        let old = file(
            jail,
            "old.toml",
            "[answer.support]\ntuned_for = \"nomic-embed-text\"\nbias = -5.0841\ncosine = 3.7122\nrecall = 3.6898\n\
             window = 0.3786\npairs = -0.8635\nentities = 0.4515\nnumber_missing = -0.8507\n",
        );
        assert_eq!(load(Some(&old)).answer.support.contrary, 0.0);
        // A section that only moves a threshold keeps the shipped model whole.
        let threshold = file(jail, "threshold.toml", "[answer.support]\nsupported = 0.4\n");
        let config = load(Some(&threshold));
        assert_eq!(config.answer.support.supported, 0.4);
        assert_eq!(config.answer.support.contrary, shipped);
        // Said outright, it is used as given.
        let given = file(jail, "given.toml", "[answer.support]\nbias = -4.0\ncontrary = 2.5\n");
        assert_eq!(load(Some(&given)).answer.support.contrary, 2.5);
        Ok(())
    });
}
