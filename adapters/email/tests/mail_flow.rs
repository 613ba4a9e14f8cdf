//! The email adapter against REAL servers: Dovecot (IMAP) and aiosmtpd delivering over LMTP,
//! started by `scripts/peers/email.sh start`. A test that finds them down fails and names the
//! script. Each test uses its own made-up mailboxes, so tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{header, peer, start};
use footnote_adapter::Role;
use footnote_email::Failpoint;
use mail_parser::{MessageParser, MimeHeaders};

const PDF_B64: &str =
    "JVBERi0xLjQKJcTl8uXrCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCnRyYWlsZXIKPDwvUm9vdCAxIDAgUj4+CiUlRU9G";

fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

/// A forward with the original mail (which carries a PDF) attached as `message/rfc822`.
fn forward(from: &str, to: &str, tag: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Human <{from}>\nTo: {to}\nSubject: Fwd: Q3 report {tag}\nMessage-ID: <fwd-{tag}@localhost>\nDate: Wed, 2 Oct 2024 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"o\"\n\n--o\nContent-Type: text/plain\n\nPlease keep this.\n--o\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\nFrom: Carl <carl@vendor.example>\nTo: {from}\nSubject: Q3 report {tag}\nDate: Tue, 1 Oct 2024 09:00:00 +0000\nMessage-ID: <orig-{tag}@vendor.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"i\"\n\n--i\nContent-Type: text/plain\n\nReport attached.\n--i\nContent-Type: application/pdf; name=\"q3.pdf\"\nContent-Disposition: attachment; filename=\"q3.pdf\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}\n--i--\n--o--\n"
    ))
}

fn question(from: &str, to: &str, id: &str, text: &str, extra: &str) -> Vec<u8> {
    crlf(&format!(
        "{extra}From: Human <{from}>\nTo: {to}\nSubject: Revenue?\nMessage-ID: <{id}>\nDate: Thu, 3 Oct 2024 10:00:00 +0000\n\n{text}\n"
    ))
}

