//! Tests of the payload mapping against documented Discord payloads (tests/fixtures).

#![allow(clippy::unwrap_used)]

use serenity::all::{GuildChannel, Interaction};

use super::*;

const BOT: UserId = UserId::new(1_000_000_000_000_000_001);

fn command(json: &str) -> CommandInteraction {
    match serde_json::from_str::<Interaction>(json).unwrap() {
        Interaction::Command(cmd) => cmd,
        other => panic!("not a command: {other:?}"),
    }
}

fn message(json: &str) -> Message {
    serde_json::from_str(json).unwrap()
}

#[test]
fn ask_interaction_maps_to_scope_actor_and_question() {
    let cmd = command(include_str!("../tests/fixtures/interaction_ask.json"));
    let Command::Ask(text) = parse_command(&cmd) else { panic!("not /ask") };
    assert_eq!(text, "How do I reset the router?");
    assert_eq!(
        command_scope(&cmd),
        Scope {
            platform: "discord".into(),
            space: Some("290926798626357999".into()),
            room: "645027906669510667".into(),
            thread: None
        }
    );
    let actor = command_actor(&cmd, None);
    assert_eq!(actor.user_id, "53908232506183680");
    assert_eq!(actor.display_name.as_deref(), Some("Mason"));
    assert_eq!(actor.roles, vec!["539082325061836999".to_owned()]);
    assert!(!actor.is_owner, "permissions 2147483127 lack ADMINISTRATOR");
    assert!(command_actor(&cmd, Some(UserId::new(53_908_232_506_183_680))).is_owner, "the guild owner");
}

#[test]
fn ingest_interaction_in_a_thread_resolves_the_attachment() {
    let cmd = command(include_str!("../tests/fixtures/interaction_ingest.json"));
    let Command::Ingest(Some(attachment)) = parse_command(&cmd) else { panic!("not /ingest with a file") };
    assert_eq!(attachment.filename, "router-manual.pdf");
    assert_eq!(attachment.size, 482_133);
    let scope = command_scope(&cmd);
    assert_eq!(scope.room, "645027906669510667", "room is the thread's parent");
    assert_eq!(scope.thread.as_deref(), Some("1100000000000000001"));
    let actor = command_actor(&cmd, None);
    assert!(actor.is_owner, "permissions 8 = ADMINISTRATOR");
    assert_eq!(actor.display_name.as_deref(), Some("Nel"), "the guild nickname wins");
    assert_eq!(actor.roles.len(), 2);
    let origin = command_origin(&cmd);
    assert_eq!(origin.sender.as_deref(), Some("Nel"));
    assert!(origin.sent_at.unwrap().starts_with("2020-12-"), "from the interaction's snowflake");
    let upload = upload(&attachment, b"%PDF-1.7".to_vec(), Origin::default());
    assert_eq!(upload.mime.as_deref(), Some("application/pdf"));
    assert_eq!(upload.file_name, "router-manual.pdf");
    assert_eq!(ingest_allowed_in(cmd.channel.as_ref().map(|c| c.kind)), Ok(()), "a public thread");
}

#[test]
fn long_pastes_do_not_share_a_name() {
    let cmd = command(include_str!("../tests/fixtures/interaction_ingest.json"));
    let Command::Ingest(Some(mut attachment)) = parse_command(&cmd) else { panic!("not /ingest with a file") };
    attachment.filename = "message.txt".into();
    let first = upload(&attachment, b"a long paste".to_vec(), Origin::default());
    assert_eq!(first.file_name, "message-1187563421289119824.txt");
    attachment.id = serenity::all::AttachmentId::new(1_187_563_421_289_119_825);
    assert_ne!(upload(&attachment, b"another".to_vec(), Origin::default()).file_name, first.file_name);
}

#[test]
fn files_in_private_threads_are_refused() {
    assert_eq!(ingest_allowed_in(Some(ChannelType::PrivateThread)), Err(PRIVATE_THREAD_INGEST));
    for kind in [None, Some(ChannelType::Text), Some(ChannelType::PublicThread), Some(ChannelType::Private)] {
        assert_eq!(ingest_allowed_in(kind), Ok(()), "{kind:?}");
    }
    assert!(PRIVATE_THREAD_INGEST.contains("Nothing was added"));
}

#[test]
fn other_commands_parse() {
    let base: serde_json::Value = serde_json::from_str(include_str!("../tests/fixtures/interaction_ask.json")).unwrap();
    let with = |name: &str, options: serde_json::Value| {
        let mut v = base.clone();
        v["data"]["name"] = name.into();
        v["data"]["options"] = options;
        command(&v.to_string())
    };
    let forget = with("forget", serde_json::json!([{"type": 3, "name": "id", "value": " doc-42 "}]));
    assert!(matches!(parse_command(&forget), Command::Forget(id) if id == "doc-42"));
    for (name, expected) in [("warmup", "Warmup"), ("sources", "Sources"), ("status", "Status"), ("help", "Help")] {
        let parsed = parse_command(&with(name, serde_json::json!([])));
        assert_eq!(format!("{parsed:?}"), expected);
    }
    assert!(matches!(parse_command(&with("old", serde_json::json!([]))), Command::Unknown(n) if n == "old"));
}

