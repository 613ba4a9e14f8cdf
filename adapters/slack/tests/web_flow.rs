//! The whole mention → thread answer flow against a recording double of Slack's Web API.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use footnote_adapter::Role;
use footnote_slack::SlackState;
use serde_json::json;

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn final_update(calls: &[Call]) -> bool {
    calls.iter().any(|c| {
        c.name == "chat.update" && c.body.get("blocks").is_some_and(|b| b.as_array().is_some_and(|a| !a.is_empty()))
    })
}

#[tokio::test]
async fn mention_with_a_file_is_ingested_then_answered_in_its_thread() {
    install_crypto();
    let double = SlackDouble::start().await;
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, None), gateway.clone()).expect("state");

    let files = json!([{"id": "F1", "name": "manual.md", "mimetype": "text/markdown", "size": FILE_BYTES.len(),
        "url_private_download": double.url("/files/F1/manual.md")}]);
    assert!(state.accept_event(mention_event("Ev1", "1515449522.000016", None, Some(files))));
    let calls = double.wait_for("the final answer", final_update).await;

    // The file was fetched with the bot token and ingested into the channel with a link back.
    let download = calls.iter().find(|c| c.name.starts_with("/files/")).expect("file downloaded");
    assert_eq!(download.method, "GET");
    assert_eq!(download.authorization.as_deref(), Some("Bearer xoxb-test-token"));
    let ingested = gateway
        .calls()
        .into_iter()
        .find_map(|c| match c {
            footnote_adapter::testing::Call::Ingest(scope, actor, upload) => Some((scope, actor, upload)),
            _ => None,
        })
        .expect("ingested");
    assert_eq!(ingested.0.room, "C0LAN2Q65");
    assert_eq!(ingested.0.space.as_deref(), Some("T1"));
    assert_eq!(ingested.1.user_id, "U2147483697");
    assert_eq!(ingested.2.bytes, FILE_BYTES);
    assert!(ingested.2.origin.link.as_deref().is_some_and(|l| l.contains("/archives/C0LAN2Q65/")));

    // The question reached the gateway with the thread as scope.
    let asks = gateway.asks();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].0.thread.as_deref(), Some("1515449522.000016"));
    assert_eq!(asks[0].2.text, "which VLAN do guests use?");
    assert!(asks[0].2.history.is_empty());

    // Web API calls in order: identity, permalink, download, receipt, placeholder, edits, final.
    let web: Vec<&Call> = calls.iter().collect();
    let names: Vec<&str> = web.iter().map(|c| c.name.as_str()).collect();
    let first = |n: &str| names.iter().position(|x| *x == n).unwrap_or(usize::MAX);
    assert!(first("auth.test") < first("chat.getPermalink"), "{names:?}");
    assert!(first("chat.getPermalink") < first("/files/F1/manual.md"), "{names:?}");
    let posts: Vec<&&Call> = web.iter().filter(|c| c.name == "chat.postMessage").collect();
    assert_eq!(posts.len(), 2, "receipt and answer placeholder: {names:?}");
    for post in &posts {
        assert_eq!(post.body["thread_ts"], "1515449522.000016");
        assert_eq!(post.body["channel"], "C0LAN2Q65");
    }
    assert!(posts[0].body["text"].as_str().is_some_and(|t| t.contains("Added") && t.contains("doc-1")));
    assert!(posts[1].body["text"].as_str().is_some_and(|t| t.contains("Looking")));

    let updates: Vec<&&Call> = web.iter().filter(|c| c.name == "chat.update").collect();
    assert!(updates.len() >= 2, "at least one progress edit and the final one: {names:?}");
    let answer_ts = "2000000000.000002";
    assert!(updates.iter().all(|u| u.body["ts"] == answer_ts));
    let progress: Vec<&str> = updates[..updates.len() - 1].iter().filter_map(|u| u.body["text"].as_str()).collect();
    assert!(
        progress.iter().any(|t| t.contains("Waiting") || t.contains("Loading") || t.ends_with('…')),
        "{progress:?}"
    );
    // Edits are throttled to the configured 200 ms (events come every 150 ms). The double sees
    // when a request arrives, not when it was sent, and a loaded machine delays either of two
    // requests by tens of milliseconds: each gap may shrink by that jitter, the whole run only
    // by one jitter at its ends.
    let gaps: Vec<Duration> = updates.windows(2).map(|pair| pair[1].at.duration_since(pair[0].at)).collect();
    assert!(gaps.iter().all(|gap| *gap >= Duration::from_millis(120)), "{gaps:?}");
    let span = updates[updates.len() - 1].at.duration_since(updates[0].at);
    let throttled = Duration::from_millis(200) * u32::try_from(gaps.len()).unwrap();
    assert!(span + Duration::from_millis(60) >= throttled, "{span:?} for {} gaps", gaps.len());
    let last = updates.last().expect("final update");
    assert_eq!(last.body["text"], "Guests go on VLAN 10 [1]; reboot after changes [2].");
    let blocks = &last.body["blocks"];
    assert_eq!(
        blocks[0],
        json!({"type": "section", "text": {"type": "mrkdwn",
        "text": "Guests go on VLAN 10 [1]; reboot after changes [2]."}})
    );
    assert_eq!(blocks[1]["type"], "divider");
    assert_eq!(blocks[2]["type"], "context");
    assert_eq!(blocks[2]["elements"][0]["text"], "*[1]* Router manual — p. 3 · Setup\n“Use VLAN 10 for guests.”");
    assert!(
        blocks[3]["elements"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*[2]* notes.md") && t.contains("|original message>"))
    );
    assert_eq!(blocks.as_array().map(Vec::len), Some(4));
    // Every Web API call carried the bot token.
    assert!(
        web.iter()
            .filter(|c| !c.name.starts_with('/'))
            .all(|c| c.authorization.as_deref() == Some("Bearer xoxb-test-token"))
    );
}

