//! Whole flows through the handler: serenity's REST client talks to a recording double, the
//! gateway is a fake, and the tests assert the exact REST calls Discord would receive, in order.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Double, POSTED, PRIVATE_THREAD, RecordingGateway, THREAD, handler, load, script};
use footnote_adapter::Role;
use serde_json::Value;
use serenity::all::{CommandInteraction, Interaction, Message};

const INTERACTION: &str = "/api/v10/interactions/786008729715212338/A_UNIQUE_TOKEN/callback";
const ORIGINAL: &str = "/api/v10/webhooks/1000000000000000001/A_UNIQUE_TOKEN/messages/@original";
const FOLLOWUP: &str = "/api/v10/webhooks/1000000000000000001/A_UNIQUE_TOKEN";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn command(name: &str, edit: impl FnOnce(&mut Value)) -> CommandInteraction {
    match load::<Interaction>(name, edit) {
        Interaction::Command(cmd) => cmd,
        other => panic!("not a command: {other:?}"),
    }
}

fn contents(double: &Double) -> Vec<String> {
    double
        .calls()
        .iter()
        .map(|c| c.body.as_ref().and_then(|b| b["content"].as_str()).unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn slash_ask_defers_streams_edits_and_finishes_with_sources_and_followups() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let long = format!("{} [1]\n\n{}", "Hold the reset button. ".repeat(86), "Or use the admin PIN [2].");
    let gateway = Arc::new(RecordingGateway::new(script(&long)));
    let cmd = command("interaction_ask.json", |_| {});
    handler(gateway.clone(), Duration::ZERO).handle_command(&http, &cmd).await;

    assert_eq!(
        double.lines(),
        [
            format!("POST {INTERACTION}"),
            format!("PATCH {ORIGINAL}"),
            format!("PATCH {ORIGINAL}"),
            format!("PATCH {ORIGINAL}"),
            format!("PATCH {ORIGINAL}"),
            format!("PATCH {ORIGINAL}"),
            format!("PATCH {ORIGINAL}"),
            format!("POST {FOLLOWUP}"),
        ]
    );
    let calls = double.calls();
    assert_eq!(calls[0].body.as_ref().unwrap()["type"], 5, "a deferred channel message");
    let texts = contents(&double);
    assert_eq!(texts[1], "Waiting for the model: position 2");
    assert_eq!(texts[2], "Loading the model…");
    assert_eq!(texts[3], "Hold …");
    assert_eq!(texts[4], "Hold the button [1] …");
    assert_eq!(texts[5], "Hold the button [1] or [3] …");
    // The checked answer replaces the streamed text, split at 2,000 characters.
    assert!(texts[6].starts_with("Hold the reset button.") && texts[6].ends_with("[1]"), "{}", texts[6]);
    assert!(texts[6].chars().count() <= 2000);
    assert_eq!(texts[7], "Or use the admin PIN [2].");
    assert_eq!(calls[6].body.as_ref().unwrap()["embeds"], Value::Array(Vec::new()), "no sources on the first part");
    let embed = &calls[7].body.as_ref().unwrap()["embeds"][0];
    assert_eq!(embed["title"], "Sources");
    assert_eq!(embed["fields"][0]["name"], "[1] Router manual");
    assert_eq!(embed["fields"][0]["value"], "p. 12 · Reset\n> Press and hold the reset button for 10 seconds.");
    assert_eq!(embed["fields"][1]["name"], "[2] notes.md");
    assert!(embed["fields"][1]["value"].as_str().unwrap().ends_with(
        "[Original message](https://discord.com/channels/290926798626357999/645027906669510667/1235534017654321098)"
    ));
    assert_eq!(calls[7].body.as_ref().unwrap()["allowed_mentions"]["parse"], Value::Array(Vec::new()), "no pings");

    let asks = gateway.asks();
    assert_eq!(asks.len(), 1);
    let (scope, actor, question) = &asks[0];
    assert_eq!((scope.room.as_str(), scope.thread.as_deref()), ("645027906669510667", None));
    assert_eq!(actor.user_id, "53908232506183680");
    assert_eq!(question.text, "How do I reset the router?");
    assert!(question.history.is_empty());
}

#[tokio::test]
async fn edits_are_throttled_to_the_interval() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(script("Hold the button [1]. Or use the PIN [2].")));
    let cmd = command("interaction_ask.json", |_| {});
    handler(gateway, Duration::from_secs(3600)).handle_command(&http, &cmd).await;
    assert_eq!(
        double.lines(),
        [format!("POST {INTERACTION}"), format!("PATCH {ORIGINAL}"), format!("PATCH {ORIGINAL}")]
    );
    let texts = contents(&double);
    assert_eq!(texts[1], "Waiting for the model: position 2", "the first progress shows at once");
    assert_eq!(texts[2], "Hold the button [1]. Or use the PIN [2].");
    assert_eq!(double.calls()[2].body.as_ref().unwrap()["embeds"][0]["fields"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_rate_limited_progress_edit_is_skipped_and_the_answer_still_arrives() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(script("Hold the button [1]. Or use the PIN [2].")));
    let cmd = command("interaction_ask.json", |_| {});
    // The deferral goes through; the first edit (the queue position) meets Discord's rate limit.
    double.rate_limit_next_edits(1);
    handler(gateway, Duration::from_secs(3600)).handle_command(&http, &cmd).await;
    assert_eq!(
        double.lines(),
        [format!("POST {INTERACTION}"), format!("PATCH {ORIGINAL}"), format!("PATCH {ORIGINAL}")]
    );
    let texts = contents(&double);
    assert_eq!(texts[1], "Waiting for the model: position 2", "the refused edit");
    assert_eq!(texts[2], "Hold the button [1]. Or use the PIN [2].", "the answer after it");
    assert_eq!(double.calls()[2].body.as_ref().unwrap()["embeds"][0]["fields"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_answer_shows_the_safe_user_message() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway =
        Arc::new(RecordingGateway::new(vec![footnote_adapter::AskEvent::Failed(footnote_adapter::AskError::Denied)]));
    let cmd = command("interaction_ask.json", |_| {});
    handler(gateway, Duration::ZERO).handle_command(&http, &cmd).await;
    assert_eq!(contents(&double)[1], "You are not allowed to ask questions here.");
}

#[tokio::test]
async fn a_mention_opens_a_thread_on_the_message_and_answers_there() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(script("Hold the button [1]. Or use the PIN [2].")));
    let msg: Message = load("message_mention_attachments.json", |v| {
        v["attachments"] = Value::Array(Vec::new());
        v["content"] = "<@1000000000000000001> How do I reset the router?".into();
    });
    handler(gateway.clone(), Duration::ZERO).handle_message(&http, &msg).await;

    let in_thread = format!("/api/v10/channels/{THREAD}/messages");
    assert_eq!(
        double.lines(),
        [
            "GET /api/v10/channels/645027906669510667".to_owned(),
            "POST /api/v10/channels/645027906669510667/messages/1235534017654321098/threads".to_owned(),
            format!("POST {in_thread}"),
            format!("PATCH {in_thread}/{POSTED}"),
            format!("PATCH {in_thread}/{POSTED}"),
            format!("PATCH {in_thread}/{POSTED}"),
            format!("PATCH {in_thread}/{POSTED}"),
            format!("PATCH {in_thread}/{POSTED}"),
        ]
    );
    let calls = double.calls();
    assert_eq!(calls[1].body.as_ref().unwrap()["name"], "How do I reset the router?");
    let texts = contents(&double);
    assert_eq!(texts[2], "Waiting for the model: position 2");
    assert_eq!(texts[7], "Hold the button [1]. Or use the PIN [2].");
    assert_eq!(calls[7].body.as_ref().unwrap()["embeds"][0]["fields"].as_array().unwrap().len(), 2);
    let (scope, actor, question) = &gateway.asks()[0];
    assert_eq!(scope.space.as_deref(), Some("290926798626357999"));
    assert_eq!(actor.display_name.as_deref(), Some("Nel"));
    assert_eq!(question.text, "How do I reset the router?");
}

