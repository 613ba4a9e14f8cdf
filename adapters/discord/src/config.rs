//! The `[adapters.discord]` configuration section.
//!
//! The runtime extracts this struct from figment, so the bot token normally comes from the
//! environment (`FOOTNOTE_ADAPTERS__DISCORD__TOKEN`) rather than the file. Field docs double as
//! user documentation.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Default largest attachment the bot downloads: 25 MiB, Discord's own upload limit for most servers.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// Default time between two edits of a streamed answer.
pub const DEFAULT_EDIT_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of earlier thread messages carried into a follow-up question.
pub const DEFAULT_HISTORY_MESSAGES: u8 = 20;

/// Settings of the Discord adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bot token from the Developer Portal (Bot → Reset Token). Keep it out of the file:
    /// set `FOOTNOTE_ADAPTERS__DISCORD__TOKEN` instead. Never logged.
    pub token: SecretString,
    /// The application id (General Information → Application ID). Optional: when absent it is
    /// read from the gateway's Ready event before commands are registered.
    #[serde(default)]
    pub application_id: Option<u64>,
    /// Guild (server) ids to register the slash commands in, which takes effect at once. When
    /// empty, the commands are registered globally, which Discord may take a while to show.
    #[serde(default)]
    pub guilds: Vec<u64>,
    /// Attachments larger than this many bytes are refused without being downloaded.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// How often a streamed answer is edited at most, as a humantime string such as `"1s"`.
    /// Discord rate-limits message edits, so values below about 500 ms only cause retries.
    #[serde(default = "default_edit_interval", with = "humantime_serde")]
    pub edit_interval: Duration,
    /// How many earlier messages of a thread are carried into a follow-up question (0 to 100).
    #[serde(default = "default_history_messages")]
    pub history_messages: u8,
    /// Ask for the privileged Message Content intent (turn it on in the Developer Portal first).
    /// Without it, slash commands, mentions and direct messages still work; a thread's history
    /// then holds only the bot's answers and the messages that mention it.
    #[serde(default = "default_message_content")]
    pub message_content: bool,
    /// Send REST calls to this base URL instead of `https://discord.com` (for a local proxy or a
    /// test double), such as `http://127.0.0.1:3000`. Leave unset in production.
    #[serde(default)]
    pub api_base: Option<String>,
}

const fn default_max_attachment_bytes() -> u64 {
    DEFAULT_MAX_ATTACHMENT_BYTES
}

const fn default_edit_interval() -> Duration {
    DEFAULT_EDIT_INTERVAL
}

const fn default_message_content() -> bool {
    true
}

const fn default_history_messages() -> u8 {
    DEFAULT_HISTORY_MESSAGES
}

impl Config {
    /// A configuration with the given token and every other field at its default.
    pub fn new(token: impl Into<String>) -> Self {
        Config {
            token: SecretString::from(token.into()),
            application_id: None,
            guilds: Vec::new(),
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            edit_interval: DEFAULT_EDIT_INTERVAL,
            history_messages: DEFAULT_HISTORY_MESSAGES,
            message_content: true,
            api_base: None,
        }
    }

    /// Checks the settings and returns every problem found, one per entry.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let token = self.token.expose_secret();
        if token.trim().is_empty() {
            problems.push(
                "adapters.discord.token is empty: set FOOTNOTE_ADAPTERS__DISCORD__TOKEN to the bot token".to_owned(),
            );
        } else if token.chars().any(char::is_whitespace) {
            problems.push("adapters.discord.token contains whitespace: copy the bot token again".to_owned());
        }
        if self.application_id == Some(0) {
            problems.push("adapters.discord.application_id must not be 0".to_owned());
        }
        if self.guilds.contains(&0) {
            problems.push("adapters.discord.guilds must not contain 0".to_owned());
        }
        if self.max_attachment_bytes == 0 {
            problems.push("adapters.discord.max_attachment_bytes must be above 0".to_owned());
        }
        if self.edit_interval.is_zero() {
            problems.push("adapters.discord.edit_interval must be above 0 (such as \"1s\")".to_owned());
        }
        if self.history_messages > 100 {
            problems.push("adapters.discord.history_messages must be at most 100 (Discord's page size)".to_owned());
        }
        if let Some(base) = &self.api_base
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            problems.push(format!("adapters.discord.api_base must start with http:// or https://, got {base:?}"));
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
    fn defaults_apply_and_durations_are_humantime() {
        let config = parse(r#"{"token": "abc.def", "edit_interval": "1500ms", "guilds": [42]}"#).unwrap();
        assert_eq!(config.edit_interval, Duration::from_millis(1500));
        assert_eq!(config.max_attachment_bytes, DEFAULT_MAX_ATTACHMENT_BYTES);
        assert_eq!(config.guilds, vec![42]);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = parse(r#"{"token": "t", "tokne": "x"}"#).err().unwrap();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let config = Config::new("super-secret-token");
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-token"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut config = Config::new("");
        config.max_attachment_bytes = 0;
        config.api_base = Some("ftp://x".into());
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
