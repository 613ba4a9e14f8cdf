//! A plugin written in Rust for the tests: a [`Gateway`] that speaks the wire protocol to a
//! running `footnote serve`, so that tests written against the in-process gateway run through
//! the wire unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use footnote_adapter::wire::{
    Ack, AskRequest, Call, ForgetRequest, GatewayFailure, Hello, IngestFailure, IngestRequest, PATH, Refusal,
    ServerFrame,
};
use footnote_adapter::{
    Actor, AskError, AskEvent, DocumentInfo, ForgetReceipt, Gateway, GatewayError, IngestError, IngestReceipt,
    Question, Scope, Status, Upload, WarmupReport,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, oneshot};

type Waiting = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<AskEvent>>>>;

/// A connected plugin: its event stream is read by a task that routes each frame to its
/// question and acknowledges the finished ones (unless told not to).
pub struct WirePlugin {
    base: String,
    token: String,
    http: reqwest::Client,
    waiting: Waiting,
    next: AtomicU64,
    /// The `finished` frames received, in order (id, event).
    pub finished: Arc<Mutex<Vec<(String, AskEvent)>>>,
    reader: tokio::task::JoinHandle<()>,
    /// The first frame.
    pub hello: Hello,
}

impl Drop for WirePlugin {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Splits server-sent events out of `buffer`, returning each event's `data`.
fn take_events(buffer: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let event: String = buffer.drain(..end + 2).collect();
        let data: Vec<&str> =
            event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
        if !data.is_empty() {
            out.push(data.join("\n"));
        }
    }
    out
}

impl WirePlugin {
    /// Connects to the server at `base` (`http://127.0.0.1:PORT`) with `token`; `ack`: whether
    /// to acknowledge the answers received.
    pub async fn connect(base: &str, token: &str, ack: bool) -> WirePlugin {
        let http = reqwest::Client::new();
        let response =
            http.get(format!("{base}{PATH}/events")).bearer_auth(token).send().await.expect("the event stream opens");
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
        let waiting: Waiting = Arc::default();
        let finished: Arc<Mutex<Vec<(String, AskEvent)>>> = Arc::default();
        let (hello_tx, hello_rx) = oneshot::channel();
        let reader = {
            let (waiting, finished, http, base, token) =
                (waiting.clone(), finished.clone(), http.clone(), base.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let mut hello_tx = Some(hello_tx);
                let mut body = response.bytes_stream();
                let mut buffer = String::new();
                while let Some(Ok(chunk)) = body.next().await {
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    for data in take_events(&mut buffer) {
                        let frame: ServerFrame = serde_json::from_str(&data).expect("a frame of the spec");
                        match frame {
                            ServerFrame::Hello(hello) => {
                                if let Some(tx) = hello_tx.take() {
                                    let _ = tx.send(hello);
                                }
                            }
                            ServerFrame::Progress(p) => {
                                if let Some(tx) = waiting.lock().unwrap().get(&p.id) {
                                    let _ = tx.send(p.event);
                                }
                            }
                            ServerFrame::Finished(f) => {
                                finished.lock().unwrap().push((f.id.clone(), f.event.clone()));
                                if let Some(tx) = waiting.lock().unwrap().remove(&f.id) {
                                    let _ = tx.send(f.event);
                                }
                                if ack {
                                    let ack = Ack { ids: vec![f.id] };
                                    let url = format!("{base}{PATH}/ack");
                                    let sent = http.post(url).bearer_auth(&token).json(&ack).send().await;
                                    assert_eq!(sent.expect("ack").status(), 204);
                                }
                            }
                        }
                    }
                }
            })
        };
        let hello = tokio::time::timeout(Duration::from_secs(10), hello_rx)
            .await
            .expect("hello in time")
            .expect("a hello frame first");
        WirePlugin {
            base: base.into(),
            token: token.into(),
            http,
            waiting,
            next: AtomicU64::new(0),
            finished,
            reader,
            hello,
        }
    }

    /// Closes the event stream (the plugin goes away).
    pub fn disconnect(self) {}

    /// POSTs `body` to `…/{call}`; the status and the JSON reply.
    pub async fn post<T: serde::Serialize>(&self, call: &str, body: &T) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}{PATH}/{call}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Sends a question under `id` without waiting for its answer.
    pub async fn send_ask(
        &self,
        id: &str,
        scope: &Scope,
        actor: &Actor,
        question: Question,
    ) -> (u16, serde_json::Value) {
        let request = AskRequest { id: id.into(), scope: scope.clone(), actor: actor.clone(), question };
        self.post("ask", &request).await
    }

    async fn call<T: serde::de::DeserializeOwned, B: serde::Serialize>(
        &self,
        what: &str,
        body: &B,
    ) -> Result<T, GatewayError> {
        let (status, reply) = self.post(what, body).await;
        if status == 200 {
            return Ok(serde_json::from_value(reply).expect("a reply of the spec"));
        }
        match serde_json::from_value::<GatewayFailure>(reply.clone()) {
            Ok(failure) => {
                assert_eq!(failure.message, failure.error.user_message());
                Err(failure.error)
            }
            Err(_) => panic!("{what}: refused with {status}: {reply}"),
        }
    }
}

/// The refusal of a request the protocol turned down.
pub fn refusal(reply: &serde_json::Value) -> Refusal {
    serde_json::from_value(reply.clone()).unwrap_or_else(|_| panic!("not a refusal: {reply}"))
}

#[async_trait]
impl Gateway for WirePlugin {
    async fn ask_stream(&self, scope: &Scope, actor: &Actor, question: Question) -> BoxStream<'static, AskEvent> {
        let id = format!("q{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiting.lock().unwrap().insert(id.clone(), tx);
        let (status, reply) = self.send_ask(&id, scope, actor, question).await;
        if status != 202 {
            self.waiting.lock().unwrap().remove(&id);
            let refusal = refusal(&reply);
            return futures::stream::once(async move { AskEvent::Failed(AskError::Invalid(refusal.message)) }).boxed();
        }
        let events = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
        // The stream ends after the answer, as the in-process one does.
        let mut ended = false;
        events
            .take_while(move |e| {
                let go = !ended;
                ended |= matches!(e, AskEvent::Done(_) | AskEvent::Failed(_));
                futures::future::ready(go)
            })
            .boxed()
    }

    async fn ingest(&self, scope: &Scope, actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError> {
        let request = IngestRequest { scope: scope.clone(), actor: actor.clone(), upload };
        let (status, reply) = self.post("ingest", &request).await;
        if status == 200 {
            return Ok(serde_json::from_value(reply).expect("a receipt of the spec"));
        }
        match serde_json::from_value::<IngestFailure>(reply.clone()) {
            Ok(failure) => {
                assert_eq!(failure.message, failure.error.user_message());
                Err(failure.error)
            }
            Err(_) => panic!("ingest refused with {status}: {reply}"),
        }
    }

    async fn warmup(&self, scope: &Scope, actor: &Actor) -> Result<WarmupReport, GatewayError> {
        self.call("warmup", &Call { scope: scope.clone(), actor: actor.clone() }).await
    }

    async fn status(&self, scope: &Scope, actor: &Actor) -> Result<Status, GatewayError> {
        self.call("status", &Call { scope: scope.clone(), actor: actor.clone() }).await
    }

    async fn documents(&self, scope: &Scope, actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError> {
        self.call("documents", &Call { scope: scope.clone(), actor: actor.clone() }).await
    }

    async fn forget(&self, scope: &Scope, actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError> {
        let request = ForgetRequest { scope: scope.clone(), actor: actor.clone(), document_id: document_id.into() };
        self.call("forget", &request).await
    }
}