#[tokio::test]
async fn forward_then_ask_then_follow_up() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let gateway = common::gateway();
    let running = start(peer.config(&bot, &[&human], &dir.path().join("state.json")), gateway.clone(), None).await;

    peer.send(&human, &bot, &forward(&human, &bot, "t1")).await;
    let inbox = peer.wait_for(&human, 1).await;
    let receipt = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(receipt.subject(), Some("Re: Fwd: Q3 report t1"));
    assert_eq!(receipt.in_reply_to().as_text(), Some("fwd-t1@localhost"));
    assert!(receipt.body_text(0).unwrap().contains("Added “Q3 report t1 ["), "{:?}", receipt.body_text(0));
    let ingests = gateway.uploads();
    assert_eq!(ingests.len(), 1);
    let (scope, actor, upload) = &ingests[0];
    assert_eq!((scope.platform.as_str(), scope.room.as_str()), ("email", human.as_str()));
    assert_eq!(scope.space.as_deref(), Some(peer.domain.as_str()));
    assert_eq!(actor.user_id, human);
    assert!(upload.file_name.ends_with(".eml"));
    let eml = MessageParser::default().parse(&upload.bytes).unwrap();
    assert_eq!(eml.message_id(), Some("orig-t1@vendor.example"));
    let pdf = eml.attachment(0).unwrap();
    assert_eq!(pdf.attachment_name(), Some("q3.pdf"));
    assert!(pdf.contents().starts_with(b"%PDF-1.4"));
    assert_eq!(upload.origin.sender.as_deref(), Some("carl@vendor.example"));

    peer.send(&human, &bot, &question(&human, &bot, "q1-t1@localhost", "How did revenue develop?", "")).await;
    let inbox = peer.wait_for(&human, 2).await;
    let answer = inbox.iter().find(|m| header(m, "In-Reply-To").as_deref() == Some("<q1-t1@localhost>")).unwrap();
    let parsed = MessageParser::default().parse(answer).unwrap();
    assert_eq!(parsed.subject(), Some("Re: Revenue?"));
    assert_eq!(header(answer, "Auto-Submitted").as_deref(), Some("auto-replied"));
    let plain = parsed.body_text(0).unwrap();
    assert!(plain.contains("Revenue grew by 12% <fast> [1], mostly in Europe [2]."), "{plain}");
    assert!(plain.contains("[1] r0.pdf — “Q3 report” · p. 2: “revenue grew 12%”"), "{plain}");
    assert!(plain.contains("[2] Q3 report"), "{plain}");
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("12% &lt;fast&gt; [1]") && html.contains("<li value=\"2\">"), "{html}");
    let asks = gateway.asks();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].2.text, "How did revenue develop?");
    assert!(asks[0].2.history.is_empty());
    assert_eq!(asks[0].0.thread.as_deref(), Some("q1-t1@localhost"));

    // A reply to the answer is a follow-up carrying the earlier turns.
    let answer_id = parsed.message_id().unwrap().to_owned();
    let follow_up = crlf(&format!(
        "From: {human}\nTo: {bot}\nSubject: Re: Revenue?\nMessage-ID: <q2-t1@localhost>\nIn-Reply-To: <{answer_id}>\nReferences: <q1-t1@localhost> <{answer_id}>\n\nAnd in Asia?\n\nOn Thu, 3 Oct 2024, Footnote <{bot}> wrote:\n> Revenue grew by 12% [1]\n"
    ));
    peer.send(&human, &bot, &follow_up).await;
    let inbox = peer.wait_for(&human, 3).await;
    let second = inbox.iter().find(|m| header(m, "In-Reply-To").as_deref() == Some("<q2-t1@localhost>")).unwrap();
    let references = header(second, "References").unwrap();
    assert!(references.starts_with("<q1-t1@localhost>"), "{references}");
    let asks = gateway.asks();
    assert_eq!(asks.len(), 2);
    let (scope, _, q) = &asks[1];
    assert_eq!(q.text, "And in Asia?");
    assert_eq!(scope.thread.as_deref(), Some("q1-t1@localhost"));
    assert_eq!(q.history.len(), 2);
    assert_eq!((q.history[0].role, q.history[0].text.as_str()), (Role::User, "How did revenue develop?"));
    assert_eq!(q.history[1].role, Role::Assistant);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn strangers_and_robots_get_nothing() {
    let peer = peer();
    let (bot, human, stranger) = (peer.user("bot"), peer.user("human"), peer.user("eve"));
    let dir = tempfile::tempdir().unwrap();
    let gateway = common::gateway();
    let running = start(peer.config(&bot, &[&human], &dir.path().join("state.json")), gateway.clone(), None).await;

    peer.send(&stranger, &bot, &forward(&stranger, &bot, "t2")).await;
    peer.send(&stranger, &bot, &question(&stranger, &bot, "s-t2@localhost", "Secrets?", "")).await;
    let ooo = question(&human, &bot, "ooo-t2@localhost", "I am out of office.", "Auto-Submitted: auto-replied\n");
    peer.send(&human, &bot, &ooo).await;
    let list = question(&human, &bot, "list-t2@localhost", "Digest", "List-Id: <news.lists.example>\n");
    peer.send(&human, &bot, &list).await;
    // Handled in UID order: once this is answered, everything above was looked at.
    peer.send(&human, &bot, &question(&human, &bot, "ok-t2@localhost", "A real question?", "")).await;
    let inbox = peer.wait_for(&human, 1).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(header(&inbox[0], "In-Reply-To").as_deref(), Some("<ok-t2@localhost>"));
    assert!(peer.messages(&stranger, "INBOX").await.is_empty(), "the stranger got a reply");
    assert!(gateway.uploads().is_empty());
    assert_eq!(gateway.asks().len(), 1);
    // Ignored mail is left alone (unseen); the answered one is marked.
    let bot_box = peer.messages(&bot, "INBOX").await;
    assert_eq!(bot_box.iter().filter(|(_, seen)| *seen).count(), 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_crash_after_ingest_reprocesses_without_a_duplicate_reply() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let gateway = common::gateway();
    let crashing = start(peer.config(&bot, &[&human], &state), gateway.clone(), Some(Failpoint::AfterGateway)).await;
    peer.send(&human, &bot, &forward(&human, &bot, "t3")).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), crashing.task).await.unwrap().unwrap();
    assert!(ended.is_err(), "the failpoint ends run like a crash");
    assert_eq!(gateway.uploads().len(), 1);
    assert!(peer.messages(&human, "INBOX").await.is_empty());
    assert!(!peer.messages(&bot, "INBOX").await[0].1, "not marked before the work committed");

    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    let inbox = peer.wait_for(&human, 1).await;
    assert!(MessageParser::default().parse(&inbox[0]).unwrap().body_text(0).unwrap().contains("Already had"));
    let ingests = gateway.uploads();
    assert_eq!(ingests.len(), 2, "re-processed");
    assert_eq!(ingests[0].2.bytes, ingests[1].2.bytes, "identical upload, so the core dedupes it");
    running.stop().await.unwrap();
    assert_eq!(peer.messages(&human, "INBOX").await.len(), 1);
    assert!(peer.messages(&bot, "INBOX").await[0].1);
}

