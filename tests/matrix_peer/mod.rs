//! Helpers for the tests against the real Synapse started by `scripts/peers/matrix.sh start`:
//! where it is, registering unique users through the shared-secret admin API, test users driven
//! by matrix-sdk (with their own crypto store) that record what they receive, running the bot on
//! a real core, and a small PDF.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use footnote_adapter::{Adapter, CancellationToken, Gateway};
use footnote_matrix::{Config, MatrixAdapter};
use hmac::{Hmac, Mac};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::events::room::member::{MembershipState, OriginalSyncRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{MessageType, OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::events::typing::SyncTypingEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId};
use matrix_sdk::{Client, Room};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The homeserver, from the `FOOTNOTE_TEST_MATRIX_*` variables `scripts/peers/matrix.sh start`
/// prints (defaults: the script's defaults).
#[derive(Clone)]
pub struct Peer {
    pub url: String,
    pub server_name: String,
    pub secret: String,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The running homeserver; panics (fails the test) with the command to start it when it is not up.
pub async fn peer() -> Peer {
    footnote::install_crypto_provider();
    // `RUST_LOG=footnote_matrix=debug` shows what the bot does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let peer = Peer {
        url: env_or("FOOTNOTE_TEST_MATRIX_URL", "http://127.0.0.1:38008"),
        server_name: env_or("FOOTNOTE_TEST_MATRIX_SERVER_NAME", "localhost"),
        secret: env_or("FOOTNOTE_TEST_MATRIX_SHARED_SECRET", "footnote-matrix-test-secret"),
    };
    let health = reqwest::Client::new().get(format!("{}/health", peer.url)).send().await;
    if !health.is_ok_and(|r| r.status().is_success()) {
        panic!(
            "no Matrix homeserver answers at {}. Start the test Synapse with `scripts/peers/matrix.sh start` \
             and export the FOOTNOTE_TEST_MATRIX_* lines it prints.",
            peer.url
        );
    }
    peer
}

/// A user name no other test (or earlier run) has used.
pub fn unique(role: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{role}-{}-{:x}", std::process::id(), nanos & 0xff_ffff_ffff_ffff)
}

impl Peer {
    /// Registers `localpart` with `password` through `/_synapse/admin/v1/register` (HMAC-SHA1 over
    /// nonce, user, password and admin flag with the shared secret); returns the full user id.
    pub async fn register(&self, localpart: &str, password: &str) -> OwnedUserId {
        let http = reqwest::Client::new();
        let endpoint = format!("{}/_synapse/admin/v1/register", self.url);
        let nonce: Value = http.get(&endpoint).send().await.unwrap().json().await.unwrap();
        let nonce = nonce["nonce"].as_str().unwrap().to_owned();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(format!("{nonce}\0{localpart}\0{password}\0notadmin").as_bytes());
        let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": digest});
        let response = http.post(&endpoint).json(&body).send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert!(status.is_success(), "registering {localpart}: {status} {answer}");
        answer["user_id"].as_str().unwrap().try_into().unwrap()
    }

    /// The bot's configuration: password login, its store under `store_dir`, invites allowed
    /// from `allowed`, quick edits.
    pub fn bot_config(&self, user: &OwnedUserId, password: &str, store_dir: &Path, allowed: &[String]) -> Config {
        let mut config = Config::with_password(&self.url, user.as_str(), password);
        config.store_dir = store_dir.to_owned();
        config.allowed_inviters = allowed.to_vec();
        config.edit_interval = Duration::from_millis(200);
        config
    }

    /// Logs `localpart` in over the client API (a device of its own); returns (access token, device id).
    pub async fn login(&self, localpart: &str, password: &str) -> (String, String) {
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart}, "password": password});
        let url = format!("{}/_matrix/client/v3/login", self.url);
        let answer: Value = reqwest::Client::new().post(url).json(&body).send().await.unwrap().json().await.unwrap();
        (answer["access_token"].as_str().unwrap().to_owned(), answer["device_id"].as_str().unwrap().to_owned())
    }

    /// The devices of a user, as the user's own access token lists them.
    pub async fn devices(&self, access_token: &str) -> Vec<String> {
        let url = format!("{}/_matrix/client/v3/devices", self.url);
        let answer: Value =
            reqwest::Client::new().get(url).bearer_auth(access_token).send().await.unwrap().json().await.unwrap();
        answer["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_owned()).collect()
    }
}

/// A message a test user received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub room: OwnedRoomId,
    pub event: OriginalSyncRoomMessageEvent,
    /// It arrived encrypted and was decrypted.
    pub encrypted: bool,
}

impl Seen {
    /// The text this message shows now: the body, or for an edit, the new content's body.
    pub fn body(&self) -> String {
        match &self.event.content.relates_to {
            Some(Relation::Replacement(r)) => r.new_content.msgtype.body().to_owned(),
            _ => self.event.content.msgtype.body().to_owned(),
        }
    }
}

/// A test user driven by matrix-sdk, with its own crypto store, syncing in the background and
/// recording every message and membership it sees.
pub struct User {
    pub client: Client,
    pub id: OwnedUserId,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub members: Arc<Mutex<Vec<(OwnedRoomId, String, MembershipState)>>>,
    /// Everyone this user saw typing, with the room.
    pub typing: Arc<Mutex<Vec<(OwnedRoomId, OwnedUserId)>>>,
    sync: JoinHandle<()>,
    /// Why the background sync ended, if it did: every wait fails with it at once, so that a
    /// broken sync is never read as "nothing arrived".
    sync_ended: Arc<Mutex<Option<String>>>,
}

