//! Several `footnote serve` processes on one PostgreSQL with the Matrix adapter against the real
//! Synapse (`scripts/peers/matrix.sh start`): one instance at a time holds the bot, every
//! question gets exactly one answer, and when the holder is killed with SIGKILL another instance
//! takes the bot over within 30 s: it answers what is asked next, and finishes (in the same
//! reply event) the answer the dead one was writing. Without the homeserver or the database the
//! test FAILS, naming the script that starts them.
#![cfg(all(feature = "postgres", feature = "matrix"))]
#![recursion_limit = "256"]

mod common;
mod matrix_peer;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::TestDatabase;
use common::process::{Serve, Settings};
use footnote_ollama_double::OllamaDouble;
use matrix_peer::{Peer, User, peer, unique};
use matrix_sdk::Room;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{AddMentions, ForwardThread, ReplyMetadata, RoomMessageEventContent};
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId};

/// The longest a takeover may take (the issue's bound).
const TAKEOVER: Duration = Duration::from_secs(30);

/// A configuration file for one instance: its own data directory, the shared database, the
/// Ollama double and the bot account.
fn instance(
    dir: &Path,
    name: &str,
    database: &str,
    ollama: &str,
    peer: &Peer,
    bot: &OwnedUserId,
    alice: &User,
) -> Settings {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("footnote.toml");
    let toml = format!(
        r#"data_dir = "{data}"
[database]
url = "{database}"
[ollama]
url = "{ollama}"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "1s"
[adapters.matrix]
homeserver = "{homeserver}"
user_id = "{bot}"
password = "bot-password"
allowed_inviters = ["{alice}"]
edit_interval = "200ms"
"#,
        data = data.display(),
        homeserver = peer.url,
        alice = alice.id,
    );
    std::fs::write(&file, toml).unwrap();
    Settings::file(&file)
}

async fn start(settings: &Settings) -> Serve {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || Serve::start(&settings)).await.unwrap()
}

/// True when this instance's status says it runs the Matrix adapter.
fn holds(status: &serde_json::Value) -> bool {
    status["adapters"].as_array().is_some_and(|a| a.iter().any(|a| a["adapter"] == "matrix" && a["here"] == true))
}

async fn send(room: &Room, content: RoomMessageEventContent) -> OwnedEventId {
    room.send(content).await.unwrap().response.event_id
}

/// Sends `!ask question` and returns the question's event.
async fn ask(room: &Room, question: &str) -> OwnedEventId {
    send(room, RoomMessageEventContent::text_plain(format!("!ask {question}"))).await
}

/// Waits for the bot's finished answer (with its sources) in the thread of `question`.
async fn answer(alice: &User, bot: &OwnedUserId, room: &Room, question: &OwnedEventId) -> String {
    alice
        .wait_for(&format!("the answer to {question}"), |_| {
            let replies = alice.thread_replies(bot, room.room_id(), question.as_str());
            let text = alice.current_text(replies.first()?.event.event_id.as_str())?;
            text.contains("\n\nSources:\n").then_some(text)
        })
        .await
}

