//! Poison mail through the email adapter of the real `footnote serve`, against the real test mail
//! servers (Dovecot and the SMTP relay started by `scripts/peers/email.sh start`):
//!
//! - a mail whose attachment kills its extraction worker is refused once, and the next mail is
//!   still answered;
//! - a mail on which the whole process dies twice (here: SIGKILL while its attachment keeps a
//!   worker busy) is not read again after the restart: it is moved to `Footnote/Failed`, its
//!   sender gets one polite refusal, and later mail is answered as usual.
#![cfg(feature = "email")]

mod common;

use std::time::{Duration, Instant};

use common::hostile;
use common::mail::{Mail, mail_peer};
use common::served::{self, wait_until};
use common::*;
use mail_parser::MessageParser;

impl Mail {
    /// The replies in `user`'s inbox to the mail with this Message-ID (plain text).
    async fn replies_to(&self, user: &str, message_id: &str) -> Vec<String> {
        let wanted = format!("<{message_id}>");
        self.messages(user, "INBOX")
            .await
            .into_iter()
            .filter_map(|(raw, _)| {
                let parsed = MessageParser::default().parse(&raw)?;
                let in_reply_to = parsed.header_raw("In-Reply-To")?.trim().to_owned();
                (in_reply_to == wanted).then(|| parsed.body_text(0).unwrap_or_default().into_owned())
            })
            .collect()
    }

    /// Waits until `user` has a reply to `message_id`, and returns the replies.
    async fn wait_reply(&self, user: &str, message_id: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let replies = self.replies_to(user, message_id).await;
            if !replies.is_empty() {
                return replies;
            }
            assert!(Instant::now() < deadline, "no reply to {message_id}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

/// A mail carrying `file` as a base64 attachment.
fn with_attachment(from: &str, to: &str, id: &str, file: &hostile::Hostile) -> Vec<u8> {
    use base64_engine::encode;
    let mut raw = crlf(&format!(
        "From: Human <{from}>\nTo: {to}\nSubject: Please keep {}\nMessage-ID: <{id}>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nAttached.\n--b\n\
         Content-Type: application/octet-stream; name=\"{0}\"\nContent-Disposition: attachment; filename=\"{0}\"\n\
         Content-Transfer-Encoding: base64\n\n",
        file.name
    ));
    raw.extend_from_slice(&encode(&file.bytes));
    raw.extend_from_slice(b"\r\n--b--\r\n");
    raw
}

fn question(from: &str, to: &str, id: &str, text: &str) -> Vec<u8> {
    crlf(&format!("From: Human <{from}>\nTo: {to}\nSubject: A question\nMessage-ID: <{id}>\n\n{text}\n"))
}

/// Base64 for the attachments (76-character lines), so the test needs no extra crate.
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
        for (n, chunk) in data.chunks(3).enumerate() {
            if n > 0 && n % 19 == 0 {
                out.extend_from_slice(b"\r\n");
            }
            let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                out.push(if i <= chunk.len() { ALPHABET[(v >> shift & 63) as usize] } else { b'=' });
            }
        }
        out
    }
}