#[tokio::test]
async fn a_mention_inside_a_thread_carries_its_history() {
    install_crypto();
    let double = SlackDouble::start().await;
    *double.state.replies.lock().expect("lock") = vec![
        json!({"type": "message", "user": "U2147483697", "text": "<@U0BOT> what is our guest VLAN?", "ts": "1515449000.000001", "thread_ts": "1515449000.000001"}),
        json!({"type": "message", "user": BOT_USER, "bot_id": "B0BOT", "text": "VLAN 10 [1].", "ts": "1515449001.000001", "thread_ts": "1515449000.000001"}),
        json!({"type": "message", "user": "U2147483697", "text": "<@U0BOT> which VLAN do guests use?", "ts": "1515449522.000016", "thread_ts": "1515449000.000001"}),
    ];
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, None), gateway.clone()).expect("state");
    state.accept_event(mention_event("Ev2", "1515449522.000016", Some("1515449000.000001"), None));
    let calls = double.wait_for("the final answer", final_update).await;

    let replies = calls.iter().find(|c| c.name == "conversations.replies").expect("thread read");
    assert_eq!(replies.body["channel"], "C0LAN2Q65");
    assert_eq!(replies.body["ts"], "1515449000.000001");
    let asks = gateway.asks();
    let history = &asks[0].2.history;
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].role, history[0].text.as_str()), (Role::User, "what is our guest VLAN?"));
    assert_eq!((history[1].role, history[1].text.as_str()), (Role::Assistant, "VLAN 10 [1]."));
    let post = calls.iter().find(|c| c.name == "chat.postMessage").expect("placeholder");
    assert_eq!(post.body["thread_ts"], "1515449000.000001");
}

#[tokio::test]
async fn a_429_is_honoured_before_the_next_call() {
    install_crypto();
    let double = SlackDouble::start().await;
    double.state.rate_limit_once.lock().expect("lock").push_back("chat.update".into());
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, None), gateway).expect("state");
    state.accept_event(mention_event("Ev3", "1515449522.000016", None, None));
    let calls = double.wait_for("the final answer", final_update).await;

    let updates: Vec<&Call> = calls.iter().filter(|c| c.name == "chat.update").collect();
    assert!(updates.len() >= 2);
    let waited = updates[1].at.duration_since(updates[0].at);
    assert!(waited >= Duration::from_millis(990), "retried after {waited:?}");
    // The rate-limited edit was sent again unchanged.
    assert_eq!(updates[0].body, updates[1].body);
}

