//! The Events API endpoint over real HTTP, with real HMAC-SHA256 signatures.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use footnote_slack::{SlackState, events_router};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

struct Harness {
    double: SlackDouble,
    gateway: Arc<RecordingGateway>,
    base: String,
    http: reqwest::Client,
}

async fn start() -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let double = SlackDouble::start().await;
    let gateway = Arc::new(common::gateway());
    let state = SlackState::new(config(&double, Some(SECRET)), gateway.clone()).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, events_router(state)).await.expect("serves") });
    Harness { double, gateway, base, http: reqwest::Client::new() }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Signs as Slack does: `v0=` + hex(HMAC-SHA256(secret, "v0:{ts}:{body}")).
fn signature(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

impl Harness {
    async fn send(
        &self,
        path: &str,
        body: &str,
        secret: &str,
        ts: i64,
        retry: Option<&str>,
        form: bool,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature(secret, ts, body))
            .header("content-type", if form { "application/x-www-form-urlencoded" } else { "application/json" })
            .body(body.to_owned());
        if let Some(retry) = retry {
            request = request.header("x-slack-retry-num", retry).header("x-slack-retry-reason", "http_timeout");
        }
        request.send().await.expect("request sent")
    }

    async fn event(&self, body: &Value, secret: &str, ts: i64, retry: Option<&str>) -> reqwest::Response {
        self.send("/slack/events", &body.to_string(), secret, ts, retry, false).await
    }
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let h = start().await;
    let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification"});
    let response = h.event(&body, SECRET, now(), None).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

#[tokio::test]
async fn a_valid_event_is_answered_and_a_replayed_retry_is_not() {
    let h = start().await;
    let body = mention_event("Ev0PV52K21", "1515449522.000016", None, None);
    let response = h.event(&body, SECRET, now(), None).await;
    assert_eq!(response.status(), 200);
    h.double.wait_for("the answer", |calls| calls.iter().filter(|c| c.name == "chat.update").count() >= 2).await;
    assert_eq!(h.gateway.asks().len(), 1);

    let retry = h.event(&body, SECRET, now(), Some("1")).await;
    assert_eq!(retry.status(), 200);
    // The same message delivered under a new event id (a DM also seen as a mention) is dropped too.
    let mut again = body.clone();
    again["event_id"] = json!("Ev0OTHER");
    assert_eq!(h.event(&again, SECRET, now(), None).await.status(), 200);
    // A new message delivered after them is answered: by then the duplicates had their chance.
    let later = mention_event("Ev0LATER", "1515449600.000001", None, None);
    assert_eq!(h.event(&later, SECRET, now(), None).await.status(), 200);
    h.double.wait_for("the later answer", |calls| calls.iter().filter(|c| c.name == "chat.update").count() >= 4).await;
    let asks = h.gateway.asks();
    assert_eq!(asks.len(), 2, "no second answer to the first message: {asks:?}");
    let placeholders = h.double.calls().into_iter().filter(|c| c.name == "chat.postMessage").count();
    assert_eq!(placeholders, 2, "one placeholder per message");
}

#[tokio::test]
async fn wrong_secret_and_stale_timestamps_are_refused() {
    let h = start().await;
    let body = mention_event("Ev1", "1515449522.000016", None, None);
    assert_eq!(h.event(&body, "not-the-secret", now(), None).await.status(), 401);
    assert_eq!(h.event(&body, SECRET, now() - 6 * 60, None).await.status(), 401);
    assert_eq!(h.event(&body, SECRET, now() + 6 * 60, None).await.status(), 401);
    let unsigned = h.http.post(format!("{}/slack/events", h.base)).body(body.to_string()).send().await.expect("sent");
    assert_eq!(unsigned.status(), 401);
    // A body changed after signing is refused too.
    let ts = now();
    let tampered = h
        .http
        .post(format!("{}/slack/events", h.base))
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature(SECRET, ts, &body.to_string()))
        .body(body.to_string().replace("VLAN", "vlan"))
        .send()
        .await
        .expect("sent");
    assert_eq!(tampered.status(), 401);
    // A correctly signed event sent after them is answered; the refused ones left no trace.
    let valid = mention_event("Ev2", "1515449600.000001", None, None);
    assert_eq!(h.event(&valid, SECRET, now(), None).await.status(), 200);
    h.double.wait_for("the valid answer", |calls| calls.iter().filter(|c| c.name == "chat.update").count() >= 2).await;
    assert_eq!(h.gateway.calls().len(), 1, "only the valid event reached the gateway: {:?}", h.gateway.calls());
    let placeholders = h.double.calls().into_iter().filter(|c| c.name == "chat.postMessage").count();
    assert_eq!(placeholders, 1);
}

#[tokio::test]
async fn slash_commands_are_acknowledged_at_once_and_answered_later() {
    let h = start().await;
    let response_url = h.double.url("/respond");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "gIkuvaNzQIHg97ATvDxqgjtO")
        .append_pair("team_id", "T0001")
        .append_pair("team_domain", "example")
        .append_pair("channel_id", "C2147483705")
        .append_pair("channel_name", "test")
        .append_pair("user_id", "U2147483697")
        .append_pair("user_name", "Steve")
        .append_pair("command", "/warmup")
        .append_pair("text", "")
        .append_pair("response_url", &response_url)
        .append_pair("trigger_id", "13345224609.738474920.8088930838d88f008e0")
        .finish();
    let started = std::time::Instant::now();
    let response = h.send("/slack/commands", &body, SECRET, now(), None, true).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    let ack: Value = response.json().await.expect("json");
    assert_eq!(ack["response_type"], "ephemeral");
    assert!(ack["text"].as_str().is_some_and(|t| t.contains("Loading")));

    let calls = h.double.wait_for("the warm-up reply", |calls| calls.iter().any(|c| c.name == "/respond")).await;
    let reply = calls.iter().find(|c| c.name == "/respond").expect("reply");
    assert_eq!(reply.body["response_type"], "ephemeral");
    assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("qwen3")));
    assert_eq!(reply.authorization, None, "response_url needs no token");
    assert!(
        matches!(h.gateway.calls().first(), Some(footnote_adapter::testing::Call::Warmup(scope, _)) if scope.room == "C2147483705")
    );

    let wrong = h.send("/slack/commands", &body, "nope", now(), None, true).await;
    assert_eq!(wrong.status(), 401);
}
