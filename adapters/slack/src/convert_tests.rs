//! Unit tests of [`super`] against payloads shaped as Slack documents them.

use serde_json::json;

use super::*;

const BOT: &str = "U0BOT";

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The example body of Slack's slash-command docs, decoded from `application/x-www-form-urlencoded`.
fn slash(command: &str, text: &str) -> HashMap<String, String> {
    form(&[
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("enterprise_id", "E0001"),
        ("enterprise_name", "Globular Construct Inc"),
        ("channel_id", "C2147483705"),
        ("channel_name", "test"),
        ("user_id", "U2147483697"),
        ("user_name", "Steve"),
        ("command", command),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/1234/5678"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
        ("api_app_id", "A123456"),
    ])
}

fn mention(extra: Value) -> Value {
    let mut event = json!({
        "type": "app_mention",
        "user": "W021FGA1UJ2",
        "text": "<@U0BOT> what does the &lt;router&gt; manual say about VLANs?",
        "ts": "1515449522.000016",
        "client_msg_id": "c2d4b1c0-0000-4000-8000-000000000001",
        "channel": "C0LAN2Q65",
        "event_ts": "1515449522000016"
    });
    if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    json!({
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "team_id": "T123ABC456",
        "api_app_id": "A123ABC456",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev123ABC456",
        "event_time": 1515449522,
        "authorizations": [{"team_id": "T123ABC456", "user_id": BOT, "is_bot": true}]
    })
}

