//! Tests of the pure mapping, fed with event JSON in the shapes of the client-server spec.

use matrix_sdk::ruma::{OwnedUserId, user_id};
use serde_json::Value;

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(name: &str, edit: impl FnOnce(&mut Value)) -> OriginalSyncRoomMessageEvent {
    let mut value = fixture(name);
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

fn bot() -> OwnedUserId {
    user_id!("@footnote:example.org").to_owned()
}

fn cx<'a>(bot: &'a UserId, direct: bool) -> Context<'a> {
    Context { bot, bot_name: Some("Footnote"), prefix: "!", direct }
}

#[test]
fn ask_with_the_prefix_in_a_room() {
    let bot = bot();
    let got = inbound(&event("text_ask.json", |_| {}), &cx(&bot, false));
    assert_eq!(got, Some(Inbound::Ask("How do I reset the router?".into())));
}

#[test]
fn the_prefix_is_configurable() {
    let bot = bot();
    let ev = event("text_ask.json", |v| v["content"]["body"] = "?ask Where is the PIN?".into());
    let mut context = cx(&bot, false);
    assert_eq!(inbound(&ev, &context), None, "not our prefix, no mention, not a DM");
    context.prefix = "?";
    assert_eq!(inbound(&ev, &context), Some(Inbound::Ask("Where is the PIN?".into())));
}

#[test]
fn a_mention_asks_without_the_pill_text() {
    let bot = bot();
    let got = inbound(&event("text_mention.json", |_| {}), &cx(&bot, false));
    assert_eq!(got, Some(Inbound::Ask("what does the manual say about the admin PIN?".into())));
    // m.mentions is authoritative: a body naming the bot without mentioning it is not a mention.
    let other = event("text_mention.json", |v| v["content"]["m.mentions"]["user_ids"] = serde_json::json!([]));
    assert_eq!(inbound(&other, &cx(&bot, false)), None);
    // Older clients without m.mentions: the user id in the body counts.
    let legacy = event("text_mention.json", |v| {
        v["content"].as_object_mut().unwrap().remove("m.mentions");
        v["content"]["body"] = "@footnote:example.org what is the PIN?".into();
    });
    assert_eq!(inbound(&legacy, &cx(&bot, false)), Some(Inbound::Ask("what is the PIN?".into())));
    let bare = event("text_mention.json", |v| v["content"]["body"] = "Footnote:".into());
    assert_eq!(inbound(&bare, &cx(&bot, false)), Some(Inbound::Help));
}

#[test]
fn any_message_in_a_dm_asks_and_plain_chat_in_a_room_is_ignored() {
    let bot = bot();
    let ev = event("text_ask.json", |v| v["content"]["body"] = "What is the admin PIN?".into());
    assert_eq!(inbound(&ev, &cx(&bot, true)), Some(Inbound::Ask("What is the admin PIN?".into())));
    assert_eq!(inbound(&ev, &cx(&bot, false)), None);
}

#[test]
fn its_own_messages_and_edits_are_ignored() {
    let bot = bot();
    let own = event("text_ask.json", |v| v["sender"] = "@footnote:example.org".into());
    assert_eq!(inbound(&own, &cx(&bot, true)), None);
    assert_eq!(inbound(&event("edit.json", |_| {}), &cx(&bot, true)), None, "an edit is not a new question");
}

#[test]
fn commands_are_parsed() {
    let bot = bot();
    let with = |body: &str| inbound(&event("text_ask.json", |v| v["content"]["body"] = body.into()), &cx(&bot, false));
    assert_eq!(with("!warmup"), Some(Inbound::Warmup));
    assert_eq!(with("!sources"), Some(Inbound::Sources));
    assert_eq!(with("!forget 01J9ZK3"), Some(Inbound::Forget("01J9ZK3".into())));
    assert_eq!(with("!STATUS"), Some(Inbound::Status));
    assert_eq!(with("!help"), Some(Inbound::Help));
    assert_eq!(with("!ask"), Some(Inbound::Help));
    assert_eq!(with("!ingest"), Some(Inbound::Ingest(IngestTarget::Missing)));
    assert_eq!(with("!kick bob"), None, "another bot's command in a shared room");
    let in_dm = inbound(&event("text_ask.json", |v| v["content"]["body"] = "!kick bob".into()), &cx(&bot, true));
    assert_eq!(in_dm, Some(Inbound::Unknown("kick".into())));
}