/// The adapter's settings: the bot's mailbox, answering `human` only.
fn config_file(env: &TestEnv, mail: &Mail, bot: &str, human: &str) -> std::path::PathBuf {
    let (local, domain) = bot.split_once('@').unwrap();
    let path = env.dir.path().join("footnote.toml");
    let toml = format!(
        "[adapters.email]\nimap_host = \"{host}\"\nimap_port = {imap}\nimap_security = \"plain\"\n\
         username = \"{bot}\"\npassword = \"{password}\"\nsmtp_host = \"{host}\"\nsmtp_port = {smtp}\n\
         smtp_security = \"plain\"\nfrom_address = \"Footnote <{bot}>\"\nask_address = \"{bot}\"\n\
         ingest_address = \"{local}+ingest@{domain}\"\nallowed_senders = [\"{human}\"]\nrequire_dkim_or_spf = false\npoll_interval_secs = 1\n\
         state_path = \"{state}\"\n",
        host = mail.host,
        imap = mail.imap_port,
        smtp = mail.smtp_port,
        password = mail.password,
        state = env.dir.path().join("email-state.json").display(),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

const SETTINGS: [(&str, &str); 2] = [("FOOTNOTE_INGEST__EXTRACT_TIMEOUT", "40s"), ("FOOTNOTE_INGEST__WORKERS", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_mail_is_refused_once_and_the_next_mail_is_answered() {
    let mail = mail_peer();
    let (bot, human) = (mail.user("bot"), mail.user("human"));
    let ingest = bot.replace('@', "+ingest@");
    let env = TestEnv::new().await;
    let config = config_file(&env, &mail, &bot, &human);
    let mut serve = served::start(&env, &SETTINGS, Some(&config));
    // The state file appears once the adapter has opened the mailbox.
    let state = env.dir.path().join("email-state.json");
    wait_until(Duration::from_secs(60), "the adapter to open the mailbox", || state.exists());

    // 1. A good file, then a file that kills its worker: refused once; the service goes on.
    let good =
        hostile::Hostile { name: "boiler.md", bytes: b"# Boiler\n\nThe boiler is serviced every October.".to_vec() };
    mail.send(&human, &ingest, &with_attachment(&human, &ingest, "good@test", &good)).await;
    let receipt = mail.wait_reply(&human, "good@test").await;
    assert!(receipt[0].contains("Added"), "{receipt:?}");
    let poison = hostile::file("xobject-self.pdf");
    mail.send(&human, &ingest, &with_attachment(&human, &ingest, "poison-a@test", poison)).await;
    mail.send(&human, &bot, &question(&human, &bot, "q1@test", "When is the boiler serviced?")).await;
    let answer = mail.wait_reply(&human, "q1@test").await;
    assert!(
        answer[0].contains("serviced every October"),
        "the question after the poison mail was not answered: {answer:?}"
    );
    // Mail is handled in order: the poison mail's reply came before the answer.
    let refused = mail.replies_to(&human, "poison-a@test").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("damaged or too complex") && refused[0].contains("Nothing was added"), "{refused:?}");

    // 2. A mail on which the whole process dies: its attachment keeps a worker busy, and the
    //    service is killed meanwhile, as the kernel's OOM killer or a crash would.
    let spinner = hostile::file("page-tree-loop.pdf");
    mail.send(&human, &ingest, &with_attachment(&human, &ingest, "poison-b@test", spinner)).await;
    wait_until(Duration::from_secs(60), "the poison mail to be in progress", || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"in_progress\":{"))
    });
    std::thread::sleep(Duration::from_millis(500));
    serve.kill9();
    // Once is no proof (a restart or a failover looks the same): the mail is tried again, and
    //    the process dies on it a second time.
    let mut serve = served::start(&env, &SETTINGS, Some(&config));
    wait_until(Duration::from_secs(60), "the poison mail to be tried again", || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"attempts\":2"))
    });
    std::thread::sleep(Duration::from_millis(500));
    serve.kill9();

    let serve = served::start(&env, &SETTINGS, Some(&config));
    let refusal = mail.wait_reply(&human, "poison-b@test").await;
    assert_eq!(refusal.len(), 1);
    assert!(refusal[0].contains("I couldn't read your message: it looks damaged or too complex."), "{refusal:?}");
    mail.send(&human, &bot, &question(&human, &bot, "q2@test", "And the boiler?")).await;
    assert!(mail.wait_reply(&human, "q2@test").await[0].contains("serviced every October"));
    let failed = mail.messages(&bot, "Footnote/Failed").await;
    assert_eq!(failed.len(), 1, "the poison mail was not moved aside");
    assert!(String::from_utf8_lossy(&failed[0].0).contains("poison-b@test"));
    assert!(serve.log_text().contains("set aside"), "{}", serve.log_text());

    // 3. Once more: nothing is refused or read twice.
    drop(serve);
    let _serve = served::start(&env, &SETTINGS, Some(&config));
    mail.send(&human, &bot, &question(&human, &bot, "q3@test", "Is the boiler fine?")).await;
    mail.wait_reply(&human, "q3@test").await;
    assert_eq!(mail.replies_to(&human, "poison-b@test").await.len(), 1);
    assert_eq!(mail.replies_to(&human, "poison-a@test").await.len(), 1);
}
