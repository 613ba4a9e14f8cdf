//! Settings of the long-running service (`footnote serve`): the HTTP listener and its tokens,
//! shutdown, keep-warm, and the limits every question goes through (queue, rate, time).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Address `footnote serve` listens on by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `[server]`: the HTTP API, the web page and the service's lifecycle.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// The address people use to reach the web page and the API from other machines
    /// (`https://footnote.example.org`), when it is not a loopback or IP address. Requests naming
    /// any other host are refused (DNS rebinding), and with `https` the session cookie is `Secure`.
    pub public_url: String,
    /// Bearer tokens accepted by the HTTP API and the web page's login. Empty: no
    /// authentication, and then only a loopback address may be used.
    #[serde(serialize_with = "serialize_secrets", deserialize_with = "de_secrets")]
    pub tokens: Vec<SecretString>,
    /// Bearer tokens bound to collections (`[[server.scoped_tokens]]`): for the HTTP API and
    /// `/mcp` only, reading and writing just the collections they list.
    pub scoped_tokens: Vec<ScopedToken>,
    /// Allows listening on a non-loopback address without tokens (anyone who can reach it may
    /// ask, upload and forget).
    pub allow_unauthenticated_remote: bool,
    /// How long answers in flight may take to finish after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Re-warm both models shortly before `ollama.keep_alive` would unload them.
    pub keep_warm: bool,
    /// Collection the web page reads and writes.
    pub web_collection: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.into(),
            public_url: String::new(),
            tokens: Vec::new(),
            scoped_tokens: Vec::new(),
            allow_unauthenticated_remote: false,
            shutdown_grace: Duration::from_secs(30),
            keep_warm: false,
            web_collection: "default".into(),
        }
    }
}

impl ServerConfig {
    /// Problems with these settings, for [`Config::validate`](super::Config::validate).
    pub(crate) fn problems(&self, p: &mut Vec<String>) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() && !self.listen.contains(':') {
            p.push(format!("server.listen = {:?} is not host:port", self.listen));
        }
        if !self.public_url.trim().is_empty() && self.public_host().is_none() {
            p.push(format!(
                "server.public_url = {:?} is not an http:// or https:// URL with a host name",
                self.public_url
            ));
        }
        if self.tokens.iter().any(|t| t.expose_secret().trim().len() < 16) {
            p.push("server.tokens: every token must be at least 16 characters long".into());
        }
        for t in &self.scoped_tokens {
            if t.token.expose_secret().trim().len() < 16 {
                p.push(format!("server.scoped_tokens “{}”: the token must be at least 16 characters long", t.name));
            }
            if t.read.iter().chain(&t.write).any(|c| c.trim().is_empty()) {
                p.push(format!("server.scoped_tokens “{}”: a collection name is empty", t.name));
            }
        }
        if self.web_collection.trim().is_empty() {
            p.push("server.web_collection must name a collection".into());
        }
    }
}

/// A bearer token bound to collections: it reads (searches, asks, lists, reads passages) only
/// the `read` collections and adds to or forgets from only the `write` ones (`*`: every
/// collection). It is refused by the web page, `/metrics` and the other operator routes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedToken {
    /// A name for the log (never the token itself).
    #[serde(default = "scoped_token_name")]
    pub name: String,
    /// The secret (kept only as a hash once the server runs; redacted when shown).
    #[serde(serialize_with = "serialize_secret")]
    pub token: SecretString,
    /// Collections it may read.
    #[serde(default)]
    pub read: Vec<String>,
    /// Collections it may add documents to and forget them from.
    #[serde(default)]
    pub write: Vec<String>,
}

fn scoped_token_name() -> String {
    "scoped".into()
}

fn serialize_secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

impl ServerConfig {
    /// True when some bearer token (plain or scoped) is configured.
    pub fn has_tokens(&self) -> bool {
        self.tokens.iter().any(|t| !t.expose_secret().is_empty())
            || self.scoped_tokens.iter().any(|t| !t.token.expose_secret().is_empty())
    }

    /// The host name of `public_url` (lower-case), when it is an http(s) URL with one.
    pub fn public_host(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.public_url.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        url.host_str().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase)
    }

    /// True when `public_url` is an https URL: the session cookie is then sent over TLS only.
    pub fn public_https(&self) -> bool {
        self.public_host().is_some() && self.public_url.trim().to_ascii_lowercase().starts_with("https://")
    }
}

/// `[limits]`: what keeps one busy user or a slow model from starving everyone else.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most questions waiting for the chat model at once; past it, askers are told to try later.
    pub queue_max: usize,
    /// Most questions one chat user may have waiting for the chat model at once.
    pub queue_per_user: usize,
    /// Questions (and warm-ups) one chat user may ask per minute (0: no limit). Admins get four
    /// times as many; the local operator (CLI, HTTP API, web page) is not limited.
    pub rate_per_minute: u32,
    /// Questions one user may ask in a quick burst before the per-minute rate applies.
    pub rate_burst: u32,
    /// Files one chat user may add per minute (0: no limit); admins get four times as many.
    pub ingest_per_minute: u32,
    /// Files one user may add in a quick burst before the per-minute rate applies.
    pub ingest_burst: u32,
    /// Longest time from a question to its answer, queue wait included.
    #[serde(with = "humantime_serde")]
    pub answer_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            queue_max: 32,
            queue_per_user: 3,
            rate_per_minute: 20,
            rate_burst: 5,
            ingest_per_minute: 20,
            ingest_burst: 20,
            answer_timeout: Duration::from_secs(180),
        }
    }
}

impl LimitsConfig {
    pub(crate) fn problems(&self, p: &mut Vec<String>) {
        if self.queue_max == 0 {
            p.push("limits.queue_max must be at least 1".into());
        }
        if self.queue_per_user == 0 {
            p.push("limits.queue_per_user must be at least 1".into());
        }
        if self.rate_per_minute > 0 && self.rate_burst == 0 {
            p.push("limits.rate_burst must be at least 1 when limits.rate_per_minute is set".into());
        }
        if self.ingest_per_minute > 0 && self.ingest_burst == 0 {
            p.push("limits.ingest_burst must be at least 1 when limits.ingest_per_minute is set".into());
        }
        if self.answer_timeout.is_zero() {
            p.push("limits.answer_timeout must be above zero".into());
        }
    }
}

fn serialize_secrets<S: serde::Serializer>(v: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for _ in v {
        seq.serialize_element("")?;
    }
    seq.end()
}

/// A list of tokens, or one token (as `FOOTNOTE_SERVER__TOKENS=...` gives).
fn de_secrets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(ts) => ts,
    }
    .into_iter()
    .filter(|t| !t.trim().is_empty())
    .map(SecretString::from)
    .collect())
}
