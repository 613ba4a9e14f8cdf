//! The Matrix adapter end to end: a real Synapse (`scripts/peers/matrix.sh start`), the bot on a
//! real core (SQLite, the Ollama double), and test users driven by matrix-sdk with their own
//! crypto stores. Without the homeserver these tests FAIL, naming the command that starts it.
#![cfg(feature = "matrix")]
#![recursion_limit = "256"]

mod common;
mod matrix_peer;

use std::sync::Arc;
use std::time::Duration;

use footnote_adapter::Gateway;
use matrix_peer::{Bot, Peer, Seen, User, markers, pdf, peer};
use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, FileMessageEventContent, ForwardThread, MessageType, Relation, ReplyMetadata, ReplyWithinThread,
    RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId};
use matrix_sdk::{Room, RoomState};

const MANUAL: &[&str] = &[
    "Router manual",
    "To reset the router, hold the reset button for ten seconds until the lights blink.",
    "The admin PIN is printed on the sticker under the router.",
];

/// A room created by `user` (encrypted when asked) with the bot invited; returns once it joined.
async fn room_with_bot(user: &User, bot: &OwnedUserId, encrypted: bool) -> Room {
    let room = user.client.create_room(CreateRoom::new()).await.unwrap();
    if encrypted {
        room.enable_encryption().await.unwrap();
    }
    room.invite_user_by_id(bot).await.unwrap();
    user.wait_for_membership(room.room_id(), bot, MembershipState::Join).await;
    room
}

async fn send_text(room: &Room, content: RoomMessageEventContent) -> OwnedEventId {
    room.send(content).await.unwrap().response.event_id
}

/// The bot's reply in the thread rooted at `root` once its text satisfies `done`.
async fn bot_reply(
    user: &User,
    bot: &OwnedUserId,
    room: &Room,
    root: &OwnedEventId,
    nth: usize,
    done: impl Fn(&str) -> bool,
) -> (Seen, String) {
    user.wait_for(&format!("reply {nth} of the bot in the thread of {root}"), |_| {
        let replies = user.thread_replies(bot, room.room_id(), root.as_str());
        let reply = replies.get(nth)?.clone();
        let text = user.current_text(reply.event.event_id.as_str())?;
        done(&text).then_some((reply, text))
    })
    .await
}

/// Uploads the manual, replies `!ingest` to it and checks the receipt in the thread.
async fn ingest_manual(user: &User, bot: &OwnedUserId, room: &Room) -> Seen {
    let mime: mime::Mime = "application/pdf".parse().unwrap();
    let file = room.send_attachment("router-manual.pdf", &mime, pdf(MANUAL), AttachmentConfig::new()).await.unwrap();
    let command = RoomMessageEventContent::text_plain("!ingest").make_reply_to(
        ReplyMetadata::new(&file.event_id, &user.id, None),
        ForwardThread::No,
        AddMentions::No,
    );
    let ingest = send_text(room, command).await;
    let (receipt, text) = bot_reply(user, bot, room, &ingest, 0, |t| t.starts_with("Added")).await;
    assert!(text.to_lowercase().contains("router") && text.contains("chunk"), "{text}");
    receipt
}

/// Asks, waits for the final answer in the thread on the question, and checks that every `[n]`
/// of the text is a listed source.
async fn ask(user: &User, bot: &OwnedUserId, room: &Room, question: &str) -> (OwnedEventId, Seen, String) {
    let asked = send_text(room, RoomMessageEventContent::text_plain(format!("!ask {question}"))).await;
    let (reply, text) = bot_reply(user, bot, room, &asked, 0, |t| t.contains("\n\nSources:\n")).await;
    check_sources(&text);
    (asked, reply, text)
}

