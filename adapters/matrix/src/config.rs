//! The `[adapters.matrix]` configuration section.
//!
//! The runtime extracts this struct from figment, so the password or access token normally come
//! from the environment (`FOOTNOTE_ADAPTERS__MATRIX__PASSWORD`, `…__ACCESS_TOKEN`) rather than the
//! file. Field docs double as user documentation.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Default largest file the bot downloads: 25 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
/// Default time between two edits of a streamed answer.
pub const DEFAULT_EDIT_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of earlier thread messages carried into a follow-up question.
pub const DEFAULT_HISTORY_MESSAGES: u8 = 20;

/// Settings of the Matrix adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The homeserver's client API base URL, such as `https://matrix.example.org`.
    pub homeserver: String,
    /// The bot's full user id, such as `@footnote:example.org`.
    pub user_id: String,
    /// The bot account's password, used to log in when there is no saved session. Keep it out of
    /// the file: set `FOOTNOTE_ADAPTERS__MATRIX__PASSWORD`. Never logged.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// An access token instead of a password (`FOOTNOTE_ADAPTERS__MATRIX__ACCESS_TOKEN`). Its device
    /// must not be used by another client, as the bot keeps that device's encryption keys.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// The name other users see for the bot's device (on password login).
    #[serde(default = "default_device_name")]
    pub device_name: String,
    /// Where the session and the encryption store are kept; a relative path is under the data
    /// directory. Keep it: deleting it creates a new device that cannot read older messages.
    #[serde(default = "default_store_dir")]
    pub store_dir: PathBuf,
    /// A passphrase that encrypts the store on disk (`FOOTNOTE_ADAPTERS__MATRIX__STORE_PASSPHRASE`).
    #[serde(default)]
    pub store_passphrase: Option<SecretString>,
    /// Who may invite the bot: full user ids (`@alice:example.org`) or server names
    /// (`example.org`, everyone on that server). Invites from anyone else are declined.
    #[serde(default)]
    pub allowed_inviters: Vec<String>,
    /// The prefix of the bot's commands (`!ask`, `!ingest`, …).
    #[serde(default = "default_prefix")]
    pub command_prefix: String,
    /// Files larger than this many bytes are refused without being downloaded.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// How often a streamed answer is edited at most, as a humantime string such as `"1s"`.
    #[serde(default = "default_edit_interval", with = "humantime_serde")]
    pub edit_interval: Duration,
    /// How many earlier messages of a thread are carried into a follow-up question (0 to 100).
    #[serde(default = "default_history_messages")]
    pub history_messages: u8,
}

fn default_device_name() -> String {
    "Footnote".to_owned()
}

fn default_store_dir() -> PathBuf {
    PathBuf::from("matrix")
}

fn default_prefix() -> String {
    "!".to_owned()
}

const fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

const fn default_edit_interval() -> Duration {
    DEFAULT_EDIT_INTERVAL
}

const fn default_history_messages() -> u8 {
    DEFAULT_HISTORY_MESSAGES
}