/// The bot's messages (not edits) in the thread of `question`.
fn replies(alice: &User, bot: &OwnedUserId, room: &Room, question: &OwnedEventId) -> usize {
    alice.thread_replies(bot, room.room_id(), question.as_str()).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_instance_answers_and_another_takes_over_within_30_s() {
    let peer = peer().await;
    let database = TestDatabase::create().await;
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = peer.register(&unique("bot"), "bot-password").await;
    let alice = User::new(&peer, "alice", dir.path()).await;
    let settings: Vec<Settings> = ["a", "b", "c"]
        .iter()
        .map(|name| instance(dir.path(), name, &database.url, &double.url, &peer, &bot, &alice))
        .collect();

    let mut a = start(&settings[0]).await;
    a.wait_status(Duration::from_secs(60), holds).await;
    let mut b = start(&settings[1]).await;
    let status = b.wait_status(Duration::from_secs(30), |s| s["adapters"][0]["holder"].is_string()).await;
    assert!(!holds(&status), "two instances hold the bot: {status:#}");
    let a_name = a.status().await["instance"].as_str().unwrap().to_owned();
    assert_eq!(status["adapters"][0]["holder"], a_name.as_str(), "B's status names A as the holder");

    // Alice invites the bot, adds a note and asks: one answer.
    let room = alice.client.create_room(CreateRoom::new()).await.unwrap();
    room.invite_user_by_id(&bot).await.unwrap();
    alice.wait_for_membership(room.room_id(), &bot, MembershipState::Join).await;
    let note =
        send(&room, RoomMessageEventContent::text_plain("To reset the router, hold the reset button for ten seconds."))
            .await;
    let command = RoomMessageEventContent::text_plain("!ingest").make_reply_to(
        ReplyMetadata::new(&note, &alice.id, None),
        ForwardThread::No,
        AddMentions::No,
    );
    let ingest = send(&room, command).await;
    alice
        .wait_for("the ingest receipt", |_| {
            let reply = alice.thread_replies(&bot, room.room_id(), ingest.as_str()).into_iter().next()?;
            alice.current_text(reply.event.event_id.as_str()).filter(|t| t.starts_with("Added"))
        })
        .await;
    let first = ask(&room, "How long must the reset button be held?").await;
    assert!(answer(&alice, &bot, &room, &first).await.contains("ten seconds"));

    // The holder dies; the next question is answered by the other instance within 30 s.
    a.kill9();
    let killed = Instant::now();
    let second = ask(&room, "What must be held for ten seconds?").await;
    let text = answer(&alice, &bot, &room, &second).await;
    let took = killed.elapsed();
    eprintln!("kill -9 of the holder → answer from the other instance: {took:?}");
    assert!(took <= TAKEOVER, "the answer after the takeover came {took:?} after the kill");
    assert!(text.contains("reset button"), "{text}");
    let status = b.wait_status(Duration::from_secs(5), holds).await;
    let b_name = status["instance"].as_str().unwrap().to_owned();
    assert!(b.log().iter().any(|l| l.contains("now holds the adapter connection")), "B took the bot over");

    // A third instance stands by; B is killed while it writes an answer: C finishes that answer
    // in the reply B had posted.
    let c = start(&settings[2]).await;
    c.wait_status(Duration::from_secs(30), |s| s["adapters"][0]["holder"] == b_name.as_str()).await;
    double.set_token_delay(Duration::from_millis(400));
    let third = ask(&room, "How do I reset the router?").await;
    // Once its placeholder was edited, B has noted the reply in the database.
    alice
        .wait_for("B's answer to be under way", |_| {
            let reply = alice.thread_replies(&bot, room.room_id(), third.as_str()).into_iter().next()?;
            (alice.texts(reply.event.event_id.as_str()).len() >= 2).then_some(())
        })
        .await;
    b.kill9();
    let killed = Instant::now();
    double.set_token_delay(Duration::ZERO);
    let text = answer(&alice, &bot, &room, &third).await;
    eprintln!("kill -9 mid-answer → answer finished by the standby instance: {:?}", killed.elapsed());
    assert!(killed.elapsed() <= TAKEOVER, "the takeover took {:?}", killed.elapsed());
    assert!(text.contains("ten seconds"), "{text}");
    c.wait_status(Duration::from_secs(5), holds).await;
    assert!(c.log().iter().any(|l| l.contains("did not finish")), "C resumed B's answer:\n{}", c.log().join("\n"));

    // A later question is answered too; by then every question has exactly one reply.
    let last = ask(&room, "Where is the reset button?").await;
    answer(&alice, &bot, &room, &last).await;
    for (question, what) in [(&first, "first"), (&second, "second"), (&third, "third"), (&last, "last")] {
        assert_eq!(replies(&alice, &bot, &room, question), 1, "the {what} question got another number of replies");
    }
    drop(database);
}
