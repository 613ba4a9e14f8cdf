//! Shared set-up for the tests of `footnote serve`: the service in-process on a free loopback
//! port over the Ollama double and SQLite, a fake chat adapter, and small HTTP helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use footnote::config::Config;
use footnote::serve::{self, AdapterSpec, Backoff, Options, Running};
use footnote_adapter::{Actor, Adapter, AdapterError, AskEvent, CancellationToken, Gateway, Question, Scope};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::common::TestEnv;

/// A config for the service: the test env's, on a free loopback port.
pub fn config(env: &TestEnv) -> Config {
    let mut cfg = env.config.clone();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.shutdown_grace = Duration::from_secs(20);
    cfg
}

/// Starts the service and waits until the start-up warm-up is out of the model queue.
pub async fn start(cfg: Config, adapters: Vec<AdapterSpec>) -> Running {
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        reset_after: Duration::from_secs(60),
    };
    let running = serve::start(cfg, Options { adapters, backoff }).await.expect("the service starts");
    let queue = running.core.rag().queue();
    for _ in 0..200 {
        if queue.running() == 0 && queue.waiting() == 0 && warmed(&running).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running
}

async fn warmed(running: &Running) -> bool {
    let url = format!("{}/api/ps", running.core.rag().config().ollama.url);
    let Ok(reply) = reqwest::get(url).await else {
        return true;
    };
    let body: serde_json::Value = reply.json().await.unwrap_or_default();
    body["models"].as_array().is_some_and(|m| m.len() >= 2)
}

pub fn url(running: &Running, path: &str) -> String {
    format!("http://{}{path}", running.addr)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Parses a server-sent event stream body into (event, data) pairs.
pub fn parse_sse(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut event = String::from("message");
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
            }
        }
        if !data.is_empty() {
            out.push((event, data.join("\n")));
        }
    }
    out
}

/// What the fake platform sends its adapter: a question from a user in a room.
pub struct Incoming {
    pub scope: Scope,
    pub actor: Actor,
    pub text: String,
    pub reply: oneshot::Sender<Vec<AskEvent>>,
}

/// A chat adapter whose "platform" is a channel: each incoming message is asked through the
/// gateway and every event is sent back, as a real adapter would show them.
pub struct FakeAdapter {
    inbox: Arc<tokio::sync::Mutex<mpsc::Receiver<Incoming>>>,
}

#[async_trait]
impl Adapter for FakeAdapter {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        let mut inbox = self.inbox.lock().await;
        loop {
            let message = tokio::select! {
                m = inbox.recv() => m,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let Some(m) = message else { return Ok(()) };
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let events: Vec<AskEvent> =
                    gateway.ask_stream(&m.scope, &m.actor, Question::new(m.text)).await.collect().await;
                let _ = m.reply.send(events);
            });
        }
    }
}

/// A fake adapter and the sender that plays its platform.
pub fn fake_adapter() -> (AdapterSpec, mpsc::Sender<Incoming>) {
    let (tx, rx) = mpsc::channel(16);
    let inbox = Arc::new(tokio::sync::Mutex::new(rx));
    let spec = AdapterSpec::new("fake", move || Ok(Box::new(FakeAdapter { inbox: inbox.clone() }) as Box<dyn Adapter>));
    (spec, tx)
}

/// An adapter that fails its first `failures` runs (alternating an error and a panic), then
/// runs until shutdown. Counts its starts.
pub fn flaky_adapter(failures: usize, starts: Arc<AtomicUsize>) -> AdapterSpec {
    struct Flaky {
        attempt: usize,
        failures: usize,
    }
    #[async_trait]
    impl Adapter for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn run(
            self: Box<Self>,
            _gateway: Arc<dyn Gateway>,
            shutdown: CancellationToken,
        ) -> Result<(), AdapterError> {
            if self.attempt <= self.failures {
                if self.attempt.is_multiple_of(2) {
                    panic!("the flaky adapter panics on attempt {}", self.attempt);
                }
                return Err(AdapterError::Connection("the platform hung up".into()));
            }
            shutdown.cancelled().await;
            Ok(())
        }
    }
    AdapterSpec::new("flaky", move || {
        let attempt = starts.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Box::new(Flaky { attempt, failures }) as Box<dyn Adapter>)
    })
}

/// A chat scope and a plain member of it.
pub fn room(platform: &str, space: Option<&str>, room: &str) -> Scope {
    Scope { platform: platform.into(), space: space.map(Into::into), room: room.into(), thread: None }
}

pub fn member(id: &str) -> Actor {
    Actor { user_id: id.into(), display_name: None, roles: Vec::new(), is_owner: false }
}

/// Sends a message through the fake platform and returns every event of the answer.
pub async fn ask_via(platform: &mpsc::Sender<Incoming>, scope: Scope, actor: Actor, text: &str) -> Vec<AskEvent> {
    let (reply, rx) = oneshot::channel();
    platform.send(Incoming { scope, actor, text: text.into(), reply }).await.expect("the adapter runs");
    tokio::time::timeout(Duration::from_secs(30), rx).await.expect("an answer in time").expect("the adapter replied")
}
