//! The `[adapters.slack]` configuration section: tokens, connection mode and limits.
//!
//! Tokens are [`SecretString`]s, normally supplied through the environment
//! (`FOOTNOTE_ADAPTERS__SLACK__BOT_TOKEN`, …); `Debug` prints them as `[REDACTED]`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Slack's Web API base URL; every method is `{api_base}/{method}`.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";
/// Largest file taken from a chat by default (20 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
/// Pause between two `chat.update` calls while an answer streams. `chat.update` is a Tier 3
/// method (about 50 calls a minute per workspace), so one edit every 1.2 s leaves headroom.
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_millis(1200);

/// How the adapter receives events from Slack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Socket Mode: an outgoing WebSocket opened with the app-level token; no public URL needed.
    #[default]
    Socket,
    /// Events API: Slack posts to Footnote's HTTP server, which verifies each request's signature.
    Events,
}

/// Settings of the Slack adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bot user OAuth token (`xoxb-…`), used for every Web API call and for file downloads.
    pub bot_token: SecretString,
    /// App-level token (`xapp-…`) with the `connections:write` scope; required in Socket Mode.
    #[serde(default)]
    pub app_token: Option<SecretString>,
    /// Signing secret from the app's "Basic Information" page; required for the Events API.
    #[serde(default)]
    pub signing_secret: Option<SecretString>,
    /// `socket` (default, no public URL needed) or `events` (HTTP endpoint on Footnote's server).
    #[serde(default)]
    pub mode: Mode,
    /// Base URL of Slack's Web API. Change it only to point the adapter at a test double.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Largest file, in bytes, that is downloaded and ingested; bigger files get a clear reply.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Least time between two edits of a streaming answer, such as `"1.2s"`.
    #[serde(default = "default_update_interval", with = "humantime_serde")]
    pub update_interval: Duration,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

const fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

const fn default_update_interval() -> Duration {
    DEFAULT_UPDATE_INTERVAL
}

impl Config {
    /// A configuration with the given bot token and every other field at its default.
    pub fn new(bot_token: impl Into<String>) -> Self {
        Config {
            bot_token: SecretString::from(bot_token.into()),
            app_token: None,
            signing_secret: None,
            mode: Mode::default(),
            api_base: default_api_base(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            update_interval: DEFAULT_UPDATE_INTERVAL,
        }
    }

    /// Every problem with the configuration, or `Ok` when it can work.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !self.bot_token.expose_secret().starts_with("xoxb-") {
            problems.push("adapters.slack.bot_token must be a bot token starting with `xoxb-`".to_owned());
        }
        match self.mode {
            Mode::Socket => match &self.app_token {
                None => problems.push(
                    "adapters.slack.app_token (`xapp-…`) is required in socket mode; \
                     or set adapters.slack.mode = \"events\""
                        .to_owned(),
                ),
                Some(token) if !token.expose_secret().starts_with("xapp-") => problems
                    .push("adapters.slack.app_token must be an app-level token starting with `xapp-`".to_owned()),
                Some(_) => {}
            },
            Mode::Events => {
                if self.signing_secret.as_ref().is_none_or(|s| s.expose_secret().is_empty()) {
                    problems.push("adapters.slack.signing_secret is required in events mode".to_owned());
                }
            }
        }
        if !(self.api_base.starts_with("https://") || self.api_base.starts_with("http://")) {
            problems.push("adapters.slack.api_base must be an http(s) URL".to_owned());
        }
        if self.max_file_bytes == 0 {
            problems.push("adapters.slack.max_file_bytes must be above 0".to_owned());
        }
        if self.update_interval < Duration::from_millis(200) {
            problems.push("adapters.slack.update_interval must be at least 200ms".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_and_humantime() {
        let c = parse(r#"{"bot_token":"xoxb-1","app_token":"xapp-1"}"#).expect("parses");
        assert_eq!(c.mode, Mode::Socket);
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.update_interval, DEFAULT_UPDATE_INTERVAL);
        assert!(c.validate().is_ok());
        let c = parse(r#"{"bot_token":"xoxb-1","mode":"events","signing_secret":"s","update_interval":"2s"}"#)
            .expect("parses");
        assert_eq!(c.update_interval, Duration::from_secs(2));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn unknown_fields_fail_and_problems_are_all_reported() {
        assert!(parse(r#"{"bot_token":"xoxb-1","bot_tokn":"x"}"#).is_err());
        let c = parse(r#"{"bot_token":"xoxp-1","mode":"events","max_file_bytes":0}"#).expect("parses");
        assert_eq!(c.validate().expect_err("invalid").len(), 3);
    }

    #[test]
    fn debug_redacts_every_secret() {
        let c = parse(r#"{"bot_token":"xoxb-SECRET1","app_token":"xapp-SECRET2","signing_secret":"SECRET3"}"#)
            .expect("parses");
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