#[test]
fn ingest_as_a_reply_targets_the_file_event_and_drops_the_fallback() {
    let bot = bot();
    let got = inbound(&event("ingest_reply.json", |_| {}), &cx(&bot, false));
    let target: OwnedEventId = "$file1:example.org".try_into().unwrap();
    assert_eq!(got, Some(Inbound::Ingest(IngestTarget::RepliedTo(target))));
}

#[test]
fn a_file_sent_in_a_dm_is_ingested_and_ignored_in_a_room() {
    let bot = bot();
    let ev = event("file_pdf.json", |_| {});
    assert_eq!(inbound(&ev, &cx(&bot, false)), None);
    let Some(Inbound::Ingest(IngestTarget::File(file))) = inbound(&ev, &cx(&bot, true)) else { panic!("not ingested") };
    assert_eq!(file.name, "router-manual.pdf");
    assert_eq!(file.mime.as_deref(), Some("application/pdf"));
    assert_eq!(file.size, Some(46_144));
    assert!(matches!(file.source, MediaSource::Plain(_)));
}

#[test]
fn an_encrypted_file_keeps_its_key_for_decryption() {
    let ev = event("file_encrypted.json", |_| {});
    let file = file_ref(&ev.content.msgtype).unwrap();
    assert_eq!((file.name.as_str(), file.size), ("notes.md", Some(2048)));
    let MediaSource::Encrypted(encrypted) = &file.source else { panic!("not encrypted") };
    assert_eq!(encrypted.url.as_str(), "mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe");
}

#[test]
fn the_declared_size_is_checked_before_downloading() {
    let file = file_ref(&event("file_pdf.json", |_| {}).content.msgtype).unwrap();
    assert!(check_size(&file, 46_144).is_ok());
    let refusal = check_size(&file, 10_000).unwrap_err();
    assert_eq!(refusal, "“router-manual.pdf” is 46.1 kB, over this bot's limit of 10.0 kB. Nothing was added.");
}

#[test]
fn a_thread_message_names_its_root() {
    let ev = event("thread_followup.json", |_| {});
    assert_eq!(thread_root(&ev).unwrap().as_str(), "$143273582443PhrSn:example.org");
    assert_eq!(replied_to(&ev), None, "the thread fallback is not a reply");
    assert_eq!(thread_root(&event("text_ask.json", |_| {})), None);
}

#[test]
fn old_events_are_history() {
    let started = MilliSecondsSinceUnixEpoch(1_000_000u32.into());
    assert!(is_fresh(MilliSecondsSinceUnixEpoch(1_000_001u32.into()), started, 5_000));
    assert!(is_fresh(MilliSecondsSinceUnixEpoch(996_000u32.into()), started, 5_000));
    assert!(!is_fresh(MilliSecondsSinceUnixEpoch(990_000u32.into()), started, 5_000));
}

#[test]
fn power_levels_and_creators_become_roles_and_ownership() {
    let alice = user_id!("@alice:example.org");
    let creator_v12 = actor(alice, None, None, true);
    assert!(creator_v12.is_owner && creator_v12.roles == ["admin"]);
    let admin = actor(alice, Some("Alice".into()), Some(100), false);
    assert_eq!((admin.roles.clone(), admin.is_owner), (vec!["admin".to_owned(), "power:100".to_owned()], false));
    assert_eq!(actor(alice, None, Some(50), false).roles, ["moderator", "power:50"]);
    assert_eq!(actor(alice, None, Some(0), false).roles, ["power:0"]);
    // An older room: the creator is listed with 100 in power_levels and named in m.room.create.
    assert!(actor(alice, None, Some(100), true).is_owner);
    assert_eq!(actor(alice, None, Some(0), false).user_id, "@alice:example.org");
}