impl Drop for User {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl User {
    /// Registers a fresh user and logs it in with a store under `dir`.
    pub async fn new(peer: &Peer, role: &str, dir: &Path) -> User {
        let localpart = unique(role);
        let id = peer.register(&localpart, "user-password").await;
        let client =
            Client::builder().homeserver_url(&peer.url).sqlite_store(dir.join(&localpart), None).build().await.unwrap();
        client.matrix_auth().login_username(&localpart, "user-password").send().await.unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let members: Arc<Mutex<Vec<(OwnedRoomId, String, MembershipState)>>> = Arc::default();
        let record = seen.clone();
        client.add_event_handler(
            move |event: OriginalSyncRoomMessageEvent,
                  room: Room,
                  info: Option<matrix_sdk::deserialized_responses::EncryptionInfo>| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(Seen {
                        room: room.room_id().to_owned(),
                        event,
                        encrypted: info.is_some(),
                    });
                }
            },
        );
        let record = members.clone();
        client.add_event_handler(move |event: OriginalSyncRoomMemberEvent, room: Room| {
            let record = record.clone();
            async move {
                let state = event.content.membership.clone();
                record.lock().unwrap().push((room.room_id().to_owned(), event.state_key.to_string(), state));
            }
        });
        let typing: Arc<Mutex<Vec<(OwnedRoomId, OwnedUserId)>>> = Arc::default();
        let record = typing.clone();
        client.add_event_handler(move |event: SyncTypingEvent, room: Room| {
            let record = record.clone();
            async move {
                let mut typing = record.lock().unwrap();
                typing.extend(event.content.user_ids.into_iter().map(|u| (room.room_id().to_owned(), u)));
            }
        });
        client.sync_once(SyncSettings::default()).await.unwrap();
        let syncing = client.clone();
        let sync_ended: Arc<Mutex<Option<String>>> = Arc::default();
        let ended = sync_ended.clone();
        let sync = tokio::spawn(async move {
            let why = match syncing.sync(SyncSettings::default().timeout(Duration::from_secs(5))).await {
                Ok(()) => "the sync loop returned".to_owned(),
                Err(e) => format!("the sync failed: {e}"),
            };
            *ended.lock().unwrap() = Some(why);
        });
        User { client, id, seen, members, typing, sync, sync_ended }
    }

    /// Panics if the background sync has ended: what this user saw is no longer being updated.
    pub fn assert_syncing(&self) {
        if let Some(why) = self.sync_ended.lock().unwrap().as_ref() {
            panic!("the test user {} stopped syncing with the homeserver: {why}", self.id);
        }
    }

    /// Waits until `check` finds something in what this user received (up to 60 s).
    pub async fn wait_for<T>(&self, what: &str, check: impl Fn(&[Seen]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.assert_syncing();
            let snapshot = self.seen.lock().unwrap().clone();
            if let Some(found) = check(&snapshot) {
                return found;
            }
            assert!(Instant::now() < deadline, "waited 60 s for {what}; saw {:#?}", self.seen.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `user` has membership `state` in `room`.
    pub async fn wait_for_membership(&self, room: &RoomId, user: &OwnedUserId, state: MembershipState) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.assert_syncing();
            let found =
                self.members.lock().unwrap().iter().any(|(r, u, s)| r == room && u == user.as_str() && *s == state);
            if found {
                return;
            }
            assert!(Instant::now() < deadline, "waited 60 s for {user} to be {state:?} in {room}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The bot's messages in `room` that are in the thread rooted at `root` (not edits).
    pub fn thread_replies(&self, bot: &OwnedUserId, room: &RoomId, root: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.room == room && &s.event.sender == bot)
            .filter(|s| matches!(&s.event.content.relates_to, Some(Relation::Thread(t)) if t.event_id == root))
            .cloned()
            .collect()
    }

    /// Every text the bot's event `id` showed, in order: itself, then each edit.
    pub fn texts(&self, id: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let first = seen.iter().filter(|s| s.event.event_id == id).map(Seen::body);
        let edits = seen
            .iter()
            .filter(|s| matches!(&s.event.content.relates_to, Some(Relation::Replacement(r)) if r.event_id == id))
            .map(Seen::body);
        first.chain(edits).collect()
    }

    /// The latest text of the bot's event `id` (its last edit, else itself).
    pub fn current_text(&self, id: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        let edit = seen
            .iter()
            .rev()
            .find(|s| matches!(&s.event.content.relates_to, Some(Relation::Replacement(r)) if r.event_id == id));
        edit.or_else(|| seen.iter().find(|s| s.event.event_id == id)).map(Seen::body)
    }
}

/// The bot running on a gateway, until stopped.
pub struct Bot {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), footnote_adapter::AdapterError>>,
}

impl Bot {
    /// Starts the adapter with `config` on `gateway`.
    pub fn start(config: Config, gateway: Arc<dyn Gateway>) -> Bot {
        let adapter = Box::new(MatrixAdapter::new(config).unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(adapter.run(gateway, shutdown.clone()));
        Bot { shutdown, task }
    }

    /// Stops the adapter and checks it ended cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("the bot stops");
        result.unwrap().expect("the bot ran without error");
    }
}

/// The `[n]` numbers in a text.
pub fn markers(text: &str) -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(']')
            && let Ok(n) = rest[..close].parse()
        {
            out.insert(n);
        }
    }
    out
}

/// Whether a message's content is a file.
pub fn is_file(seen: &Seen) -> bool {
    matches!(seen.event.content.msgtype, MessageType::File(_))
}

/// A one-page PDF with one Helvetica line per entry.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("Td", vec![72.into(), 760.into()]),
    ];
    for line in lines {
        operations.push(Operation::new("Td", vec![0.into(), (-16).into()]));
        operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content_id = doc.add_object(Stream::new(dictionary! {}, Content { operations }.encode().unwrap()));
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
    let pages = dictionary! {
        "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1, "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}