fn check_sources(text: &str) {
    let (answer, sources) = text.split_once("\n\nSources:\n").unwrap();
    let listed: std::collections::BTreeSet<u32> =
        sources.lines().filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok()).collect();
    assert!(!markers(answer).is_empty(), "the answer cites: {text}");
    assert!(markers(answer).is_subset(&listed), "every marker is a listed source: {text}");
    assert_eq!(listed.iter().copied().collect::<Vec<_>>(), (1..=listed.len() as u32).collect::<Vec<_>>());
}

/// A follow-up in the thread of `root`, answered in the same thread with the thread's history.
async fn follow_up(user: &User, bot: &OwnedUserId, room: &Room, root: &OwnedEventId, question: &str) -> String {
    let content = RoomMessageEventContent::text_plain(format!("!ask {question}")).make_for_thread(
        ReplyMetadata::new(root, &user.id, None),
        ReplyWithinThread::No,
        AddMentions::No,
    );
    send_text(room, content).await;
    let (_, text) = bot_reply(user, bot, room, root, 1, |t| t.contains("\n\nSources:\n")).await;
    check_sources(&text);
    text
}

/// The chat messages of the Ollama double's last `/api/chat` request, as (role, content).
fn last_chat(env: &common::TestEnv) -> Vec<(String, String)> {
    let request = env.double.requests().into_iter().rev().find(|r| r.path == "/api/chat").expect("a chat request");
    request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect()
}

