//! Several `footnote serve` processes on one PostgreSQL with the email adapter against the real
//! Dovecot and SMTP server (`scripts/peers/email.sh start`): one instance at a time reads the
//! mailbox, every mail gets exactly one reply, and when the holder is killed with SIGKILL
//! another instance takes the mailbox over within 30 s: it answers what arrives next, and the
//! question the dead one was answering. No mail is answered twice, none is dropped. Without the
//! mail servers or the database the test FAILS, naming the script that starts them.
#![cfg(all(feature = "postgres", feature = "email"))]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mail::{Mail, mail_peer};
use common::pg::TestDatabase;
use common::process::{Serve, Settings};
use footnote_ollama_double::OllamaDouble;
use mail_parser::MessageParser;

/// The longest a takeover may take (the issue's bound).
const TAKEOVER: Duration = Duration::from_secs(30);

impl Mail {
    /// The `In-Reply-To` of every mail in `user`'s INBOX.
    async fn replies(&self, user: &str) -> Vec<String> {
        self.messages(user, "INBOX")
            .await
            .iter()
            .filter_map(|(raw, _)| MessageParser::default().parse(raw)?.in_reply_to().as_text().map(str::to_owned))
            .collect()
    }

    /// Waits until `user` got a reply to `message_id`; returns how many replies it has.
    async fn wait_reply(&self, user: &str, message_id: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let replies = self.replies(user).await;
            let count = replies.iter().filter(|r| *r == message_id).count();
            if count > 0 {
                return count;
            }
            assert!(Instant::now() < deadline, "no reply to <{message_id}> within 60 s; replies: {replies:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn instance(dir: &Path, name: &str, database: &str, ollama: &str, mail: &Mail, bot: &str, human: &str) -> Settings {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let (local, domain) = bot.split_once('@').unwrap();
    let toml = format!(
        r#"data_dir = "{data}"
[database]
url = "{database}"
[ollama]
url = "{ollama}"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "1s"
[adapters.email]
imap_host = "{host}"
imap_port = {imap}
imap_security = "plain"
username = "{bot}"
password = "{password}"
smtp_host = "{host}"
smtp_port = {smtp}
smtp_security = "plain"
from_address = "Footnote <{bot}>"
ask_address = "{bot}"
ingest_address = "{local}+ingest@{domain}"
allowed_senders = ["{human}"]
# The test mail server stamps no Authentication-Results.
require_dkim_or_spf = false
poll_interval_secs = 2
state_path = "email-state.json"
"#,
        data = data.display(),
        host = mail.host,
        imap = mail.imap_port,
        smtp = mail.smtp_port,
        password = mail.password,
    );
    let file = data.join("footnote.toml");
    std::fs::write(&file, toml).unwrap();
    Settings::file(&file)
}

async fn start(settings: &Settings) -> Serve {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || Serve::start(&settings)).await.unwrap()
}

fn holds(status: &serde_json::Value) -> bool {
    status["adapters"].as_array().is_some_and(|a| a.iter().any(|a| a["adapter"] == "email" && a["here"] == true))
}

fn question(from: &str, to: &str, id: &str, text: &str) -> String {
    format!(
        "From: Human <{from}>\nTo: {to}\nSubject: Router\nMessage-ID: <{id}>\nDate: Thu, 3 Oct 2024 10:00:00 +0000\n\n{text}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_instance_reads_the_mailbox_and_another_takes_over_within_30_s() {
    let mail = mail_peer();
    let database = TestDatabase::create().await;
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (bot, human) = (mail.user("bot"), mail.user("human"));
    let settings: Vec<Settings> = ["a", "b", "c"]
        .iter()
        .map(|name| instance(dir.path(), name, &database.url, &double.url, &mail, &bot, &human))
        .collect();

    let mut a = start(&settings[0]).await;
    a.wait_status(Duration::from_secs(60), holds).await;
    let mut b = start(&settings[1]).await;
    let status = b.wait_status(Duration::from_secs(30), |s| s["adapters"][0]["holder"].is_string()).await;
    assert!(!holds(&status), "two instances read the mailbox: {status:#}");

    // A note to add, then a question: one reply each.
    let (local, domain) = bot.split_once('@').unwrap();
    let note = format!(
        "From: Human <{human}>\nTo: {local}+ingest@{domain}\nSubject: Router manual\nMessage-ID: <note@test>\nDate: Thu, 3 Oct 2024 09:00:00 +0000\n\nTo reset the router, hold the reset button for ten seconds.\n"
    );
    mail.send(&human, &bot, &note).await;
    mail.wait_reply(&human, "note@test").await;
    mail.send(&human, &bot, &question(&human, &bot, "q1@test", "How long must the reset button be held?")).await;
    mail.wait_reply(&human, "q1@test").await;

    // The holder dies; the next question is answered by the other instance within 30 s.
    a.kill9();
    let killed = Instant::now();
    mail.send(&human, &bot, &question(&human, &bot, "q2@test", "What must be held for ten seconds?")).await;
    mail.wait_reply(&human, "q2@test").await;
    eprintln!("kill -9 of the holder → reply from the other instance: {:?}", killed.elapsed());
    assert!(killed.elapsed() <= TAKEOVER, "the reply after the takeover came {:?} after the kill", killed.elapsed());
    let status = b.wait_status(Duration::from_secs(5), holds).await;
    let b_name = status["instance"].as_str().unwrap().to_owned();

    // A third instance stands by; B is killed while it answers a question: C answers it.
    let c = start(&settings[2]).await;
    c.wait_status(Duration::from_secs(30), |s| s["adapters"][0]["holder"] == b_name.as_str()).await;
    double.set_token_delay(Duration::from_millis(400));
    let asked = "How do I reset the router?";
    mail.send(&human, &bot, &question(&human, &bot, "q3@test", asked)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !double.requests().iter().any(|r| r.path == "/api/chat" && r.body.to_string().contains(asked)) {
        assert!(Instant::now() < deadline, "B never started answering q3");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.kill9();
    let killed = Instant::now();
    double.set_token_delay(Duration::ZERO);
    mail.wait_reply(&human, "q3@test").await;
    eprintln!("kill -9 mid-answer → reply from the standby instance: {:?}", killed.elapsed());
    assert!(killed.elapsed() <= TAKEOVER, "the takeover took {:?}", killed.elapsed());
    c.wait_status(Duration::from_secs(5), holds).await;
    let answered_by_c = c.log().iter().any(|l| l.contains("Reply sent") && l.contains("q3@test"));
    assert!(answered_by_c, "C answered the question B was answering:\n{}", c.log().join("\n"));

    // A later question is answered too; by then every mail has exactly one reply.
    mail.send(&human, &bot, &question(&human, &bot, "q4@test", "Where is the reset button?")).await;
    mail.wait_reply(&human, "q4@test").await;
    let replies = mail.replies(&human).await;
    for id in ["note@test", "q1@test", "q2@test", "q3@test", "q4@test"] {
        assert_eq!(replies.iter().filter(|r| *r == id).count(), 1, "replies to <{id}>: {replies:?}");
    }
    drop(database);
}
