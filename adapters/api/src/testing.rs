//! Fixtures for adapter tests (feature `test-utils`): a [`RecordingGateway`] that records what an
//! adapter asks of the core and answers the way the core does, and answers built exactly as the
//! core builds them, so that a renderer is tested against what it will really receive.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::{
    Actor, Answer, AskEvent, Citation, CitedBy, DocumentInfo, ForgetReceipt, Gateway, GatewayError, IngestError,
    IngestOutcome, IngestReceipt, Ledger, Locator, ModelState, ModelWarmup, Notice, Question, Scope, Status, Support,
    Timings, Upload, WarmupReport,
};

/// The two answers the core gives without the model, each with the notice that must be shown
/// once: nothing found, and the model unreachable (with the passages it would have used).
pub fn answers_without_the_model() -> [(Answer, Notice); 2] {
    let passage = Citation {
        n: 1,
        document_id: "1".into(),
        title: "Manual".into(),
        locator: Locator::default(),
        snippet: "Hold the reset button for ten seconds.".into(),
        score: 1.0,
        support: Support::NotCited,
        support_score: None,
        cited_by: CitedBy::None,
    };
    [
        (Answer::nothing_found(Timings::default()), Notice::NothingFound),
        (Answer::model_unreachable(vec![passage], Timings::default()), Notice::ModelUnreachable),
    ]
}

/// One call an adapter made, with everything it passed.
#[derive(Clone, Debug)]
pub enum Call {
    /// [`Gateway::ask_stream`] (and so [`Gateway::ask`]).
    Ask(Scope, Actor, Question),
    /// [`Gateway::ingest`].
    Ingest(Scope, Actor, Upload),
    /// [`Gateway::warmup`].
    Warmup(Scope, Actor),
    /// [`Gateway::status`].
    Status(Scope, Actor),
    /// [`Gateway::documents`].
    Documents(Scope, Actor),
    /// [`Gateway::forget`], with the document id.
    Forget(Scope, Actor, String),
}

/// A [`Gateway`] that records every call and answers from a script. An ask streams the scripted
/// events (optionally one every `event_delay`); an upload is stored the way the core stores it
/// (ids `doc-1`, `doc-2`, … in order, into the room's collection; the same bytes in the same
/// room are a duplicate of the first, an empty file or a Windows program is refused with the core's errors, found by content); the other
/// calls answer what was set with the `with_*` methods, or what a healthy core answers.
pub struct RecordingGateway {
    calls: Mutex<Vec<Call>>,
    events: Vec<AskEvent>,
    event_delay: Duration,
    ledger: Option<Arc<dyn Ledger>>,
    warmup: Result<WarmupReport, GatewayError>,
    status: Result<Status, GatewayError>,
    documents: Result<Vec<DocumentInfo>, GatewayError>,
    forget: Option<GatewayError>,
}

impl RecordingGateway {
    /// A gateway whose every ask streams `events`.
    pub fn new(events: Vec<AskEvent>) -> Self {
        let model = |name: &str| ModelState { name: name.into(), available: true, loaded: true, expires_at: None };
        let warm =
            |name: &str| ModelWarmup { name: name.into(), took: Duration::from_millis(1500), load: Duration::ZERO };
        RecordingGateway {
            calls: Mutex::new(Vec::new()),
            events,
            event_delay: Duration::ZERO,
            ledger: None,
            warmup: Ok(WarmupReport { models: vec![warm("qwen2.5:3b-instruct"), warm("nomic-embed-text")] }),
            status: Ok(Status {
                ollama_reachable: true,
                chat_model: model("qwen2.5:3b-instruct"),
                embed_model: model("nomic-embed-text"),
                documents: 1,
                chunks: 3,
                pending_embeddings: 0,
                problem: None,
            }),
            documents: Ok(Vec::new()),
            forget: None,
        }
    }

    /// A gateway whose every ask is answered with `answer`, streamed as the core streams it: a
    /// place in the queue, the model loading, the text in three tokens, then the checked answer.
    pub fn answering(answer: Answer) -> Self {
        let text = answer.text.clone();
        let (first, rest) = text.split_at(text.len() / 3);
        let (second, third) = rest.split_at(text[..text.len() * 2 / 3].len() - first.len());
        RecordingGateway::new(vec![
            AskEvent::Queued { position: 2 },
            AskEvent::LoadingModel,
            AskEvent::Token(first.into()),
            AskEvent::Token(second.into()),
            AskEvent::Token(third.into()),
            AskEvent::Done(answer),
        ])
    }

