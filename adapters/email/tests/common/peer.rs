//! The test mail peers (`scripts/peers/email.sh start`: Dovecot over IMAP and an SMTP relay into
//! it), as the `FOOTNOTE_TEST_*` variables the script prints name them: fresh mailboxes, sending
//! raw mail, and reading a folder strictly (a folder that cannot be read fails the test, so that
//! "nothing arrived" never passes on an error). Shared by the email adapter's tests and the core's
//! (`tests/common/mail.rs` includes this file).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// Where the peers listen and the password of every mailbox (defaults: the script's).
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

    /// Sends a raw RFC 5322 message over SMTP. Text has its line ends made CRLF on the way (tests
    /// write `\n`); other bytes go as they are.
    pub async fn send(&self, from: &str, to: &str, raw: impl AsRef<[u8]>) {
        let raw = raw.as_ref();
        let crlf = std::str::from_utf8(raw).map(|text| text.replace("\r\n", "\n").replace('\n', "\r\n"));
        let bytes = crlf.as_ref().map_or(raw, |text| text.as_bytes());
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host).port(self.smtp_port).build();
        let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
        smtp.send_raw(&envelope, bytes).await.expect("send over SMTP");
    }

    /// An IMAP session logged in as `user`.
    pub async fn session(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
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
}
