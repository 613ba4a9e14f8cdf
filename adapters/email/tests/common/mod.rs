//! Shared helpers for the tests against the real mail peers started by
//! `scripts/peers/email.sh start`: where the peers are, a recording fake `Gateway`, sending mail
//! over SMTP and reading a mailbox over IMAP.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod peer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use footnote_adapter::testing::RecordingGateway;
use footnote_adapter::{Adapter, AdapterError, Answer, AskEvent, CancellationToken, Citation, Locator, Timings};
use footnote_email::{CollectionMapping, Config, EmailAdapter, Failpoint, Security};
use futures::TryStreamExt;
use mail_parser::MessageParser;
pub use peer::{Peer, peer};
use secrecy::SecretString;
use tokio::task::JoinHandle;

impl Peer {
    /// The adapter's configuration for mailbox `bot`, allowing `allowed`.
    pub fn config(&self, bot: &str, allowed: &[&str], state: &Path) -> Config {
        let (local, domain) = bot.split_once('@').unwrap();
        Config {
            imap_host: self.host.clone(),
            imap_port: Some(self.imap_port),
            imap_security: Security::Plain,
            username: bot.to_owned(),
            password: SecretString::from(self.password.clone()),
            mailbox: "INBOX".into(),
            processed_folder: None,
            smtp_host: self.host.clone(),
            smtp_port: Some(self.smtp_port),
            smtp_security: Security::Plain,
            smtp_username: None,
            smtp_password: None,
            allow_plaintext: false,
            from_address: format!("Footnote <{bot}>"),
            ask_address: Some(bot.to_owned()),
            ask_subject_prefix: None,
            ingest_address: Some(format!("{local}+ingest@{domain}")),
            allowed_senders: allowed.iter().map(|s| (*s).to_owned()).collect(),
            require_dkim_or_spf: false,
            authserv_id: None,
            collection: CollectionMapping::Sender,
            max_message_bytes: 5 * 1024 * 1024,
            max_attachments: 10,
            max_attachment_bytes: 1024 * 1024,
            poll_interval_secs: 2,
            state_path: state.to_owned(),
        }
    }

    /// Clears `\Seen` on every message of `user`'s INBOX (a person marking mail unread).
    pub async fn mark_all_unseen(&self, user: &str) {
        let mut session = self.session(user).await;
        session.select("INBOX").await.unwrap();
        let _: Vec<_> = session.store("1:*", "-FLAGS (\\Seen)").await.unwrap().try_collect().await.unwrap();
        session.logout().await.ok();
    }
}

/// A header value of a raw message, trimmed.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    MessageParser::default().parse(raw)?.header_raw(name).map(|v| v.trim().to_owned())
}

/// A gateway that records calls and answers every question with [`answer`].
pub fn gateway() -> Arc<RecordingGateway> {
    Arc::new(RecordingGateway::new(vec![AskEvent::Done(answer())]))
}

pub fn answer() -> Answer {
    let citation = |n: u32, title: &str, page: u32, snippet: &str| Citation {
        n,
        document_id: format!("doc-{n}"),
        title: title.into(),
        locator: Locator { page: Some(page), subject: Some("Q3 report".into()), ..Locator::default() },
        snippet: snippet.into(),
        score: 0.5,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    };
    Answer {
        text: "Revenue grew by 12% <fast> [1], mostly in Europe [2].".into(),
        citations: vec![
            citation(1, "r0.pdf", 2, "revenue grew 12%"),
            citation(2, "Q3 report", 1, "Europe led the growth"),
        ],
        notice: None,
        model: "fake".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

/// A running adapter.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), AdapterError>>,
}

impl Running {
    /// Stops it and returns how `run` ended.
    pub async fn stop(self) -> Result<(), AdapterError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("adapter stops").unwrap()
    }
}

/// Starts the adapter and waits until it has opened the mailbox (its state file exists).
pub async fn start(config: Config, gateway: Arc<RecordingGateway>, failpoint: Option<Failpoint>) -> Running {
    let state: PathBuf = config.state_path.clone();
    let existed = state.exists();
    let mut adapter = EmailAdapter::new(config).unwrap();
    if let Some(point) = failpoint {
        adapter = adapter.with_failpoint(point);
    }
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(Box::new(adapter).run(gateway, shutdown.clone()));
    if !existed {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !state.exists() {
            assert!(Instant::now() < deadline && !task.is_finished(), "adapter did not open the mailbox");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Running { shutdown, task }
}