#[tokio::test]
async fn a_crash_before_marking_does_not_answer_twice() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let gateway = common::gateway();
    let crashing = start(peer.config(&bot, &[&human], &state), gateway.clone(), Some(Failpoint::BeforeMark)).await;
    peer.send(&human, &bot, &question(&human, &bot, "q-t4@localhost", "Revenue?", "")).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), crashing.task).await.unwrap().unwrap();
    assert!(ended.is_err());
    assert_eq!(peer.wait_for(&human, 1).await.len(), 1, "answered before the crash");
    assert!(!peer.messages(&bot, "INBOX").await[0].1, "crashed before marking");

    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !peer.messages(&bot, "INBOX").await[0].1 {
        assert!(std::time::Instant::now() < deadline, "the restarted adapter did not mark the mail");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    running.stop().await.unwrap();
    assert_eq!(gateway.asks().len(), 1, "not asked again");
    assert_eq!(peer.messages(&human, "INBOX").await.len(), 1, "no duplicate answer");
}

#[tokio::test]
async fn a_restart_answers_new_mail_only_even_after_a_uidvalidity_change() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    // Mail already in the mailbox before the very first start is left alone.
    peer.send(&human, &bot, &question(&human, &bot, "old-t5@localhost", "Ancient?", "")).await;
    peer.wait_for(&bot, 1).await;
    let gateway = common::gateway();
    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    peer.send(&human, &bot, &question(&human, &bot, "q1-t5@localhost", "First?", "")).await;
    peer.wait_for(&human, 1).await;
    running.stop().await.unwrap();

    // While it is down: a person marks everything unread, and a new question arrives.
    peer.mark_all_unseen(&bot).await;
    peer.send(&human, &bot, &question(&human, &bot, "q2-t5@localhost", "Second?", "")).await;
    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    peer.wait_for(&human, 2).await;
    running.stop().await.unwrap();

    // UIDVALIDITY changes (mailbox rebuilt): unseen mail is re-scanned; answered ids are skipped.
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    json["uid_validity"] = serde_json::json!(1);
    std::fs::write(&state, serde_json::to_vec(&json).unwrap()).unwrap();
    peer.mark_all_unseen(&bot).await;
    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    peer.send(&human, &bot, &question(&human, &bot, "q3-t5@localhost", "Third?", "")).await;
    let inbox = peer.wait_for(&human, 4).await;
    running.stop().await.unwrap();

    let answered: Vec<String> = inbox.iter().filter_map(|m| header(m, "In-Reply-To")).collect();
    let asked: Vec<String> = gateway.asks().into_iter().map(|(_, _, q)| q.text).collect();
    // After the reset the never-recorded old mail is unseen too, so it is answered once now.
    assert!(asked.starts_with(&["First?".to_owned(), "Second?".to_owned()]), "{asked:?}");
    for id in ["<old-t5@localhost>", "<q1-t5@localhost>", "<q2-t5@localhost>", "<q3-t5@localhost>"] {
        assert_eq!(answered.iter().filter(|a| *a == id).count(), 1, "{id} in {answered:?}");
    }
    assert_eq!(asked.iter().filter(|q| *q == "First?").count(), 1);
    assert_eq!(asked.iter().filter(|q| *q == "Second?").count(), 1);
}

#[tokio::test]
async fn over_limit_mail_gets_a_polite_reply_and_plus_address_ingests() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = peer.config(&bot, &[&human], &dir.path().join("state.json"));
    config.max_message_bytes = 1024;
    config.processed_folder = Some("Processed".into());
    let gateway = common::gateway();
    let running = start(config, gateway.clone(), None).await;

    peer.send(&human, &bot, &forward(&human, &bot, "t6")).await;
    let inbox = peer.wait_for(&human, 1).await;
    let text = MessageParser::default().parse(&inbox[0]).unwrap().body_text(0).unwrap().into_owned();
    assert!(text.contains("more than the 1.0 kB I accept") && text.contains("Nothing was added"), "{text}");
    assert!(gateway.uploads().is_empty());

    let (local, domain) = bot.split_once('@').unwrap();
    let ingest_to = format!("{local}+ingest@{domain}");
    let note = crlf(&format!(
        "From: {human}\nTo: {ingest_to}\nSubject: Wifi password\nMessage-ID: <n-t6@localhost>\n\nIt is hunter2.\n"
    ));
    peer.send(&human, &ingest_to, &note).await;
    peer.wait_for(&human, 2).await;
    running.stop().await.unwrap();
    let ingests = gateway.uploads();
    assert_eq!(ingests.len(), 1);
    assert!(ingests[0].2.file_name.starts_with("Wifi password ["));
    assert_eq!(peer.messages(&bot, "INBOX").await.len(), 0, "handled mail moved away");
    assert_eq!(peer.messages(&bot, "Processed").await.len(), 2);
}