fn expect_message(inbound: Inbound) -> ChatMessage {
    match inbound {
        Inbound::Message(m) => *m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn slash_ask_maps_scope_actor_and_question() {
    let cmd = parse_command(&slash("/ask", "how do I reset the router?")).expect("maps");
    assert_eq!(cmd.action, CommandAction::Ask("how do I reset the router?".into()));
    assert_eq!(
        cmd.scope,
        Scope { platform: "slack".into(), space: Some("T0001".into()), room: "C2147483705".into(), thread: None }
    );
    assert_eq!(cmd.actor.user_id, "U2147483697");
    assert_eq!(cmd.actor.display_name.as_deref(), Some("Steve"));
    assert_eq!(cmd.response_url.as_deref(), Some("https://hooks.slack.com/commands/1234/5678"));
}

#[test]
fn slash_subcommands() {
    let action = |c: &str, t: &str| parse_command(&slash(c, t)).expect("maps").action;
    assert_eq!(action("/warmup", ""), CommandAction::Warmup);
    assert_eq!(action("/ask", "  "), CommandAction::Help);
    assert_eq!(action("/footnote", ""), CommandAction::Help);
    assert_eq!(action("/footnote", "help"), CommandAction::Help);
    assert_eq!(action("/footnote", "sources"), CommandAction::Sources);
    assert_eq!(action("/footnote", "status"), CommandAction::Status);
    assert_eq!(action("/footnote", "forget doc_42"), CommandAction::Forget("doc_42".into()));
    assert_eq!(action("/footnote", "forget"), CommandAction::Help);
    assert_eq!(action("/footnote", "ask why?"), CommandAction::Ask("why?".into()));
    assert_eq!(action("/footnote", "dance"), CommandAction::Unknown("dance".into()));
}

#[test]
fn slash_without_channel_is_an_error_not_a_panic() {
    let mut fields = slash("/ask", "x");
    fields.remove("channel_id");
    assert_eq!(parse_command(&fields), Err(ConvertError::Missing("channel_id")));
}

#[test]
fn app_mention_starts_a_thread_on_its_own_message() {
    let m = expect_message(parse_event_callback(&mention(json!({})), Some(BOT)));
    assert_eq!(m.event_id.as_deref(), Some("Ev123ABC456"));
    assert_eq!(m.text, "what does the <router> manual say about VLANs?");
    assert_eq!(m.reply_thread_ts, "1515449522.000016");
    assert!(!m.in_thread);
    assert_eq!(
        m.scope,
        Scope {
            platform: "slack".into(),
            space: Some("T123ABC456".into()),
            room: "C0LAN2Q65".into(),
            thread: Some("1515449522.000016".into()),
        }
    );
    assert_eq!(m.actor.user_id, "W021FGA1UJ2");
    assert!(m.files.is_empty());
}

#[test]
fn app_mention_inside_a_thread_answers_in_that_thread() {
    let m = expect_message(parse_event_callback(&mention(json!({"thread_ts": "1515449000.000001"})), Some(BOT)));
    assert!(m.in_thread);
    assert_eq!(m.reply_thread_ts, "1515449000.000001");
    assert_eq!(m.scope.thread.as_deref(), Some("1515449000.000001"));
}

#[test]
fn mention_with_files_carries_download_urls_and_sizes() {
    let files = json!({"files": [{
        "id": "F0S43PZDF", "name": "manual.pdf", "title": "Router manual", "mimetype": "application/pdf",
        "filetype": "pdf", "size": 1234,
        "url_private": "https://files.slack.com/files-pri/T1-F0S43PZDF/manual.pdf",
        "url_private_download": "https://files.slack.com/files-pri/T1-F0S43PZDF/download/manual.pdf"
    }, {"id": "F_GONE", "mode": "tombstone"}]});
    let m = expect_message(parse_event_callback(&mention(files), Some(BOT)));
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.files[0].name, "manual.pdf");
    assert_eq!(m.files[0].url.as_deref(), Some("https://files.slack.com/files-pri/T1-F0S43PZDF/download/manual.pdf"));
    assert!(m.files[0].too_large(1000) && !m.files[0].too_large(1234));
    assert_eq!(m.files[1].url, None);
}

#[test]
fn direct_messages_are_answered_but_bot_and_edited_messages_are_not() {
    let dm = |event: Value| json!({"team_id": "T1", "event_id": "Ev1", "type": "event_callback", "event": event});
    let plain = dm(json!({"type": "message", "channel": "D024BE91L", "user": "U2147483697",
        "text": "Hello hello can you hear me?", "ts": "1355517523.000005", "event_ts": "1355517523.000005",
        "channel_type": "im"}));
    let m = expect_message(parse_event_callback(&plain, Some(BOT)));
    assert_eq!(m.text, "Hello hello can you hear me?");
    assert_eq!(m.scope.room, "D024BE91L");
    assert_eq!(m.scope.space.as_deref(), Some("T1"));

    let share = dm(json!({"type": "message", "subtype": "file_share", "channel": "D024BE91L", "user": "U1",
        "text": "", "ts": "1.2", "channel_type": "im",
        "files": [{"id": "F1", "name": "a.txt", "mimetype": "text/plain", "size": 3,
                   "url_private_download": "https://files.slack.com/a.txt"}]}));
    assert_eq!(expect_message(parse_event_callback(&share, Some(BOT))).files.len(), 1);

    let from_bot =
        dm(json!({"type": "message", "channel": "D1", "user": BOT, "text": "hi", "ts": "1.3", "channel_type": "im"}));
    assert!(matches!(parse_event_callback(&from_bot, Some(BOT)), Inbound::Ignored(_)));
    let other_bot = dm(json!({"type": "message", "channel": "D1", "user": "U9", "bot_id": "B9", "text": "hi",
        "ts": "1.3", "channel_type": "im"}));
    assert!(matches!(parse_event_callback(&other_bot, Some(BOT)), Inbound::Ignored(_)));
    let edited = dm(json!({"type": "message", "subtype": "message_changed", "channel": "D1", "ts": "1.4",
        "channel_type": "im", "message": {"text": "x"}}));
    assert!(matches!(parse_event_callback(&edited, Some(BOT)), Inbound::Ignored(_)));
    let channel = dm(json!({"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.5",
        "channel_type": "channel"}));
    assert!(matches!(parse_event_callback(&channel, Some(BOT)), Inbound::Ignored(_)));
}

#[test]
fn file_shared_is_recognised() {
    let body = json!({"team_id": "T1", "event_id": "Ev2", "type": "event_callback", "event": {
        "type": "file_shared", "channel_id": "C024BE7LR", "file_id": "F2147483862",
        "user_id": "U2147483697", "file": {"id": "F2147483862"}, "event_ts": "1433315416.000"}});
    assert_eq!(
        parse_event_callback(&body, Some(BOT)),
        Inbound::FileShared { channel: "C024BE7LR".into(), file_id: "F2147483862".into(), user: "U2147483697".into() }
    );
}

#[test]
fn malformed_events_are_ignored() {
    assert!(matches!(parse_event_callback(&json!({"type": "event_callback"}), None), Inbound::Ignored(_)));
    let no_user = json!({"event": {"type": "app_mention", "channel": "C1", "ts": "1.1", "text": "x"}});
    assert!(matches!(parse_event_callback(&no_user, None), Inbound::Ignored(_)));
}

#[test]
fn clean_text_removes_only_the_bot() {
    assert_eq!(clean_text("<@U0BOT> ask <@U7|ann> &amp; me", Some(BOT)), "ask <@U7|ann> & me");
    assert_eq!(clean_text("<@UX> hello", None), "hello");
    assert_eq!(clean_text("hi <@UX>", None), "hi <@UX>");
    assert_eq!(clean_text("broken <@U1", Some(BOT)), "broken <@U1");
}

#[test]
fn thread_history_is_oldest_first_with_bot_turns_as_assistant() {
    let replies = vec![
        json!({"type": "message", "user": "U1", "text": "<@U0BOT> what is RRF?", "ts": "100.000001", "thread_ts": "100.000001"}),
        json!({"type": "message", "user": BOT, "bot_id": "B0BOT", "text": "Reciprocal rank fusion [1].", "ts": "101.5", "thread_ts": "100.000001"}),
        json!({"type": "message", "user": "U2", "text": "", "ts": "101.6"}),
        json!({"type": "message", "user": "U1", "text": "<@U0BOT> and k?", "ts": "102.000001", "thread_ts": "100.000001"}),
        json!({"type": "message", "user": "U3", "text": "later", "ts": "103.0"}),
    ];
    let turns = history_turns(&replies, Some(BOT), Some("B0BOT"), "102.000001");
    assert_eq!(
        turns,
        vec![
            Turn { role: Role::User, text: "what is RRF?".into() },
            Turn { role: Role::Assistant, text: "Reciprocal rank fusion [1].".into() },
        ]
    );
}

#[test]
fn uploads_link_back_to_the_message() {
    let m = expect_message(parse_event_callback(&mention(json!({})), Some(BOT)));
    let file =
        FileRef { id: "F1".into(), name: "a.md".into(), mime: Some("text/markdown".into()), size: Some(2), url: None };
    let up = upload(
        &file,
        b"# a".to_vec(),
        &m,
        Some("https://example.slack.com/archives/C0LAN2Q65/p1515449522000016".into()),
    );
    assert_eq!(up.file_name, "a.md");
    assert_eq!(up.origin.sender.as_deref(), Some("W021FGA1UJ2"));
    assert_eq!(up.origin.sent_at.as_deref(), Some("2018-01-08T22:12:02Z"));
    assert!(up.origin.link.is_some_and(|l| l.contains("/archives/")));
}

#[test]
fn ts_conversion() {
    assert_eq!(ts_to_rfc3339("0.000000").as_deref(), Some("1970-01-01T00:00:00Z"));
    assert_eq!(ts_to_rfc3339("951782400.1").as_deref(), Some("2000-02-29T00:00:00Z"));
    assert_eq!(ts_to_rfc3339("nonsense"), None);
}

#[test]
fn socket_mode_command_payload_becomes_form_fields() {
    let fields =
        form_from_json(&json!({"command": "/warmup", "channel_id": "C1", "user_id": "U1", "team_id": "T1", "x": 3}));
    assert_eq!(parse_command(&fields).expect("maps").action, CommandAction::Warmup);
    assert!(!fields.contains_key("x"));
}
