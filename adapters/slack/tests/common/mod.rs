//! Test doubles: a recording stand-in for Slack's Web API and file server, and a fake gateway.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
pub use footnote_adapter::testing::RecordingGateway;
use footnote_adapter::*;
use serde_json::{Value, json};

/// The bot token every test uses.
pub const BOT_TOKEN: &str = "xoxb-test-token";
/// The bot's user id the double reports from `auth.test`.
pub const BOT_USER: &str = "U0BOT";
/// Contents of the file the double serves.
pub const FILE_BYTES: &[u8] = b"# Router manual\n\nUse VLAN 10 for guests.\n";

/// One request the double received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The Web API method (`chat.postMessage`) or the path for other requests.
    pub name: String,
    pub authorization: Option<String>,
    /// JSON body, form body or query string, as JSON.
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
pub struct DoubleState {
    pub calls: Mutex<Vec<Call>>,
    /// Web API methods that answer 429 (with `Retry-After: 1`) the next time they are called.
    pub rate_limit_once: Mutex<VecDeque<String>>,
    /// Messages `conversations.replies` returns.
    pub replies: Mutex<Vec<Value>>,
    next_ts: Mutex<u64>,
}

/// A running recording double.
pub struct SlackDouble {
    pub addr: SocketAddr,
    pub state: Arc<DoubleState>,
}

impl SlackDouble {
    pub async fn start() -> Self {
        let state = Arc::new(DoubleState::default());
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("double serves") });
        SlackDouble { addr, state }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().expect("lock").clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.name).collect()
    }

    /// Waits until `done` holds for the recorded calls, or fails after 15 s.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; calls: {calls:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8], query: Option<&str>) -> Value {
    let is_json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    if is_json {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let source = if body.is_empty() { query.unwrap_or_default().as_bytes() } else { body };
    let map: serde_json::Map<String, Value> =
        url::form_urlencoded::parse(source).into_owned().map(|(k, v)| (k, Value::String(v))).collect();
    Value::Object(map)
}

async fn record(State(state): State<Arc<DoubleState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let name = path.strip_prefix("/api/").unwrap_or(&path).to_owned();
    let call = Call {
        method: parts.method.to_string(),
        name: name.clone(),
        authorization: parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: parse_body(&parts.headers, &bytes, parts.uri.query()),
        at: Instant::now(),
    };
    state.calls.lock().expect("lock").push(call.clone());
    {
        let mut limited = state.rate_limit_once.lock().expect("lock");
        if let Some(i) = limited.iter().position(|m| *m == name) {
            limited.remove(i);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("content-type", "application/json")],
                r#"{"ok":false,"error":"ratelimited"}"#,
            )
                .into_response();
        }
    }
    if parts.method == Method::GET && path.starts_with("/files/") {
        return (StatusCode::OK, [("content-type", "text/markdown")], FILE_BYTES).into_response();
    }
    let channel = call.body.get("channel").cloned().unwrap_or(json!("C1"));
    let reply = match name.as_str() {
        "auth.test" => {
            json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "footnote",
            "team_id": "T1", "user_id": BOT_USER, "bot_id": "B0BOT"})
        }
        "chat.postMessage" => {
            let mut next = state.next_ts.lock().expect("lock");
            *next += 1;
            let ts = format!("2000000000.{:06}", *next);
            json!({"ok": true, "channel": channel, "ts": ts,
                "message": {"type": "message", "text": call.body.get("text"), "ts": ts, "user": BOT_USER}})
        }
        "chat.update" => {
            json!({"ok": true, "channel": channel, "ts": call.body.get("ts"), "text": call.body.get("text")})
        }
        "chat.getPermalink" => json!({"ok": true, "channel": channel,
            "permalink": "https://acme.slack.com/archives/C0LAN2Q65/p1515449522000016"}),
        "conversations.replies" => {
            json!({"ok": true, "messages": *state.replies.lock().expect("lock"), "has_more": false})
        }
        "respond" => return (StatusCode::OK, "ok").into_response(),
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    axum::Json(reply).into_response()
}

/// A gateway that records its calls and streams an answer with two citations, one event every
/// 150 ms; warm-ups take 1.5 s and the status finds Ollama down.
pub fn gateway() -> RecordingGateway {
    let events = vec![
        AskEvent::Queued { position: 2 },
        AskEvent::LoadingModel,
        AskEvent::Token("Guests go on ".into()),
        AskEvent::Token("VLAN 10 [1]".into()),
        AskEvent::Token("; reboot [2].".into()),
        AskEvent::Done(two_citation_answer()),
    ];
    let warm = ModelWarmup { name: "qwen3".into(), took: Duration::from_millis(1500), load: Duration::ZERO };
    RecordingGateway::new(events)
        .with_event_delay(Duration::from_millis(150))
        .with_warmup(Ok(WarmupReport { models: vec![warm] }))
        .with_status(Err(GatewayError::Unavailable("Ollama is down.".into())))
}

pub fn two_citation_answer() -> Answer {
    Answer {
        text: "Guests go on VLAN 10 [1]; reboot after changes [2].".into(),
        citations: vec![
            Citation {
                n: 1,
                document_id: "doc_a".into(),
                title: "Router manual".into(),
                locator: Locator { page: Some(3), heading_path: vec!["Setup".into()], ..Default::default() },
                snippet: "Use VLAN 10 for guests.".into(),
                score: 0.9,
                support: footnote_adapter::Support::Unchecked,
                support_score: None,
                cited_by: footnote_adapter::CitedBy::Model,
            },
            Citation {
                n: 2,
                document_id: "doc_b".into(),
                title: "notes.md".into(),
                locator: Locator {
                    link: Some("https://acme.slack.com/archives/C0LAN2Q65/p1515449522000016".into()),
                    ..Default::default()
                },
                snippet: "Reboot after any change.".into(),
                score: 0.5,
                support: footnote_adapter::Support::Unchecked,
                support_score: None,
                cited_by: footnote_adapter::CitedBy::Model,
            },
        ],
        notice: None,
        model: "test".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

/// A Slack configuration pointing at the double.
pub fn config(double: &SlackDouble, signing_secret: Option<&str>) -> footnote_slack::Config {
    let mut config = footnote_slack::Config::new(BOT_TOKEN);
    config.api_base = double.api_base();
    config.signing_secret = signing_secret.map(|s| secrecy::SecretString::from(s.to_owned()));
    config.mode = footnote_slack::Mode::Events;
    config.update_interval = Duration::from_millis(200);
    config.max_file_bytes = 1024;
    config
}

/// An `app_mention` event callback as Slack documents it, optionally in a thread or with files.
pub fn mention_event(event_id: &str, ts: &str, thread_ts: Option<&str>, files: Option<Value>) -> Value {
    let mut event = json!({
        "type": "app_mention", "user": "U2147483697", "text": "<@U0BOT> which VLAN do guests use?",
        "ts": ts, "channel": "C0LAN2Q65", "event_ts": ts
    });
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
    }
    if let Some(files) = files {
        event["files"] = files;
    }
    json!({"token": "x", "team_id": "T1", "api_app_id": "A1", "event": event, "type": "event_callback",
        "event_id": event_id, "event_time": 1515449522})
}
