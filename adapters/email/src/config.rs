//! The `[adapters.email]` configuration section: where the mailbox is, who may use it, what the
//! bot does with mail, and the limits it enforces. Field docs double as user documentation.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Default IMAP mailbox the bot reads.
pub const DEFAULT_MAILBOX: &str = "INBOX";
/// Default largest message the bot reads whole (25 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;
/// Default largest number of attachments in one message.
pub const DEFAULT_MAX_ATTACHMENTS: usize = 20;
/// Default largest single attachment (20 MiB).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;
/// Default time between mailbox checks when IDLE is unavailable, and the longest IDLE wait.
pub const DEFAULT_POLL_SECS: u64 = 60;

/// How a connection to a mail server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAP port 993, SMTP port 465).
    #[default]
    Tls,
    /// A plain connection upgraded with STARTTLS (IMAP 143, SMTP submission 587).
    Starttls,
    /// No encryption: only accepted for a loopback host unless `allow_plaintext` is set.
    Plain,
}

/// Which collection a sender's mail goes to and is answered from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMapping {
    /// One collection per sender address (`room` = the address): `collection = "sender"`.
    #[default]
    Sender,
    /// One collection per sender domain (`room` = the domain): `collection = "domain"`.
    Domain,
    /// One shared collection for every allowed sender: `collection = { fixed = "team" }`.
    Fixed(String),
}

/// The email adapter's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// IMAP server host name.
    pub imap_host: String,
    /// IMAP port; defaults to 993 for `tls` and 143 otherwise.
    #[serde(default)]
    pub imap_port: Option<u16>,
    /// IMAP connection security: `tls` (default), `starttls` or `plain`.
    #[serde(default)]
    pub imap_security: Security,
    /// IMAP login name.
    pub username: String,
    /// IMAP password (better supplied through the environment).
    pub password: SecretString,
    /// The mailbox to read (default `INBOX`).
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// Move handled mail to this folder; without it, handled mail is flagged `\Seen`.
    #[serde(default)]
    pub processed_folder: Option<String>,
    /// SMTP server host name.
    pub smtp_host: String,
    /// SMTP port; defaults to 465 for `tls`, 587 for `starttls` and 25 for `plain`.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// SMTP connection security: `tls` (default), `starttls` or `plain`.
    #[serde(default)]
    pub smtp_security: Security,
    /// SMTP login name; no SMTP authentication when unset.
    #[serde(default)]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[serde(default)]
    pub smtp_password: Option<SecretString>,
    /// Allow `plain` security for a host that is not loopback (passwords then cross the network
    /// in clear text).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// The bot's own address, used as `From:` of its replies; mail from it is never answered.
    pub from_address: String,
    /// Mail to this address is a question (`bot+ask@example.org` also matches `bot@…+ask`).
    #[serde(default)]
    pub ask_address: Option<String>,
    /// Mail whose subject starts with this (case-insensitive, after `Re:`) is a question.
    #[serde(default)]
    pub ask_subject_prefix: Option<String>,
    /// Mail to this address is ingested (plus-addressing: `bot+ingest@example.org`).
    #[serde(default)]
    pub ingest_address: Option<String>,
    /// Who may use the bot: full addresses (`ann@example.org`) or domains (`@example.org`).
    pub allowed_senders: Vec<String>,
    /// Act only on mail that the operator's own mail server (`authserv_id`) found to pass
    /// DMARC, DKIM or SPF for the `From:` domain (on by default). Without it, anyone can send mail
    /// as an allowed sender by writing their address in `From:`.
    #[serde(default = "default_true")]
    pub require_dkim_or_spf: bool,
    /// The name the operator's receiving mail server writes first in its
    /// `Authentication-Results` headers (for example `mx.example.org`); headers with any other
    /// name are ignored, since the sender may have written them. Needed while
    /// `require_dkim_or_spf` is on.
    #[serde(default)]
    pub authserv_id: Option<String>,
    /// Which collection a sender's mail goes to: `"sender"` (default), `"domain"` or
    /// `{ fixed = "name" }`.
    #[serde(default)]
    pub collection: CollectionMapping,
    /// Largest message read whole, in bytes; larger mail gets a polite refusal.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// Most attachments in one message.
    #[serde(default = "default_max_attachments")]
    pub max_attachments: usize,
    /// Largest single attachment, in bytes.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// Seconds between checks when the server has no IDLE, and the longest IDLE wait.
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// Where the adapter keeps its progress (UIDVALIDITY, UIDs, answered Message-IDs, threads).
    pub state_path: PathBuf,
}