#[test]
fn the_scope_carries_room_space_and_thread() {
    let s = scope("!aRoomIdWithoutServer", Some("!space".into()), Some("$root".into()));
    assert_eq!((s.platform.as_str(), s.room.as_str()), ("matrix", "!aRoomIdWithoutServer"));
    assert_eq!((s.space.as_deref(), s.thread.as_deref()), (Some("!space"), Some("$root")));
}

#[test]
fn invites_are_allowed_by_user_or_server() {
    let allowed = vec!["@boss:other.org".to_owned(), "example.org".to_owned()];
    assert!(invite_allowed(user_id!("@alice:example.org"), &allowed));
    assert!(invite_allowed(user_id!("@boss:other.org"), &allowed));
    assert!(!invite_allowed(user_id!("@eve:other.org"), &allowed));
    assert!(!invite_allowed(user_id!("@eve:evil.example.org"), &allowed), "no suffix matching");
    assert!(!invite_allowed(user_id!("@alice:example.org"), &[]));
}

#[test]
fn origins_link_to_the_event_with_its_time() {
    let o =
        origin("!r:x", "$e:x", user_id!("@a:x"), MilliSecondsSinceUnixEpoch(1_432_735_824_653u64.try_into().unwrap()));
    assert_eq!(o.link.as_deref(), Some("https://matrix.to/#/!r:x/$e:x"));
    assert_eq!(o.sent_at.as_deref(), Some("2015-05-27T14:10:24Z"));
    assert_eq!(o.sender.as_deref(), Some("@a:x"));
}

#[test]
fn a_text_snippet_becomes_a_text_file() {
    let u = snippet_upload("The admin PIN is 4711, printed on the sticker.", "$e:x", Origin::default());
    assert_eq!(u.file_name, "The admin PIN is 4711 printed (ex).txt");
    assert_eq!(u.mime.as_deref(), Some("text/plain"));
    // Two snippets that start alike do not share a name (which would replace the first).
    let a = snippet_upload("The admin PIN is 4711 printed on the sticker.", "$Yh2kQ9x_zz", Origin::default());
    let b = snippet_upload("The admin PIN is 4711 printed? No, it changed.", "$Pq7Lm0a-bb", Origin::default());
    assert_ne!(a.file_name, b.file_name);
    assert_eq!(snippet_upload("!!!", "$abc", Origin::default()).file_name, "snippet (abc).txt");
}

#[test]
fn a_download_stopped_at_the_limit_says_so() {
    let text = over_limit("big.txt", 4_000);
    assert_eq!(text, "“big.txt” is over this bot's limit of 4.0 kB, so I stopped downloading it. Nothing was added.");
}

#[test]
fn thread_history_uses_the_latest_own_edit_and_skips_noise() {
    let Value::Array(events) = fixture("thread_events.json") else { panic!() };
    let bot = bot();
    let text_of = |body: &str| match parse_command(body, "!") {
        Some((word, args)) if word == "ask" => Some(args),
        Some(_) => None,
        None => Some(body.to_owned()),
    };
    let turns = thread_history(&events, &bot, "$followup1:example.org", 20, text_of);
    assert_eq!(
        turns,
        vec![
            Turn { role: Role::User, text: "How do I reset the router?".into() },
            Turn { role: Role::Assistant, text: "Hold the reset button for 10 s [1].".into() },
        ],
        "the forged edit by another user, the command, the reaction and the question itself are left out"
    );
    let last = thread_history(&events, &bot, "$followup1:example.org", 1, |b| Some(b.to_owned()));
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].text, "!sources", "the most recent turns are kept");
}

#[test]
fn reply_fallbacks_are_stripped() {
    assert_eq!(strip_reply_fallback("> <@a:x> hi\n> there\n\n!ingest"), "!ingest");
    assert_eq!(strip_reply_fallback("plain"), "plain");
    assert_eq!(strip_reply_fallback("> only a quote"), "");
}