    /// The same, with `delay` before each streamed event (for tests of throttled edits).
    #[must_use]
    pub fn with_event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }

    /// The same, for an adapter connection whose progress is kept in `ledger`.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The same, answering warm-ups with `report`.
    #[must_use]
    pub fn with_warmup(mut self, report: Result<WarmupReport, GatewayError>) -> Self {
        self.warmup = report;
        self
    }

    /// The same, answering status requests with `status`.
    #[must_use]
    pub fn with_status(mut self, status: Result<Status, GatewayError>) -> Self {
        self.status = status;
        self
    }

    /// The same, listing `documents`.
    #[must_use]
    pub fn with_documents(mut self, documents: Result<Vec<DocumentInfo>, GatewayError>) -> Self {
        self.documents = documents;
        self
    }

    /// The same, refusing every forget with `error` (by default, a document it stored is
    /// forgotten and any other id is not found).
    #[must_use]
    pub fn refusing_forget(mut self, error: GatewayError) -> Self {
        self.forget = Some(error);
        self
    }

    fn record(&self) -> MutexGuard<'_, Vec<Call>> {
        self.calls.lock().expect("the call log is never poisoned")
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.record().clone()
    }

    /// The questions asked so far.
    pub fn asks(&self) -> Vec<(Scope, Actor, Question)> {
        self.calls()
            .into_iter()
            .filter_map(|c| if let Call::Ask(s, a, q) = c { Some((s, a, q)) } else { None })
            .collect()
    }

    /// The uploads so far, refused ones included.
    pub fn uploads(&self) -> Vec<(Scope, Actor, Upload)> {
        self.calls()
            .into_iter()
            .filter_map(|c| if let Call::Ingest(s, a, u) = c { Some((s, a, u)) } else { None })
            .collect()
    }
}

#[async_trait]
impl Gateway for RecordingGateway {
    async fn ask_stream(&self, scope: &Scope, actor: &Actor, question: Question) -> BoxStream<'static, AskEvent> {
        self.record().push(Call::Ask(scope.clone(), actor.clone(), question));
        let events = futures::stream::iter(self.events.clone());
        let delay = self.event_delay;
        if delay.is_zero() {
            return events.boxed();
        }
        events
            .then(move |event| async move {
                tokio::time::sleep(delay).await;
                event
            })
            .boxed()
    }

    async fn ingest(&self, scope: &Scope, actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError> {
        let mut calls = self.record();
        let earlier: Vec<(String, Vec<u8>)> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Ingest(s, _, u) => Some((s.room.clone(), u.bytes.clone())),
                _ => None,
            })
            .collect();
        calls.push(Call::Ingest(scope.clone(), actor.clone(), upload.clone()));
        if upload.bytes.is_empty() {
            return Err(IngestError::Empty);
        }
        // The core reads the content, not the name: a Windows program starts with "MZ".
        if upload.bytes.starts_with(b"MZ") {
            return Err(IngestError::Unsupported("a program or binary file (EXE)".into()));
        }
        let collection = scope.room.clone();
        let first = earlier.iter().position(|(c, bytes)| *c == collection && *bytes == upload.bytes);
        let (number, outcome) = match first {
            Some(i) => (i + 1, IngestOutcome::Duplicate),
            None => (earlier.len() + 1, IngestOutcome::Added),
        };
        Ok(IngestReceipt {
            document_id: format!("doc-{number}"),
            title: upload.file_name.clone(),
            collection,
            chunks: u32::try_from(upload.bytes.len().div_ceil(1000)).unwrap_or(u32::MAX),
            pages: None,
            outcome,
            embeddings_pending: false,
        })
    }

    async fn warmup(&self, scope: &Scope, actor: &Actor) -> Result<WarmupReport, GatewayError> {
        self.record().push(Call::Warmup(scope.clone(), actor.clone()));
        self.warmup.clone()
    }

    async fn status(&self, scope: &Scope, actor: &Actor) -> Result<Status, GatewayError> {
        self.record().push(Call::Status(scope.clone(), actor.clone()));
        self.status.clone()
    }

    async fn documents(&self, scope: &Scope, actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError> {
        self.record().push(Call::Documents(scope.clone(), actor.clone()));
        self.documents.clone()
    }

    async fn forget(&self, scope: &Scope, actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError> {
        let stored = self.uploads().len();
        self.record().push(Call::Forget(scope.clone(), actor.clone(), document_id.to_owned()));
        if let Some(error) = &self.forget {
            return Err(error.clone());
        }
        let known = document_id
            .strip_prefix("doc-")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (1..=stored).contains(&n));
        if !known {
            return Err(GatewayError::NotFound(document_id.to_owned()));
        }
        Ok(ForgetReceipt { document_id: document_id.to_owned(), title: document_id.to_owned(), chunks: 1 })
    }

    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.ledger.clone()
    }
}