impl Config {
    /// A configuration for `user_id` on `homeserver` with a password, every other field at its default.
    pub fn with_password(homeserver: &str, user_id: &str, password: &str) -> Self {
        Config {
            homeserver: homeserver.to_owned(),
            user_id: user_id.to_owned(),
            password: Some(SecretString::from(password.to_owned())),
            access_token: None,
            device_name: default_device_name(),
            store_dir: default_store_dir(),
            store_passphrase: None,
            allowed_inviters: Vec::new(),
            command_prefix: default_prefix(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            edit_interval: DEFAULT_EDIT_INTERVAL,
            history_messages: DEFAULT_HISTORY_MESSAGES,
        }
    }

    /// Checks the settings and returns every problem found, one per entry.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let p = "adapters.matrix";
        if !(self.homeserver.starts_with("http://") || self.homeserver.starts_with("https://")) {
            problems.push(format!("{p}.homeserver must start with http:// or https://, got {:?}", self.homeserver));
        }
        if !valid_user_id(&self.user_id) {
            problems.push(format!(
                "{p}.user_id must be a full user id such as @footnote:example.org, got {:?}",
                self.user_id
            ));
        }
        let blank = |s: &Option<SecretString>| s.as_ref().is_none_or(|s| s.expose_secret().trim().is_empty());
        if blank(&self.password) && blank(&self.access_token) {
            problems.push(format!(
                "{p}: set a password (FOOTNOTE_ADAPTERS__MATRIX__PASSWORD) or an access token \
                 (FOOTNOTE_ADAPTERS__MATRIX__ACCESS_TOKEN)"
            ));
        }
        if self.access_token.as_ref().is_some_and(|t| t.expose_secret().chars().any(char::is_whitespace)) {
            problems.push(format!("{p}.access_token contains whitespace: copy it again"));
        }
        if self.store_dir.as_os_str().is_empty() {
            problems.push(format!("{p}.store_dir must not be empty"));
        }
        for entry in &self.allowed_inviters {
            if !(valid_user_id(entry) || valid_server_name(entry)) {
                problems.push(format!(
                    "{p}.allowed_inviters: {entry:?} is neither a user id (@name:server) nor a server name"
                ));
            }
        }
        if self.command_prefix.is_empty() || self.command_prefix.chars().any(char::is_whitespace) {
            problems.push(format!("{p}.command_prefix must be non-empty without spaces, such as \"!\""));
        }
        if self.max_file_bytes == 0 {
            problems.push(format!("{p}.max_file_bytes must be above 0"));
        }
        if self.edit_interval.is_zero() {
            problems.push(format!("{p}.edit_interval must be above 0 (such as \"1s\")"));
        }
        if self.history_messages > 100 {
            problems.push(format!("{p}.history_messages must be at most 100"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

/// `@localpart:server` with a non-empty localpart and server name.
pub fn valid_user_id(id: &str) -> bool {
    id.strip_prefix('@').and_then(|rest| rest.split_once(':')).is_some_and(|(local, server)| {
        !local.is_empty() && !local.chars().any(char::is_whitespace) && valid_server_name(server)
    })
}

/// A host name or IP literal, optionally with a port.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('@')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_apply_and_durations_are_humantime() {
        let config = parse(
            r#"{"homeserver": "https://matrix.example.org", "user_id": "@bot:example.org",
                "access_token": "syt_abc", "edit_interval": "1500ms", "allowed_inviters": ["example.org", "@a:b.c"]}"#,
        )
        .unwrap();
        assert_eq!(config.edit_interval, Duration::from_millis(1500));
        assert_eq!(config.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
        assert_eq!(config.command_prefix, "!");
        assert_eq!(config.store_dir, PathBuf::from("matrix"));
        assert!(config.validate().is_ok(), "{:?}", config.validate());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = parse(r#"{"homeserver": "http://x", "user_id": "@a:x", "pasword": "x"}"#).err().unwrap();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut config = Config::with_password("http://x", "@a:x", "hunter2-password");
        config.access_token = Some(SecretString::from("syt_secret_token".to_owned()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("syt_secret"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut config = Config::with_password("matrix.example.org", "bot", "");
        config.allowed_inviters = vec!["@nobody".into()];
        config.command_prefix = String::new();
        config.max_file_bytes = 0;
        config.edit_interval = Duration::ZERO;
        config.history_messages = 101;
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 8, "{problems:?}");
    }

    #[test]
    fn user_ids_and_server_names() {
        assert!(valid_user_id("@footnote:example.org"));
        assert!(valid_user_id("@bot:localhost:8448"));
        assert!(!valid_user_id("footnote:example.org"));
        assert!(!valid_user_id("@:example.org"));
        assert!(valid_server_name("example.org") && valid_server_name("[::1]:8448"));
        assert!(!valid_server_name("@a:b") && !valid_server_name("exa mple.org"));
    }
}