const fn default_true() -> bool {
    true
}
const fn default_max_message_bytes() -> u64 {
    DEFAULT_MAX_MESSAGE_BYTES
}
const fn default_max_attachments() -> usize {
    DEFAULT_MAX_ATTACHMENTS
}
const fn default_max_attachment_bytes() -> u64 {
    DEFAULT_MAX_ATTACHMENT_BYTES
}
const fn default_poll_secs() -> u64 {
    DEFAULT_POLL_SECS
}
fn default_mailbox() -> String {
    DEFAULT_MAILBOX.to_owned()
}

impl Config {
    /// The IMAP port, with the default for the chosen security.
    pub fn imap_port(&self) -> u16 {
        self.imap_port.unwrap_or(match self.imap_security {
            Security::Tls => 993,
            Security::Starttls | Security::Plain => 143,
        })
    }

    /// The SMTP port, with the default for the chosen security.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        })
    }

    /// How long to wait between checks (and at most in IDLE).
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs.max(1))
    }

    /// Checks the whole section and returns every problem found, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (what, host, security) in
            [("imap", &self.imap_host, self.imap_security), ("smtp", &self.smtp_host, self.smtp_security)]
        {
            if host.trim().is_empty() {
                problems.push(format!("{what}_host is empty"));
            } else if security == Security::Plain && !self.allow_plaintext && !is_loopback(host) {
                problems.push(format!(
                    "{what}_security = \"plain\" sends passwords in clear text to {host}; use tls or starttls, \
                     or set allow_plaintext = true"
                ));
            }
        }
        if self.username.trim().is_empty() {
            problems.push("username is empty".into());
        }
        for (what, address) in [
            ("from_address", Some(&self.from_address)),
            ("ask_address", self.ask_address.as_ref()),
            ("ingest_address", self.ingest_address.as_ref()),
        ] {
            if let Some(address) = address
                && crate::convert::split_address(address).is_none()
            {
                problems.push(format!("{what} {address:?} is not an email address"));
            }
        }
        if self.ask_address.is_none() && self.ask_subject_prefix.is_none() && self.ingest_address.is_none() {
            problems.push("set ask_address, ask_subject_prefix or ingest_address: the bot would do nothing".into());
        }
        if self.allowed_senders.is_empty() {
            problems.push("allowed_senders is empty: nobody could use the bot".into());
        }
        for entry in &self.allowed_senders {
            let ok = match entry.strip_prefix('@') {
                Some(domain) => !domain.is_empty() && !domain.contains('@'),
                None => crate::convert::split_address(entry).is_some(),
            };
            if !ok {
                problems.push(format!("allowed_senders entry {entry:?} is neither an address nor @domain"));
            }
        }
        if self.require_dkim_or_spf && self.authserv_id.as_deref().is_none_or(|id| id.trim().is_empty()) {
            problems.push(
                "require_dkim_or_spf is on (the default) but authserv_id is not set: set authserv_id to the name your \
                 mail server writes first in its Authentication-Results headers (such as mx.example.org), or set \
                 require_dkim_or_spf = false if From: may be trusted as written"
                    .into(),
            );
        }
        if let CollectionMapping::Fixed(name) = &self.collection
            && name.trim().is_empty()
        {
            problems.push("collection.fixed is empty".into());
        }
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            problems.push("set both smtp_username and smtp_password, or neither".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}

impl Config {
    /// The start-up warning when `From:` is trusted as written while the allowlist names senders
    /// of other domains than the bot's own (whose mail the operator's server does not deliver
    /// from inside), or `None`.
    pub fn sender_trust_warning(&self) -> Option<String> {
        if self.require_dkim_or_spf {
            return None;
        }
        let own = crate::convert::split_address(&self.from_address).map(|(_, d)| d.to_ascii_lowercase());
        let foreign: Vec<&str> = self
            .allowed_senders
            .iter()
            .map(String::as_str)
            .filter(|entry| {
                let domain = entry.strip_prefix('@').or_else(|| entry.rsplit_once('@').map(|(_, d)| d));
                domain.map(str::to_ascii_lowercase) != own
            })
            .collect();
        (!foreign.is_empty()).then(|| {
            format!(
                "require_dkim_or_spf = false: anyone on the internet can write From: {} and be taken for an allowed \
                 sender (read their documents, ask, add documents). Set authserv_id and require_dkim_or_spf = true.",
                foreign.join(", ")
            )
        })
    }
}

/// True for `localhost` and loopback IP addresses.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_both_passwords() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "imap_host": "imap.example.org", "username": "bot", "password": "imap-secret",
            "smtp_host": "smtp.example.org", "smtp_password": "smtp-secret",
            "from_address": "bot@example.org", "allowed_senders": ["example.org"], "state_path": "email.json",
        }))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("imap-secret") && !shown.contains("smtp-secret"), "{shown}");
        assert_eq!(shown.matches("[REDACTED]").count(), 2, "{shown}");
    }
}
