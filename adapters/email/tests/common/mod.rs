//! Shared helpers for the tests against the real mail peers started by
//! `scripts/peers/email.sh start`: where the peers are, a recording fake `Gateway`, sending mail
//! over SMTP and reading a mailbox over IMAP.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use footnote_adapter::testing::RecordingGateway;
use footnote_adapter::{Adapter, AdapterError, Answer, AskEvent, CancellationToken, Citation, Locator, Timings};
use footnote_email::{CollectionMapping, Config, EmailAdapter, Failpoint, Security};
use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_parser::MessageParser;
use secrecy::SecretString;
use tokio::task::JoinHandle;

/// Where the peers listen and the shared password, from the `FOOTNOTE_TEST_*` variables that
/// `scripts/peers/email.sh start` prints (defaults: the script's defaults).
pub struct Peer {
    pub host: String,
    pub imap_port: u16,
    pub smtp_port: u16,
    pub domain: String,
    pub password: String,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The running peers; panics (fails the test) with the command to start them when they are not up.
pub fn peer() -> Peer {
    let peer = Peer {
        host: env_or("FOOTNOTE_TEST_IMAP_HOST", "127.0.0.1"),
        imap_port: env_or("FOOTNOTE_TEST_IMAP_PORT", "31143").parse().expect("FOOTNOTE_TEST_IMAP_PORT"),
        smtp_port: env_or("FOOTNOTE_TEST_SMTP_PORT", "32525").parse().expect("FOOTNOTE_TEST_SMTP_PORT"),
        domain: env_or("FOOTNOTE_TEST_MAIL_DOMAIN", "localhost"),
        password: env_or("FOOTNOTE_TEST_MAIL_PASSWORD", "peer-password"),
    };
    for (what, port) in [("IMAP", peer.imap_port), ("SMTP", peer.smtp_port)] {
        if std::net::TcpStream::connect((peer.host.as_str(), port)).is_err() {
            panic!(
                "the {what} test peer is not running on {}:{port}. Start the mail peers with \
                 `scripts/peers/email.sh start` (as root) and export the FOOTNOTE_TEST_* lines it prints.",
                peer.host
            );
        }
    }
    peer
}

impl Peer {
    /// A fresh mailbox name for this test run, so tests never share an INBOX.
    pub fn user(&self, role: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        format!("{role}-{}-{:x}@{}", std::process::id(), nanos & 0xff_ffff_ffff, self.domain)
    }

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

    /// Sends raw RFC 5322 bytes over SMTP.
    pub async fn send(&self, from: &str, to: &str, raw: &[u8]) {
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host).port(self.smtp_port).build();
        let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
        smtp.send_raw(&envelope, raw).await.unwrap();
    }

    async fn session(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.imap_port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client.login(user, &self.password).await.map_err(|(e, _)| e).unwrap()
    }

    /// Every message in `user`'s `folder`, with whether it is `\Seen`. A folder that cannot be
    /// selected or read fails the test: "no message" must mean an empty folder, never an error.
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<(Vec<u8>, bool)> {
        let mut session = self.session(user).await;
        let mailbox =
            session.select(folder).await.unwrap_or_else(|e| panic!("cannot select {folder:?} of {user}: {e}"));
        if mailbox.exists == 0 {
            session.logout().await.ok();
            return Vec::new();
        }
        let fetches: Vec<_> = session
            .fetch("1:*", "(FLAGS BODY.PEEK[])")
            .await
            .unwrap_or_else(|e| panic!("cannot fetch {folder:?} of {user}: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("cannot read the messages of {folder:?} of {user}: {e}"));
        // Mail may arrive between SELECT and FETCH; none may go missing.
        assert!(fetches.len() >= mailbox.exists as usize, "{folder:?} of {user}: every message fetched");
        session.logout().await.ok();
        fetches
            .iter()
            .filter_map(|f| {
                let seen = f.flags().any(|flag| matches!(flag, async_imap::types::Flag::Seen));
                f.body().map(|b| (b.to_vec(), seen))
            })
            .collect()
    }

    /// Waits until `user`'s INBOX holds at least `count` messages and returns them.
    pub async fn wait_for(&self, user: &str, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<Vec<u8>> = self.messages(user, "INBOX").await.into_iter().map(|(raw, _)| raw).collect();
            if got.len() >= count {
                return got;
            }
            assert!(Instant::now() < deadline, "{user} has {} messages, waited for {count}", got.len());
            tokio::time::sleep(Duration::from_millis(200)).await;
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