#[tokio::test]
async fn a_mention_inside_a_thread_answers_there_with_the_threads_history() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(script("The 5 GHz band resets too [1].")));
    let msg: Message = load("message_in_thread.json", |_| {});
    handler(gateway.clone(), Duration::from_secs(3600)).handle_message(&http, &msg).await;

    let in_thread = format!("/api/v10/channels/{THREAD}/messages");
    assert_eq!(
        double.lines(),
        [
            format!("GET /api/v10/channels/{THREAD}"),
            format!("GET {in_thread}?&limit=20&before=1235535000000000002"),
            format!("POST {in_thread}"),
            format!("PATCH {in_thread}/{POSTED}"),
        ]
    );
    let first = double.calls()[2].body.clone().unwrap();
    assert_eq!(first["message_reference"]["message_id"], "1235535000000000002", "a reply to the question");
    let (scope, _, question) = &gateway.asks()[0];
    assert_eq!((scope.room.as_str(), scope.thread.as_deref()), ("645027906669510667", Some(THREAD)));
    assert_eq!(question.text, "and what about the 5 GHz band?");
    let turns: Vec<(Role, &str)> = question.history.iter().map(|t| (t.role, t.text.as_str())).collect();
    assert_eq!(
        turns,
        [(Role::User, "How do I reset the router?"), (Role::Assistant, "Hold the reset button for 10 s [1].")]
    );
}

