//! The test mail servers (Dovecot and the SMTP relay that `scripts/peers/email.sh start` runs),
//! named by the `FOOTNOTE_TEST_*` variables it prints: fresh mailboxes and sending raw mail.

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// Where the mail peers listen, and the password of every mailbox.
pub struct Mail {
    pub host: String,
    pub imap_port: u16,
    pub smtp_port: u16,
    pub domain: String,
    pub password: String,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The mail peers; the test fails, naming the script, when they are not running.
pub fn mail_peer() -> Mail {
    let mail = Mail {
        host: env_or("FOOTNOTE_TEST_IMAP_HOST", "127.0.0.1"),
        imap_port: env_or("FOOTNOTE_TEST_IMAP_PORT", "31143").parse().unwrap(),
        smtp_port: env_or("FOOTNOTE_TEST_SMTP_PORT", "32525").parse().unwrap(),
        domain: env_or("FOOTNOTE_TEST_MAIL_DOMAIN", "localhost"),
        password: env_or("FOOTNOTE_TEST_MAIL_PASSWORD", "peer-password"),
    };
    for (what, port) in [("IMAP", mail.imap_port), ("SMTP", mail.smtp_port)] {
        if std::net::TcpStream::connect((mail.host.as_str(), port)).is_err() {
            panic!(
                "the {what} test peer is not running on {}:{port}: start the mail peers with \
                 `scripts/peers/email.sh start` and export the FOOTNOTE_TEST_* lines it prints",
                mail.host
            );
        }
    }
    mail
}

impl Mail {
    /// A mailbox nobody used before.
    pub fn user(&self, role: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("{role}-{}-{:x}@{}", std::process::id(), nanos & 0xff_ffff_ffff, self.domain)
    }

    /// Sends `raw` (its lines ended by CRLF on the way) from `from` to `to` over SMTP.
    pub async fn send(&self, from: &str, to: &str, raw: impl AsRef<[u8]>) {
        let text = String::from_utf8_lossy(raw.as_ref()).replace("\r\n", "\n").replace('\n', "\r\n");
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host).port(self.smtp_port).build();
        let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
        smtp.send_raw(&envelope, text.as_bytes()).await.expect("send over SMTP");
    }
}