#[tokio::test]
async fn a_mail_that_took_the_process_down_is_set_aside_and_refused_once() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let gateway = common::gateway();
    let crashing = start(peer.config(&bot, &[&human], &state), gateway.clone(), Some(Failpoint::WhileReading)).await;
    peer.send(&human, &bot, &forward(&human, &bot, "t7")).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), crashing.task).await.unwrap().unwrap();
    assert!(ended.is_err(), "the failpoint ends run like a crash");
    assert!(std::fs::read_to_string(&state).unwrap().contains("\"in_progress\":{"), "recorded before reading");
    // Once is no proof against the mail (a restart or a failover looks the same): it is read
    // again after a restart, and here the process dies on it a second time.
    let crashing = start(peer.config(&bot, &[&human], &state), gateway.clone(), Some(Failpoint::WhileReading)).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), crashing.task).await.unwrap().unwrap();
    assert!(ended.is_err(), "the failpoint ends run like a crash");
    assert!(std::fs::read_to_string(&state).unwrap().contains("\"attempts\":2"), "the second start is counted");

    // After the next restart the mail is not read again: one refusal, and it is moved aside.
    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    let inbox = peer.wait_for(&human, 1).await;
    let refusal = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(refusal.in_reply_to().as_text(), Some("fwd-t7@localhost"));
    assert!(refusal.body_text(0).unwrap().contains("it looks damaged or too complex"), "{:?}", refusal.body_text(0));
    // The next mail is handled as usual.
    peer.send(&human, &bot, &question(&human, &bot, "q-t7@localhost", "Revenue?", "")).await;
    peer.wait_for(&human, 2).await;
    running.stop().await.unwrap();
    assert!(gateway.uploads().is_empty(), "the mail that took the process down was read again");
    assert_eq!(gateway.asks().len(), 1);
    let failed = peer.messages(&bot, "Footnote/Failed").await;
    assert_eq!(failed.len(), 1);
    assert!(String::from_utf8_lossy(&failed[0].0).contains("fwd-t7@localhost"));
    assert_eq!(peer.messages(&bot, "INBOX").await.len(), 1, "only the question stays in the inbox");

    // A second restart refuses nothing again.
    let running = start(peer.config(&bot, &[&human], &state), gateway.clone(), None).await;
    peer.send(&human, &bot, &question(&human, &bot, "q2-t7@localhost", "Costs?", "")).await;
    peer.wait_for(&human, 3).await;
    running.stop().await.unwrap();
    let inbox = peer.messages(&human, "INBOX").await;
    let refusals = inbox.iter().filter(|(raw, _)| header(raw, "In-Reply-To").as_deref() == Some("<fwd-t7@localhost>"));
    assert_eq!(refusals.count(), 1);
}

#[tokio::test]
async fn deeply_nested_forwards_are_refused_without_being_taken_apart() {
    let peer = peer();
    let (bot, human) = (peer.user("bot"), peer.user("human"));
    let dir = tempfile::tempdir().unwrap();
    let gateway = common::gateway();
    let running = start(peer.config(&bot, &[&human], &dir.path().join("state.json")), gateway.clone(), None).await;
    let mut nested = format!(
        "From: Human <{human}>\r\nTo: {bot}\r\nSubject: Fwd: deep\r\nMessage-ID: <deep-t8@localhost>\r\nMIME-Version: 1.0\r\n"
    );
    for _ in 0..50_000 {
        nested.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nBottom.\r\n");
    peer.send(&human, &bot, nested.as_bytes()).await;
    let inbox = peer.wait_for(&human, 1).await;
    let text = MessageParser::default().parse(&inbox[0]).unwrap().body_text(0).unwrap().into_owned();
    assert!(text.contains("more than 64 forwarded messages") && text.contains("Nothing was added"), "{text}");
    running.stop().await.unwrap();
    assert!(gateway.uploads().is_empty());
}