#[tokio::test]
async fn an_oversized_ingest_attachment_is_refused_without_download_or_ingest() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(Vec::new()));
    let url = double.file_url("router-manual.pdf");
    let cmd = command("interaction_ingest.json", |v| {
        let attachment = &mut v["data"]["resolved"]["attachments"]["1187563421289119824"];
        attachment["size"] = 5_000_000.into();
        attachment["url"] = url.into();
    });
    handler(gateway.clone(), Duration::ZERO).handle_command(&http, &cmd).await;
    let original = "/api/v10/webhooks/1000000000000000001/ANOTHER_TOKEN/messages/@original";
    assert_eq!(
        double.lines(),
        [
            "POST /api/v10/interactions/786008729715212339/ANOTHER_TOKEN/callback".to_owned(),
            format!("PATCH {original}")
        ]
    );
    assert_eq!(
        contents(&double)[1],
        "“router-manual.pdf” is 5.0 MB, over this bot's limit of 100.0 kB. Nothing was added."
    );
    assert!(gateway.uploads().is_empty(), "nothing was ingested");
}

#[tokio::test]
async fn a_mention_with_attachments_ingests_each_and_replies_with_receipts() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(Vec::new()));
    let (big, small, exe) =
        (double.file_url("router-manual.pdf"), double.file_url("notes.md"), double.file_url("setup.exe"));
    let msg: Message = load("message_mention_attachments.json", |v| {
        v["attachments"][0]["url"] = big.into();
        v["attachments"][0]["size"] = 482_133.into();
        v["attachments"][1]["url"] = small.into();
        let mut third = v["attachments"][1].clone();
        third["filename"] = "setup.exe".into();
        third["url"] = exe.into();
        third["content_type"] = "application/x-msdownload".into();
        v["attachments"].as_array_mut().unwrap().push(third);
    });
    handler(gateway.clone(), Duration::ZERO).handle_message(&http, &msg).await;
    assert_eq!(
        double.lines(),
        [
            "GET /api/v10/channels/645027906669510667".to_owned(),
            "GET /files/notes.md".to_owned(),
            "GET /files/setup.exe".to_owned(),
            "POST /api/v10/channels/645027906669510667/messages".to_owned(),
        ],
        "the oversized PDF is never downloaded"
    );
    let reply = contents(&double)[3].clone();
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines[0], "“router-manual.pdf” is 482.1 kB, over this bot's limit of 100.0 kB. Nothing was added.");
    assert_eq!(lines[1], "Added “notes.md” (1 chunk) as document doc-1.");
    assert!(
        lines[2].starts_with("“setup.exe”: I can't read a program or binary file (EXE)."),
        "the core's refusal is relayed: {}",
        lines[2]
    );
    let uploads: Vec<_> = gateway.uploads().into_iter().map(|(_, _, upload)| upload).collect();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0].bytes, b"contents of notes.md");
    assert_eq!(uploads[0].mime.as_deref(), Some("text/markdown; charset=utf-8"));
    assert_eq!(
        uploads[0].origin.link.as_deref(),
        Some("https://discord.com/channels/290926798626357999/645027906669510667/1235534017654321098")
    );
    assert_eq!(double.calls()[3].body.as_ref().unwrap()["message_reference"]["message_id"], "1235534017654321098");
}

#[tokio::test]
async fn other_commands_relay_reports_and_errors() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = RecordingGateway::new(Vec::new()).refusing_forget(footnote_adapter::GatewayError::Denied);
    let handler = handler(Arc::new(gateway), Duration::ZERO);
    for (name, options) in [
        ("status", serde_json::json!([])),
        ("forget", serde_json::json!([{"type": 3, "name": "id", "value": "doc-1"}])),
    ] {
        let cmd = command("interaction_ask.json", |v| {
            v["data"]["name"] = name.into();
            v["data"]["options"] = options;
        });
        handler.handle_command(&http, &cmd).await;
    }
    let texts = contents(&double);
    assert_eq!(texts.len(), 4);
    assert!(texts[1].starts_with("Ollama: reachable\nChat model `qwen2.5:3b-instruct`: loaded"), "{}", texts[1]);
    assert_eq!(texts[3], "You are not allowed to do that here.");
}