#[test]
fn mention_with_attachments_ingests_them() {
    let msg = message(include_str!("../tests/fixtures/message_mention_attachments.json"));
    let Some(Inbound::Ingest(files)) = inbound(&msg, BOT) else { panic!("not an ingest") };
    assert_eq!(files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>(), ["router-manual.pdf", "notes.md"]);
    let actor = message_actor(&msg, false);
    assert_eq!(actor.user_id, "80351110224678912");
    assert_eq!(actor.display_name.as_deref(), Some("Nel"));
    assert_eq!(actor.roles, vec!["41771983423143936".to_owned()]);
    let origin = message_origin(&msg);
    assert_eq!(
        origin.link.as_deref(),
        Some("https://discord.com/channels/290926798626357999/645027906669510667/1235534017654321098")
    );
    assert_eq!(origin.sent_at.as_deref(), Some("2024-05-02T09:30:01.123Z"));
    let scope = scope(msg.guild_id, msg.channel_id, None);
    assert_eq!((scope.space.as_deref(), scope.room.as_str()), (Some("290926798626357999"), "645027906669510667"));
}

#[test]
fn message_in_a_thread_asks_with_the_thread_scope() {
    let msg = message(include_str!("../tests/fixtures/message_in_thread.json"));
    let thread: GuildChannel = serde_json::from_str(include_str!("../tests/fixtures/thread_channel.json")).unwrap();
    assert!(is_thread(thread.kind));
    let Some(Inbound::Ask(text)) = inbound(&msg, BOT) else { panic!("not a question") };
    assert_eq!(text, "and what about the 5 GHz band?");
    let scope = scope(msg.guild_id, msg.channel_id, thread.parent_id);
    assert_eq!(scope.room, "645027906669510667");
    assert_eq!(scope.thread.as_deref(), Some("1100000000000000001"));
}

#[test]
fn direct_messages_ask_without_a_mention() {
    let msg = message(include_str!("../tests/fixtures/message_dm.json"));
    assert!(matches!(inbound(&msg, BOT), Some(Inbound::Ask(t)) if t == "What is the Wi-Fi password policy?"));
    let scope = scope(msg.guild_id, msg.channel_id, None);
    assert_eq!(scope.space, None);
    assert_eq!(scope.room, "1200000000000000009");
    assert_eq!(
        message_link(None, msg.channel_id, msg.id),
        "https://discord.com/channels/@me/1200000000000000009/1235540000000000003"
    );
}

#[test]
fn guild_messages_without_a_mention_and_bot_messages_are_ignored() {
    let mut msg = message(include_str!("../tests/fixtures/message_in_thread.json"));
    msg.author.bot = true;
    assert!(inbound(&msg, BOT).is_none());
    msg.author.bot = false;
    msg.mentions.clear();
    assert!(inbound(&msg, BOT).is_none());
    msg.mentions.push(serde_json::from_value(serde_json::json!({"id": "1000000000000000001", "username": "footnote", "discriminator": "0", "avatar": null})).unwrap());
    msg.content = "<@!1000000000000000001>".into();
    assert!(matches!(inbound(&msg, BOT), Some(Inbound::Help)));
}

#[test]
fn history_is_oldest_first_with_roles_and_without_mentions() {
    let user = message(include_str!("../tests/fixtures/message_in_thread.json"));
    let mut bot_reply = user.clone();
    bot_reply.author.id = BOT;
    bot_reply.content = "Hold the reset button for 10 s [1].".into();
    let mut first = user.clone();
    first.content = "<@1000000000000000001> How do I reset the router?".into();
    let mut system = user.clone();
    system.kind = MessageType::ThreadStarterMessage;
    let turns = history(&[bot_reply, first, system], BOT);
    assert_eq!(
        turns,
        vec![
            Turn { role: Role::User, text: "How do I reset the router?".into() },
            Turn { role: Role::Assistant, text: "Hold the reset button for 10 s [1].".into() },
        ]
    );
}

#[test]
fn attachments_over_the_limit_or_media_are_refused_before_download() {
    let msg = message(include_str!("../tests/fixtures/message_mention_attachments.json"));
    let pdf = &msg.attachments[0];
    assert!(check_attachment(pdf, 1_000_000).is_ok());
    let refusal = check_attachment(pdf, 100_000).unwrap_err();
    assert_eq!(refusal, "“router-manual.pdf” is 482.1 kB, over this bot's limit of 100.0 kB. Nothing was added.");
    let mut image = pdf.clone();
    image.filename = "photo.png".into();
    image.content_type = Some("image/png".into());
    let refusal = check_attachment(&image, 1_000_000).unwrap_err();
    assert!(refusal.starts_with("I can't read “photo.png” (image/png)."), "{refusal}");
}

#[test]
fn admin_is_owner_or_administrator_role() {
    let owner = UserId::new(7);
    assert!(is_admin(owner, owner, []));
    assert!(is_admin(UserId::new(8), owner, [Permissions::SEND_MESSAGES, Permissions::ADMINISTRATOR]));
    assert!(!is_admin(UserId::new(8), owner, [Permissions::SEND_MESSAGES | Permissions::MANAGE_MESSAGES]));
}

#[test]
fn thread_names_fit_discord() {
    assert_eq!(thread_name("\n  Why?  \nmore"), "Why?");
    let long = thread_name(&"word ".repeat(60));
    assert_eq!(long.chars().count(), THREAD_NAME_LIMIT);
    assert!(long.ends_with('…'));
}

#[test]
fn commands_are_the_seven_documented_ones() {
    let json = serde_json::to_value(commands()).unwrap();
    let names: Vec<&str> = json.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ask", "ingest", "warmup", "sources", "forget", "status", "help"]);
    assert_eq!(json[0]["options"][0]["name"], "question");
    assert_eq!(json[0]["options"][0]["required"], true);
    assert_eq!(json[1]["options"][0]["type"], 11, "an attachment option");
    assert_eq!(json[4]["options"][0]["name"], "id");
}