struct Setup {
    env: common::TestEnv,
    peer: Peer,
    gateway: Arc<dyn Gateway>,
    bot_id: OwnedUserId,
    alice: User,
    config: footnote_matrix::Config,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(configure: impl FnOnce(&mut footnote::config::Config)) -> Setup {
    let peer = peer().await;
    let mut env = common::TestEnv::new().await;
    configure(&mut env.config);
    let gateway: Arc<dyn Gateway> = Arc::new(env.core().await);
    let bot_name = matrix_peer::unique("bot");
    let bot_id = peer.register(&bot_name, "bot-password").await;
    let alice = User::new(&peer, "alice", env.dir.path()).await;
    let config = peer.bot_config(&bot_id, "bot-password", &env.dir.path().join("bot-store"), &[alice.id.to_string()]);
    Setup { env, peer, gateway, bot_id, alice, config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invite_ingest_a_pdf_ask_and_follow_up_in_a_thread() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let room = room_with_bot(&s.alice, &s.bot_id, false).await;
    ingest_manual(&s.alice, &s.bot_id, &room).await;

    let (asked, reply, text) = ask(&s.alice, &s.bot_id, &room, "How long must the reset button be held?").await;
    assert!(text.contains("ten seconds") && text.contains("p. 1"), "the source names its page: {text}");
    let Some(Relation::Thread(thread)) = &reply.event.content.relates_to else { panic!("not in a thread") };
    assert_eq!((&thread.event_id, thread.is_falling_back), (&asked, true));
    assert_eq!(thread.in_reply_to.as_ref().map(|r| &r.event_id), Some(&asked), "the reply fallback");
    let formatted = s.alice.seen.lock().unwrap().iter().rev().find_map(|s| match &s.event.content.relates_to {
        Some(Relation::Replacement(r)) if r.event_id == reply.event.event_id => {
            serde_json::to_value(&r.new_content).ok()
        }
        _ => None,
    });
    let formatted = formatted.expect("the answer was streamed by edits");
    assert_eq!(formatted["format"], "org.matrix.custom.html");
    assert!(formatted["formatted_body"].as_str().unwrap().contains("<b>Sources:</b>"), "{formatted}");

    let second = follow_up(&s.alice, &s.bot_id, &room, &asked, "And where is the admin PIN?").await;
    assert!(second.contains("sticker"), "{second}");
    let chat = last_chat(&s.env);
    assert!(
        chat.iter().any(|(role, text)| role == "user" && text.contains("How long must the reset button be held?")),
        "the first question is in the follow-up's history: {chat:#?}"
    );
    assert!(
        chat.iter()
            .any(|(role, text)| role == "assistant" && text.contains("ten seconds") && !text.contains("Sources:")),
        "the first answer (without its sources list) is in the history: {chat:#?}"
    );
    // The bot's own messages never made it ask anything: one question, one follow-up.
    let asks = s.env.double.requests().iter().filter(|r| r.path == "/api/chat").count();
    assert_eq!(asks, 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_room_works_both_ways_and_a_restart_keeps_the_device() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let room = room_with_bot(&s.alice, &s.bot_id, true).await;
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
    let receipt = ingest_manual(&s.alice, &s.bot_id, &room).await;
    assert!(receipt.encrypted, "the receipt came encrypted");
    let (_, reply, text) = ask(&s.alice, &s.bot_id, &room, "How long must the reset button be held?").await;
    assert!(reply.encrypted && text.contains("ten seconds"), "{text}");

    let session_file = s.config.store_dir.join("session.json");
    let session = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let before = session(&session_file);
    // Registering through the admin API made a device too; the bot's login made exactly one more.
    let devices_before = s.peer.devices(before["access_token"].as_str().unwrap()).await;
    assert!(devices_before.iter().any(|d| d == before["device_id"].as_str().unwrap()), "{devices_before:?}");
    bot.stop().await;
    // Sent while the bot is away: history, never answered after the restart.
    let missed = send_text(&room, RoomMessageEventContent::text_plain("!ask Where is the admin PIN?")).await;

    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    // A question sent after the start is answered, even if it comes with the catch-up sync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, reply, text) = ask(&s.alice, &s.bot_id, &room, "Where is the admin PIN printed?").await;
    assert!(reply.encrypted && text.contains("sticker"), "decrypts after the restart: {text}");
    // That later question was answered, so the bot is past the missed one: it stays unanswered.
    s.alice.assert_syncing();
    assert!(
        s.alice.thread_replies(&s.bot_id, room.room_id(), missed.as_str()).is_empty(),
        "old history is not answered"
    );
    let after = session(&session_file);
    assert_eq!(before["device_id"], after["device_id"], "the same device after the restart");
    let devices = s.peer.devices(after["access_token"].as_str().unwrap()).await;
    assert_eq!(devices, devices_before, "no new device per start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&session_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disallowed_inviter_is_declined_and_an_uninvited_room_is_never_joined() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let eve = User::new(&s.peer, "eve", s.env.dir.path()).await;
    let evil = eve.client.create_room(CreateRoom::new()).await.unwrap();
    evil.invite_user_by_id(&s.bot_id).await.unwrap();
    eve.wait_for_membership(evil.room_id(), &s.bot_id, MembershipState::Leave).await;

    // Alice's room without the bot: asking and mentioning it there reaches nobody.
    let lonely = s.alice.client.create_room(CreateRoom::new()).await.unwrap();
    send_text(&lonely, RoomMessageEventContent::text_plain(format!("!ask {} where is the PIN?", s.bot_id))).await;
    // An allowed invite still works afterwards, and the bot answers there.
    let room = room_with_bot(&s.alice, &s.bot_id, false).await;
    let asked = send_text(&room, RoomMessageEventContent::text_plain("!help")).await;
    let (_, help) = bot_reply(&s.alice, &s.bot_id, &room, &asked, 0, |t| t.contains("!ingest")).await;
    assert!(help.contains("!ask"), "{help}");

    let bot_rooms = |state: RoomState| s.alice.client.rooms().into_iter().filter(move |r| r.state() == state).count();
    assert!(bot_rooms(RoomState::Joined) >= 2);
    s.alice.assert_syncing();
    let members = lonely.members_no_sync(matrix_sdk::RoomMemberships::ACTIVE).await.unwrap();
    assert!(members.iter().all(|m| m.user_id() != s.bot_id), "the bot never joined the room it was not invited to");
    assert!(
        s.alice.seen.lock().unwrap().iter().all(|m| m.room != lonely.room_id() || m.event.sender != s.bot_id),
        "the bot said nothing in the room it was not invited to"
    );
    assert_eq!(s.env.double.requests().iter().filter(|r| r.path == "/api/chat").count(), 0);
    bot.stop().await;
}

/// The document id a receipt names (`… as document ID.`).
fn document_id(receipt: &str) -> String {
    let rest = receipt.split("as document ").nth(1).expect("a receipt names its document");
    rest.split(['.', ',', ' ']).next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_message_needs_no_prefix_and_bad_files_get_a_reply() {
    let mut s = setup().await;
    s.config.max_file_bytes = 4_000;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let mut request = CreateRoom::new();
    request.is_direct = true;
    request.invite = vec![s.bot_id.clone()];
    let dm = s.alice.client.create_room(request).await.unwrap();
    s.alice.wait_for_membership(dm.room_id(), &s.bot_id, MembershipState::Join).await;

    // A file sent to the bot is ingested without a command; the receipt is in its thread.
    let pdf_type: mime::Mime = "application/pdf".parse().unwrap();
    let file = dm.send_attachment("router-manual.pdf", &pdf_type, pdf(MANUAL), AttachmentConfig::new()).await.unwrap();
    let (_, receipt) = bot_reply(&s.alice, &s.bot_id, &dm, &file.event_id, 0, |t| t.starts_with("Added")).await;
    // Over the size limit (declared by the sender's client): refused before downloading.
    let big =
        dm.send_attachment("big.txt", &mime::TEXT_PLAIN, vec![b'a'; 5_000], AttachmentConfig::new()).await.unwrap();
    let (_, refusal) = bot_reply(&s.alice, &s.bot_id, &dm, &big.event_id, 0, |_| true).await;
    assert!(refusal.contains("over this bot's limit of 4.0 kB"), "{refusal}");
    // A broken file: the core's reason, not silence.
    let broken =
        dm.send_attachment("broken.pdf", &pdf_type, b"no PDF here".to_vec(), AttachmentConfig::new()).await.unwrap();
    let (_, unreadable) = bot_reply(&s.alice, &s.bot_id, &dm, &broken.event_id, 0, |_| true).await;
    assert!(unreadable.contains("“broken.pdf”") && unreadable.contains("not a PDF"), "{unreadable}");

    // Any message is a question.
    let asked = send_text(&dm, RoomMessageEventContent::text_plain("Where is the admin PIN printed?")).await;
    let (_, answer) = bot_reply(&s.alice, &s.bot_id, &dm, &asked, 0, |t| t.contains("\n\nSources:\n")).await;
    check_sources(&answer);
    assert!(answer.contains("sticker"), "{answer}");
    let listed = send_text(&dm, RoomMessageEventContent::text_plain("!sources")).await;
    let (_, sources) = bot_reply(&s.alice, &s.bot_id, &dm, &listed, 0, |_| true).await;
    assert!(sources.starts_with("1 document here:") && sources.contains(&document_id(&receipt)), "{sources}");
    for (command, expected) in [("!status", "Ollama: reachable"), ("!warmup", "Models are warm")] {
        let sent = send_text(&dm, RoomMessageEventContent::text_plain(command)).await;
        let (_, text) = bot_reply(&s.alice, &s.bot_id, &dm, &sent, 0, |_| true).await;
        assert!(text.starts_with(expected), "{command}: {text}");
    }
    bot.stop().await;
}

/// Sends a file event whose content declares no size (`info` left out), as some clients do.
async fn send_unsized_file(user: &User, room: &Room, name: &str, bytes: Vec<u8>) -> OwnedEventId {
    let uploaded = user.client.media().upload(&mime::TEXT_PLAIN, bytes, None).await.unwrap();
    let file = FileMessageEventContent::plain(name.to_owned(), uploaded.content_uri);
    send_text(room, RoomMessageEventContent::new(MessageType::File(file))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_without_a_declared_size_is_downloaded_up_to_the_limit_only() {
    let mut s = setup().await;
    s.config.max_file_bytes = 4_000;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let mut request = CreateRoom::new();
    request.is_direct = true;
    request.invite = vec![s.bot_id.clone()];
    let dm = s.alice.client.create_room(request).await.unwrap();
    s.alice.wait_for_membership(dm.room_id(), &s.bot_id, MembershipState::Join).await;

    // 2 MB with no declared size: the download stops at 4 kB and the reply says so.
    let big = send_unsized_file(&s.alice, &dm, "big.txt", b"lorem ipsum ".repeat(170_000)).await;
    let (_, refusal) = bot_reply(&s.alice, &s.bot_id, &dm, &big, 0, |_| true).await;
    assert_eq!(
        refusal,
        "“big.txt” is over this bot's limit of 4.0 kB, so I stopped downloading it. Nothing was added."
    );
    // A small one without a declared size is read whole.
    let small = send_unsized_file(&s.alice, &dm, "notes.txt", b"The guest network is called Fridge.".to_vec()).await;
    let (_, added) = bot_reply(&s.alice, &s.bot_id, &dm, &small, 0, |_| true).await;
    assert!(added.starts_with("Added"), "{added}");
    let documents = s
        .gateway
        .documents(
            &footnote_adapter::Scope {
                platform: "matrix".into(),
                space: None,
                room: dm.room_id().to_string(),
                thread: None,
            },
            &footnote_adapter::Actor::operator(),
        )
        .await
        .unwrap();
    assert_eq!(documents.len(), 1, "only the small file: {documents:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_room_creator_may_forget_and_a_member_may_not() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let room = room_with_bot(&s.alice, &s.bot_id, false).await;
    let receipt = ingest_manual(&s.alice, &s.bot_id, &room).await;
    let id = document_id(&s.alice.current_text(receipt.event.event_id.as_str()).unwrap());
    let bob = User::new(&s.peer, "bob", s.env.dir.path()).await;
    room.invite_user_by_id(&bob.id).await.unwrap();
    let mut tries = 0;
    while let Err(error) = bob.client.join_room_by_id(room.room_id()).await {
        tries += 1;
        assert!(tries < 50, "bob cannot join: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.alice.wait_for_membership(room.room_id(), &bob.id, MembershipState::Join).await;

    // A text message replied to with !ingest becomes a small document.
    let snippet =
        send_text(&room, RoomMessageEventContent::text_plain("The guest network password is on the fridge.")).await;
    let command = RoomMessageEventContent::text_plain("!ingest").make_reply_to(
        ReplyMetadata::new(&snippet, &s.alice.id, None),
        ForwardThread::No,
        AddMentions::No,
    );
    let ingest = send_text(&room, command).await;
    let (_, added) = bot_reply(&s.alice, &s.bot_id, &room, &ingest, 0, |_| true).await;
    assert!(added.starts_with("Added “The guest network password is"), "{added}");
    // Bob has power 0: the default rules let only admins (owners) forget.
    let bob_room = bob.client.get_room(room.room_id()).unwrap();
    let tried = send_text(&bob_room, RoomMessageEventContent::text_plain(format!("!forget {id}"))).await;
    let (_, denied) = bot_reply(&s.alice, &s.bot_id, &room, &tried, 0, |_| true).await;
    assert_eq!(denied, "You are not allowed to do that here.");
    // Alice created the room (version 12: creators are not in m.room.power_levels): an owner.
    let forgot = send_text(&room, RoomMessageEventContent::text_plain(format!("!forget {id}"))).await;
    let (_, done) = bot_reply(&s.alice, &s.bot_id, &room, &forgot, 0, |_| true).await;
    assert!(done.starts_with("Forgot") && done.contains(&id), "{done}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_is_streamed_by_edits_while_the_bot_is_typing() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let room = room_with_bot(&s.alice, &s.bot_id, false).await;
    ingest_manual(&s.alice, &s.bot_id, &room).await;
    s.env.double.unload_all();
    s.env.double.set_load_delay(Duration::from_millis(800));
    s.env.double.set_token_delay(Duration::from_millis(120));
    // Two questions at once: the chat model answers one at a time, so one waits in the queue.
    let first = send_text(&room, RoomMessageEventContent::text_plain("!ask How long must the reset button be held?"));
    let second = send_text(&room, RoomMessageEventContent::text_plain("!ask Where is the admin PIN printed?"));
    let (first, second) = tokio::join!(first, second);
    let mut shown = Vec::new();
    for asked in [&first, &second] {
        let (reply, text) = bot_reply(&s.alice, &s.bot_id, &room, asked, 0, |t| t.contains("\n\nSources:\n")).await;
        check_sources(&text);
        shown.extend(s.alice.texts(reply.event.event_id.as_str()));
    }
    assert!(shown.iter().any(|t| t == "…"), "the placeholder comes first: {shown:#?}");
    assert!(shown.iter().any(|t| t == "Loading the model…"), "model loading is shown: {shown:#?}");
    assert!(shown.iter().any(|t| t.starts_with("Waiting for the model: position")), "the queue is shown: {shown:#?}");
    assert!(
        shown.iter().any(|t| t.ends_with(" …") && t.len() > 4 && !t.contains("Sources:")),
        "the text is shown as it is written: {shown:#?}"
    );
    // Progress edits are throttled to the edit interval (200 ms here); only the final answer
    // goes out at once. Server timestamps, so allow for some network jitter.
    for asked in [&first, &second] {
        let reply = &s.alice.thread_replies(&s.bot_id, room.room_id(), asked.as_str())[0];
        let seen = s.alice.seen.lock().unwrap().clone();
        let mut stamps: Vec<u64> = std::iter::once(&reply.event)
            .chain(seen.iter().map(|m| &m.event).filter(|e| {
                matches!(&e.content.relates_to, Some(Relation::Replacement(r)) if r.event_id == reply.event.event_id)
            }))
            .map(|e| u64::from(e.origin_server_ts.0))
            .collect();
        stamps.pop();
        assert!(stamps.len() >= 3, "{stamps:?}");
        // Tokens come every 120 ms, so an unthrottled bot would edit that often. The server
        // stamps an edit when it handles it, which a loaded machine delays by up to ~100 ms
        // either way: each gap may shrink by that, the whole run only by one jitter at its ends.
        let gaps: Vec<u64> = stamps.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
        assert!(gaps.iter().all(|gap| *gap >= 50), "edits too close together: {stamps:?}");
        let span = stamps[stamps.len() - 1] - stamps[0];
        assert!(span + 150 >= 200 * gaps.len() as u64, "edits more often than every 200 ms: {stamps:?}");
    }
    let typing = s.alice.typing.lock().unwrap().clone();
    assert!(typing.iter().any(|(r, u)| r == room.room_id() && u == &s.bot_id), "the bot was typing: {typing:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_access_token_logs_in_on_its_own_device() {
    let s = setup().await;
    let localpart = s.bot_id.localpart().to_owned();
    let (token, device) = s.peer.login(&localpart, "bot-password").await;
    let mut config = s.config.clone();
    config.password = None;
    config.access_token = Some(token.into());
    let bot = Bot::start(config.clone(), s.gateway.clone());
    let room = room_with_bot(&s.alice, &s.bot_id, true).await;
    let asked = send_text(&room, RoomMessageEventContent::text_plain("!help")).await;
    let (reply, _) = bot_reply(&s.alice, &s.bot_id, &room, &asked, 0, |t| t.contains("!ingest")).await;
    assert!(reply.encrypted, "an encrypted reply from the token's device");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config.store_dir.join("session.json")).unwrap()).unwrap();
    assert_eq!(saved["device_id"], device.as_str());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rooms_of_one_space_share_a_collection_when_mapped_by_space() {
    let s = setup_with(|c| c.scopes.mapping = footnote::config::Mapping::Space).await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let mut request = CreateRoom::new();
    let space_type = serde_json::value::to_raw_value(&serde_json::json!({"type": "m.space"})).unwrap();
    request.creation_content = Some(matrix_sdk::ruma::serde::Raw::from_json(space_type));
    let space = s.alice.client.create_room(request).await.unwrap();
    space.invite_user_by_id(&s.bot_id).await.unwrap();
    s.alice.wait_for_membership(space.room_id(), &s.bot_id, MembershipState::Join).await;
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let room = s.alice.client.create_room(CreateRoom::new()).await.unwrap();
        let via = serde_json::json!({"via": [s.peer.server_name]});
        space.send_state_event_raw("m.space.child", room.room_id().as_str(), via.clone()).await.unwrap();
        let parent = serde_json::json!({"via": [s.peer.server_name], "canonical": true});
        room.send_state_event_raw("m.space.parent", space.room_id().as_str(), parent).await.unwrap();
        room.invite_user_by_id(&s.bot_id).await.unwrap();
        s.alice.wait_for_membership(room.room_id(), &s.bot_id, MembershipState::Join).await;
        rooms.push(room);
    }
    let outside = room_with_bot(&s.alice, &s.bot_id, false).await;

    let receipt = ingest_manual(&s.alice, &s.bot_id, &rooms[0]).await;
    let id = document_id(&s.alice.current_text(receipt.event.event_id.as_str()).unwrap());
    let listed = send_text(&rooms[1], RoomMessageEventContent::text_plain("!sources")).await;
    let (_, sources) = bot_reply(&s.alice, &s.bot_id, &rooms[1], &listed, 0, |_| true).await;
    assert!(sources.contains(&id), "the other room of the space sees the document: {sources}");
    let listed = send_text(&outside, RoomMessageEventContent::text_plain("!sources")).await;
    let (_, none) = bot_reply(&s.alice, &s.bot_id, &outside, &listed, 0, |_| true).await;
    assert!(none.starts_with("There are no documents here yet"), "a room outside the space does not: {none}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undecryptable_direct_message_is_answered_not_dropped() {
    let s = setup().await;
    let bot = Bot::start(s.config.clone(), s.gateway.clone());
    let mut request = CreateRoom::new();
    request.is_direct = true;
    request.invite = vec![s.bot_id.clone()];
    let dm = s.alice.client.create_room(request).await.unwrap();
    s.alice.wait_for_membership(dm.room_id(), &s.bot_id, MembershipState::Join).await;
    dm.enable_encryption().await.unwrap();
    // An encrypted event whose session the bot never received, sent around alice's client.
    let token = s.alice.client.access_token().unwrap();
    let url = format!("{}/_matrix/client/v3/rooms/{}/send/m.room.encrypted/utd-1", s.peer.url, dm.room_id());
    let content = serde_json::json!({
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAcgZ8kR2z3bm9ub2lzZQ",
        "device_id": "NOSUCHDEVICE", "sender_key": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29y",
        "session_id": "bm8gc3VjaCBzZXNzaW9uIGV2ZXIgc2hhcmVkIHdpdGggdGhlIGJvdA"
    });
    let sent: serde_json::Value =
        reqwest::Client::new().put(url).bearer_auth(token).json(&content).send().await.unwrap().json().await.unwrap();
    let event_id: OwnedEventId = sent["event_id"].as_str().unwrap().try_into().unwrap();
    let (reply, text) = bot_reply(&s.alice, &s.bot_id, &dm, &event_id, 0, |_| true).await;
    assert!(text.starts_with("I couldn't decrypt your message"), "{text}");
    assert!(reply.encrypted, "the reply itself is encrypted");
    bot.stop().await;
}
