//! Test doubles: a recording stand-in for Discord's REST API and a fake gateway.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
pub use footnote_adapter::testing::RecordingGateway;
use footnote_adapter::{Answer, AskEvent, Citation, Locator, Timings};
use footnote_discord::{Config, Handler, Settings};
use serde_json::{Value, json};
use serenity::all::{Http, UserId};

/// The bot's user id (equal to the application id, as for every bot made today).
pub const BOT: u64 = 1_000_000_000_000_000_001;
/// The id the double gives every message the bot creates.
pub const POSTED: &str = "1300000000000000001";
/// The thread the double creates and reports.
pub const THREAD: &str = "1100000000000000001";
/// A private thread of the same channel.
pub const PRIVATE_THREAD: &str = "1100000000000000002";

/// One REST call as the double received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    /// Path and query, without the host.
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    /// `"METHOD /path"`, for comparing sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A recording HTTP double on 127.0.0.1 that answers like Discord's REST API.
pub struct Double {
    pub base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    limited: Arc<Mutex<usize>>,
}

/// What the double's handler shares: the calls so far, and how many of the next edits (PATCH)
/// Discord's rate limit refuses.
#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    limited: Arc<Mutex<usize>>,
}

impl Double {
    pub async fn start() -> Double {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let limited = Arc::new(Mutex::new(0));
        let shared = Shared { calls: calls.clone(), limited: limited.clone() };
        let app = axum::Router::new().fallback(respond).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Double { base, calls, limited }
    }

    /// Answers the next `count` edits (PATCH) with 429 Too Many Requests (retry after 0.2 s), as
    /// Discord does when a route's rate limit is spent.
    pub fn rate_limit_next_edits(&self, count: usize) {
        *self.limited.lock().unwrap() = count;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }

    /// A serenity REST client whose calls all go to this double.
    pub fn http(&self) -> Http {
        let mut config = Config::new("Bot-token.for-tests.only");
        config.application_id = Some(BOT);
        config.api_base = Some(self.base.clone());
        footnote_discord::http_client(&config)
    }

    /// A URL on the double for an attachment's bytes.
    pub fn file_url(&self, name: &str) -> String {
        format!("{}/files/{name}", self.base)
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn message_json(id: &str, channel: &str, author: u64, content: &str) -> Value {
    json!({
        "id": id, "channel_id": channel, "type": 0, "content": content,
        "author": {"id": author.to_string(), "username": "someone", "discriminator": "0", "avatar": null, "global_name": null},
        "timestamp": "2024-05-02T09:31:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false
    })
}

async fn respond(State(shared): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let body = (!body.is_empty())
        .then(|| serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())));
    shared.calls.lock().unwrap().push(Call { method: method.to_string(), path: path.clone(), body });
    {
        let mut limited = shared.limited.lock().unwrap();
        if *limited > 0 && method == Method::PATCH {
            *limited -= 1;
            let headers = [("retry-after", "0.2"), ("x-ratelimit-scope", "user")];
            let body =
                axum::Json(json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false}));
            return (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response();
        }
    }
    let segments: Vec<&str> = uri.path().trim_start_matches("/api/v10/").split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        (_, ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        // A program is served as one (a PE header), so that the core's content check refuses it.
        ("GET", ["", "files", name] | ["files", name]) if name.ends_with(".exe") => {
            b"MZ\x90\0\x03".to_vec().into_response()
        }
        ("GET", ["", "files", name] | ["files", name]) => format!("contents of {name}").into_response(),
        ("GET", ["channels", id]) if *id == THREAD => axum::Json(fixture("thread_channel.json")).into_response(),
        ("GET", ["channels", id]) if *id == PRIVATE_THREAD => {
            let mut private = fixture("thread_channel.json");
            private["id"] = PRIVATE_THREAD.into();
            private["type"] = 12.into();
            axum::Json(private).into_response()
        }
        ("GET", ["channels", _]) => axum::Json(fixture("text_channel.json")).into_response(),
        ("POST", ["channels", _, "messages", _, "threads"]) => {
            axum::Json(fixture("thread_channel.json")).into_response()
        }
        ("GET", ["channels", channel, "messages"]) => axum::Json(json!([
            message_json("1235534900000000002", channel, BOT, "Hold the reset button for 10 s [1]."),
            message_json(
                "1235534900000000001",
                channel,
                53_908_232_506_183_680,
                "<@1000000000000000001> How do I reset the router?"
            ),
        ]))
        .into_response(),
        ("POST" | "PATCH", _) => axum::Json(message_json(POSTED, "645027906669510667", BOT, "")).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The scripted answer: queue position, model loading, three tokens, then the checked answer
/// (whose text differs from the tokens) with two citations, the second from a chat message.
pub fn script(answer_text: &str) -> Vec<AskEvent> {
    vec![
        AskEvent::Queued { position: 2 },
        AskEvent::LoadingModel,
        AskEvent::Token("Hold ".into()),
        AskEvent::Token("the button [1]".into()),
        AskEvent::Token(" or [3]".into()),
        AskEvent::Done(answer(answer_text)),
    ]
}

pub fn answer(text: &str) -> Answer {
    let manual = Citation {
        n: 1,
        document_id: "doc-1".into(),
        title: "Router manual".into(),
        locator: Locator { page: Some(12), heading_path: vec!["Reset".into()], ..Locator::default() },
        snippet: "Press and hold the reset button for 10 seconds.".into(),
        score: 0.9,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    };
    let chat = Citation {
        n: 2,
        document_id: "doc-2".into(),
        title: "notes.md".into(),
        locator: Locator {
            link: Some("https://discord.com/channels/290926798626357999/645027906669510667/1235534017654321098".into()),
            ..Locator::default()
        },
        snippet: "The admin PIN is on the sticker.".into(),
        score: 0.7,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    };
    Answer {
        text: text.into(),
        citations: vec![manual, chat],
        notice: None,
        model: "llama3.2".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

/// A handler over `gateway` with the given edit interval and a 100 kB attachment limit.
pub fn handler(gateway: Arc<RecordingGateway>, edit_interval: Duration) -> Handler {
    let settings = Settings { max_attachment_bytes: 100_000, edit_interval, history_messages: 20, guilds: Vec::new() };
    let handler = Handler::new(gateway, settings);
    handler.set_bot_user(UserId::new(BOT));
    handler
}

/// Reads a fixture, lets `edit` change it, and deserialises it as `T`.
pub fn load<T: serde::de::DeserializeOwned>(name: &str, edit: impl FnOnce(&mut Value)) -> T {
    let mut value = fixture(name);
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}