#[tokio::test]
async fn a_new_holder_tells_whoever_an_instance_left_unanswered_to_ask_again() {
    use footnote_adapter::Ledger;
    use footnote_adapter::ledger::memory::MemoryLedger;
    use std::sync::Arc;

    provider();
    let double = Double::start().await;
    let http = double.http();
    let ledger = Arc::new(MemoryLedger::new("instance-a"));
    let gateway = Arc::new(RecordingGateway::new(script("Hold the button [1].")).with_ledger(ledger.clone()));
    // Instance A answers a mention in full, then stops in the middle of another question.
    let msg: Message = load("message_mention_attachments.json", |v| {
        v["attachments"] = Value::Array(Vec::new());
        v["content"] = "<@1000000000000000001> How do I reset the router?".into();
    });
    handler(gateway.clone(), Duration::ZERO).handle_message(&http, &msg).await;
    let answered = "message:1235534017654321098";
    assert!(ledger.events()[answered].done, "the answered mention is recorded as done");
    let note = "645027906669510667/1235534900000000009/53908232506183680";
    ledger.claim("message:1235534900000000009", note).await.unwrap();

    // Instance B takes the bot over: one "ask again", as a reply to the unanswered question.
    ledger.take_over("instance-b");
    let before = double.calls().len();
    let b = handler(gateway.clone(), Duration::ZERO);
    b.tell_unfinished(&http).await;
    let told: Vec<_> = double.calls().into_iter().skip(before).collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].line(), "POST /api/v10/channels/645027906669510667/messages");
    let body = told[0].body.as_ref().unwrap();
    assert!(body["content"].as_str().unwrap().contains("Please ask again"), "{body}");
    assert_eq!(body["message_reference"]["message_id"], "1235534900000000009");
    assert!(ledger.events().values().all(|e| e.done));
    // Told once: a later start finds nothing left.
    b.tell_unfinished(&http).await;
    assert_eq!(double.calls().len(), before + 1);
    assert_eq!(gateway.asks().len(), 1, "nothing was asked again on the user's behalf");
}

#[tokio::test]
async fn files_posted_in_a_private_thread_are_refused_with_a_reason() {
    provider();
    let double = Double::start().await;
    let http = double.http();
    let gateway = Arc::new(RecordingGateway::new(Vec::new()));
    let notes = double.file_url("notes.md");
    let msg: Message = load("message_mention_attachments.json", |v| {
        v["channel_id"] = PRIVATE_THREAD.into();
        v["attachments"] = serde_json::json!([v["attachments"][1].clone()]);
        v["attachments"][0]["url"] = notes.into();
    });
    let handler = handler(gateway.clone(), Duration::ZERO);
    handler.handle_message(&http, &msg).await;
    assert_eq!(
        double.lines(),
        [
            format!("GET /api/v10/channels/{PRIVATE_THREAD}"),
            format!("POST /api/v10/channels/{PRIVATE_THREAD}/messages")
        ],
        "nothing is downloaded"
    );
    assert_eq!(contents(&double)[1], footnote_discord::convert::PRIVATE_THREAD_INGEST);
    assert!(gateway.uploads().is_empty(), "nothing was ingested");

    // `/ingest` in a private thread too.
    let cmd = command("interaction_ingest.json", |v| {
        v["channel_id"] = PRIVATE_THREAD.into();
        v["channel"]["id"] = PRIVATE_THREAD.into();
        v["channel"]["type"] = 12.into();
    });
    handler.handle_command(&http, &cmd).await;
    assert_eq!(contents(&double).last().unwrap(), footnote_discord::convert::PRIVATE_THREAD_INGEST);
    assert!(gateway.uploads().is_empty());

    // A public thread still takes files.
    let msg: Message = load("message_mention_attachments.json", |v| {
        v["channel_id"] = THREAD.into();
        v["attachments"] = serde_json::json!([v["attachments"][1].clone()]);
        v["attachments"][0]["url"] = double.file_url("notes.md").into();
    });
    handler.handle_message(&http, &msg).await;
    assert_eq!(gateway.uploads().len(), 1);
}