#[tokio::test]
async fn oversized_files_are_refused_without_download_or_ingest() {
    install_crypto();
    let double = SlackDouble::start().await;
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, None), gateway.clone()).expect("state");
    let files = json!([{"id": "F9", "name": "huge.pdf", "size": 5_000_000,
        "url_private_download": double.url("/files/F9/huge.pdf")}]);
    let mut event = mention_event("Ev4", "1515449600.000001", None, Some(files));
    event["event"]["text"] = json!("<@U0BOT>");
    state.accept_event(event);
    let calls = double.wait_for("the refusal", |calls| calls.iter().any(|c| c.name == "chat.postMessage")).await;
    let post = calls.iter().find(|c| c.name == "chat.postMessage").expect("reply");
    assert!(post.body["text"].as_str().is_some_and(|t| t.contains("huge.pdf") && t.contains("Nothing was added")));
    // A question asked after it is answered; by then a download would have been recorded.
    state.accept_event(mention_event("Ev4b", "1515449601.000001", None, None));
    double.wait_for("the later answer", |calls| calls.iter().filter(|c| c.name == "chat.update").count() >= 2).await;
    assert!(double.names().iter().all(|n| !n.starts_with("/files/")));
    assert_eq!(gateway.calls().len(), 1, "only the later question: {:?}", gateway.calls());
    assert!(gateway.asks().len() == 1);
}

#[tokio::test]
async fn foreign_download_hosts_never_see_the_token() {
    install_crypto();
    let double = SlackDouble::start().await;
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, None), gateway.clone()).expect("state");
    // A foreign host that resolves and answers, so that only the refusal can keep it unasked.
    let foreign = SlackDouble::start().await;
    let foreign_url = format!("http://localhost:{}/files/x.md", foreign.addr.port());
    let files = json!([{"id": "F8", "name": "x.md", "size": 3, "url_private_download": foreign_url}]);
    let mut event = mention_event("Ev5", "1515449700.000001", None, Some(files));
    event["event"]["text"] = json!("<@U0BOT>");
    state.accept_event(event);
    let calls = double.wait_for("the reply", |calls| calls.iter().any(|c| c.name == "chat.postMessage")).await;
    let post = calls.iter().find(|c| c.name == "chat.postMessage").expect("reply");
    assert!(post.body["text"].as_str().is_some_and(|t| t.contains("couldn't download")));
    assert!(gateway.calls().is_empty());
    assert!(foreign.calls().is_empty(), "the foreign host was asked: {:?}", foreign.calls());
    // It was reachable all along: a request to it is recorded.
    reqwest_free_get(&foreign_url).await;
    foreign.wait_for("the control request", |calls| !calls.is_empty()).await;
}

/// A plain HTTP/1.1 GET over a TCP socket, without any token.
async fn reqwest_free_get(url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("the foreign host answers");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
}

#[tokio::test]
async fn a_new_holder_tells_whoever_an_instance_left_unanswered_to_ask_again() {
    use footnote_adapter::Ledger;
    use footnote_adapter::ledger::memory::MemoryLedger;

    install_crypto();
    let double = SlackDouble::start().await;
    let ledger = Arc::new(MemoryLedger::new("instance-a"));
    let gateway = Arc::new(common::gateway().with_ledger(ledger.clone()));
    // Instance A answers a mention in full, then stops in the middle of another question.
    let a = SlackState::new(config(&double, None), gateway.clone()).expect("state");
    assert!(a.accept_event(mention_event("Ev1", "1515449522.000016", None, None)));
    double.wait_for("the final answer", final_update).await;
    let answered = "msg:C0LAN2Q65:1515449522.000016";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !ledger.events().get(answered).is_some_and(|e| e.done) {
        assert!(std::time::Instant::now() < deadline, "the answer was never recorded as done: {:?}", ledger.events());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ledger.claim("msg:C0LAN2Q65:1515449600.000001", "C0LAN2Q65\t1515449600.000001\tU2147483697").await.unwrap();

    // Instance B takes the bot over: one "ask again", in the thread of the unanswered question.
    ledger.take_over("instance-b");
    let before = double.calls().len();
    let b = SlackState::new(config(&double, None), gateway.clone()).expect("state");
    b.tell_unfinished().await;
    let told: Vec<Call> = double.calls().into_iter().skip(before).collect();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].name, "chat.postMessage");
    assert_eq!(told[0].body["channel"], "C0LAN2Q65");
    assert_eq!(told[0].body["thread_ts"], "1515449600.000001");
    let text = told[0].body["text"].as_str().unwrap();
    assert!(text.starts_with("<@U2147483697>") && text.contains("Please ask again"), "{text}");
    assert!(ledger.events().values().all(|e| e.done));
    b.tell_unfinished().await;
    assert_eq!(double.calls().len(), before + 1, "told once");
    assert_eq!(gateway.asks().len(), 1, "nothing was asked again on the user's behalf");
}
