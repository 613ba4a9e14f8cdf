//! The core behind the adapter boundary: [`Core`] implements [`Gateway`] on top of [`Rag`],
//! mapping each call's [`Scope`] to its collection, enforcing the permissions, the rate limit,
//! the answer timeout and the shutdown state, and mapping every internal error to the safe
//! adapter-facing errors.

mod errors;

use std::sync::Arc;

use async_trait::async_trait;
use footnote_adapter::{
    Actor, AskError, AskEvent, DocumentInfo, ForgetReceipt, Gateway, GatewayError, IngestError, IngestOutcome,
    IngestReceipt, ModelState, Question, Scope, Status, Upload, WarmupReport,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::access::Action;
use super::admission::Admission;
use super::ask::same_model;
use super::ask::{Asker, Progress};
use super::{Rag, RagError};

/// [`Rag`] as a [`Gateway`]: every call is checked against the scope policy (and questions
/// against the rate limit and the shutdown state) before the core does any work.
#[derive(Clone)]
pub struct Core {
    rag: Arc<Rag>,
    admission: Arc<Admission>,
}

impl Core {
    /// The gateway in front of `rag`.
    pub fn new(rag: Arc<Rag>) -> Core {
        let admission = Arc::new(Admission::new(rag.config()));
        Core { rag, admission }
    }

    /// The engine behind it (the CLI's and the server's own work, and tests, reach it here).
    pub fn rag(&self) -> &Arc<Rag> {
        &self.rag
    }
}

/// The status problem a chat user sees when the model server cannot be reached.
pub const STATUS_UNREACHABLE: &str =
    "The language model server is not reachable right now. An administrator can find the details in the log.";
/// The status problem a chat user sees when a model is missing on the model server.
pub const STATUS_MODELS_MISSING: &str =
    "A model is not installed on the language model server. An administrator can find the details in the log.";

/// What an ingest told `/metrics`.
fn ingest_outcome(result: &Result<IngestReceipt, IngestError>) -> &'static str {
    match result {
        Ok(r) => match r.outcome {
            IngestOutcome::Added => "added",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Replaced { .. } => "replaced",
        },
        Err(IngestError::Denied) => "denied",
        Err(IngestError::RateLimited(_)) => "rate_limited",
        Err(_) => "refused",
    }
}

/// Records an answer's timings for `/metrics`.
fn record_answer(event: &AskEvent) {
    match event {
        AskEvent::Done(answer) => {
            let t = &answer.timings;
            metrics::histogram!("footnote_ask_retrieval_seconds").record(t.retrieval.as_secs_f64());
            if let Some(first) = t.first_token {
                metrics::histogram!("footnote_ask_first_token_seconds").record(first.as_secs_f64());
            }
            metrics::histogram!("footnote_ask_total_seconds").record(t.total.as_secs_f64());
            metrics::counter!("footnote_asks_total", "outcome" => "answered").increment(1);
        }
        AskEvent::Failed(e) => {
            let outcome = match e {
                AskError::Denied => "denied",
                AskError::RateLimited(_) => "rate_limited",
                AskError::Timeout => "timeout",
                AskError::ShuttingDown => "shutting_down",
                _ => "failed",
            };
            metrics::counter!("footnote_asks_total", "outcome" => outcome).increment(1);
        }
        _ => {}
    }
}

/// The adapters' event for the engine's progress report.
fn event_of(progress: Progress) -> AskEvent {
    match progress {
        Progress::Queued { position } => AskEvent::Queued { position },
        Progress::LoadingModel => AskEvent::LoadingModel,
        Progress::Token(text) => AskEvent::Token(text),
    }
}

fn failed(error: AskError) -> BoxStream<'static, AskEvent> {
    record_answer(&AskEvent::Failed(error.clone()));
    futures::stream::once(async move { AskEvent::Failed(error) }).boxed()
}

impl Core {
    /// Many uploads into `scope` through [`Rag::ingest_many`]: the permissions are checked once
    /// (to ingest, and to forget, since a file replaces a document of the same name), and each
    /// input gets its result, in input order, as [`Gateway::ingest`] would give it.
    pub fn ingest_many<S>(
        &self,
        scope: &Scope,
        actor: &Actor,
        uploads: S,
    ) -> BoxStream<'static, Result<IngestReceipt, IngestError>>
    where
        S: futures::Stream<Item = super::BulkInput> + Send + 'static,
    {
        let admission = &self.admission;
        // Files of the same name replace each other, which forgets the older one.
        let refusal = if self.rag.lifecycle().is_closing() {
            Some(IngestError::Unavailable(AskError::ShuttingDown.user_message()))
        } else if !self.allows(scope, actor, Action::Ingest) || !self.allows(scope, actor, Action::Forget) {
            Some(IngestError::Denied)
        } else {
            None
        };
        let results = match refusal {
            Some(refusal) => uploads.map(move |_| Err(refusal.clone())).boxed(),
            None => {
                let collection = admission.policy.collection(scope);
                self.rag.ingest_many(&collection, uploads).map(|r| r.map_err(RagError::into_ingest_error)).boxed()
            }
        };
        results
            .inspect(|result| {
                metrics::counter!("footnote_ingest_total", "outcome" => ingest_outcome(result)).increment(1);
            })
            .boxed()
    }

    /// The collections `scope` reads (one today; a list so that scopes may read several).
    pub fn collections(&self, scope: &Scope) -> Vec<String> {
        vec![self.admission.policy.collection(scope)]
    }

    /// The user's key for rate limits and the model queue; `None` for the local operator, who
    /// is not limited.
    fn limited_key(&self, scope: &Scope, actor: &Actor) -> Option<String> {
        (!self.admission.policy.is_operator(scope)).then(|| format!("{}:{}", scope.platform, actor.user_id))
    }

    pub(super) fn allows(&self, scope: &Scope, actor: &Actor, action: Action) -> bool {
        let allowed = self.admission.policy.allows(scope, actor, action);
        if !allowed {
            tracing::info!(platform = %scope.platform, room = %scope.room, user = %actor.user_id, ?action, "Denied.");
        }
        allowed
    }
}

#[async_trait]
impl Gateway for Core {
    async fn ask_stream(&self, scope: &Scope, actor: &Actor, question: Question) -> BoxStream<'static, AskEvent> {
        let admission = &self.admission;
        if self.rag.lifecycle().is_closing() {
            return failed(AskError::ShuttingDown);
        }
        if !self.allows(scope, actor, Action::Ask) {
            return failed(AskError::Denied);
        }
        let limited = self.limited_key(scope, actor);
        if let Some(key) = &limited
            && let Err(wait) = admission.asks.check(key, admission.policy.is_admin(scope, actor))
        {
            return failed(AskError::RateLimited(wait));
        }
        let capped = limited.is_some();
        let asker = limited.unwrap_or_else(|| format!("{}:{}", scope.platform, actor.user_id));
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let rag = self.rag.clone();
        let collections = self.collections(scope);
        let timeout = self.rag.config().limits.answer_timeout;
        self.rag.lifecycle().tracker().spawn(async move {
            let (progress, mut reports) = tokio::sync::mpsc::channel(64);
            let key = asker.clone();
            let answer = async move {
                let answer = rag.answer(&collections, Asker { key: &key, capped }, question, &progress).await;
                drop(progress); // ends the forwarding below
                answer
            };
            let forward = async {
                while let Some(report) = reports.recv().await {
                    if tx.send(event_of(report)).await.is_err() {
                        break;
                    }
                }
            };
            let work = async { tokio::join!(answer, forward).0 };
            // An asker who went away (closed connection, dropped stream) gives up their place
            // in the model queue at once, rather than when their first token is due.
            let finished = tokio::select! {
                finished = tokio::time::timeout(timeout, work) => Some(finished),
                () = tx.closed() => None,
            };
            let last = match finished {
                Some(Ok(Ok(answer))) => AskEvent::Done(answer),
                Some(Ok(Err(error))) => AskEvent::Failed(error.into_ask_error()),
                Some(Err(_)) => {
                    tracing::warn!(asker = %asker, ?timeout, "Answer timed out.");
                    AskEvent::Failed(AskError::Timeout)
                }
                None => {
                    tracing::info!(asker = %asker, "The asker went away; the answer was stopped.");
                    return;
                }
            };
            let _ = tx.send(last).await;
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) })
            .inspect(record_answer)
            .boxed()
    }

    async fn ingest(&self, scope: &Scope, actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError> {
        let admission = &self.admission;
        let result = if self.rag.lifecycle().is_closing() {
            Err(IngestError::Unavailable(AskError::ShuttingDown.user_message()))
        } else if !self.allows(scope, actor, Action::Ingest) {
            Err(IngestError::Denied)
        } else if let Some(Err(wait)) = self
            .limited_key(scope, actor)
            .map(|key| admission.ingests.check(&key, admission.policy.is_admin(scope, actor)))
        {
            Err(IngestError::RateLimited(wait))
        } else {
            let collection = admission.policy.collection(scope);
            // Replacing a document of the same name forgets it: only for who may forget.
            let may_replace = admission.policy.allows(scope, actor, Action::Forget);
            let work = self.rag.ingest_as(&collection, upload, may_replace);
            self.rag.lifecycle().tracker().track_future(work).await.map_err(RagError::into_ingest_error)
        };
        metrics::counter!("footnote_ingest_total", "outcome" => ingest_outcome(&result)).increment(1);
        result
    }

    async fn warmup(&self, scope: &Scope, actor: &Actor) -> Result<WarmupReport, GatewayError> {
        if !self.allows(scope, actor, Action::Ask) {
            return Err(GatewayError::Denied);
        }
        let admission = &self.admission;
        if let Some(key) = self.limited_key(scope, actor)
            && let Err(wait) = admission.asks.check(&key, admission.policy.is_admin(scope, actor))
        {
            return Err(GatewayError::Unavailable(AskError::RateLimited(wait).user_message()));
        }
        self.rag.warmup().await.map_err(RagError::into_gateway_error)
    }

    async fn status(&self, scope: &Scope, actor: &Actor) -> Result<Status, GatewayError> {
        let mut status = self.rag.status(Some(&self.collections(scope))).await.map_err(RagError::into_gateway_error)?;
        // The detail names the Ollama URL and raw errors: for the operator and configured admins.
        if !self.admission.policy.is_server_admin(scope, actor)
            && let Some(detail) = status.problem.take()
        {
            tracing::warn!(problem = %detail, platform = %scope.platform, room = %scope.room, "Status shown to a chat user without the detail.");
            status.problem =
                Some(if status.ollama_reachable { STATUS_MODELS_MISSING } else { STATUS_UNREACHABLE }.to_owned());
        }
        Ok(status)
    }

    async fn documents(&self, scope: &Scope, actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError> {
        if !self.allows(scope, actor, Action::Ask) {
            return Err(GatewayError::Denied);
        }
        let rows = self
            .rag
            .store()
            .documents(&self.collections(scope))
            .await
            .map_err(|e| RagError::from(e).into_gateway_error())?;
        Ok(rows
            .into_iter()
            .map(|d| DocumentInfo {
                id: d.id.to_string(),
                title: d.title,
                source: d.source,
                collection: d.collection,
                kind: d.kind,
                chunks: d.chunks as u32,
                bytes: d.bytes as u64,
                added_at: d.added_at,
                pending_embeddings: d.pending_embeddings as u32,
            })
            .collect())
    }

    async fn forget(&self, scope: &Scope, actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError> {
        if !self.allows(scope, actor, Action::Forget) {
            return Err(GatewayError::Denied);
        }
        let id: i64 = document_id
            .trim()
            .trim_start_matches('#')
            .parse()
            .map_err(|_| GatewayError::NotFound(document_id.to_owned()))?;
        let deleted = self.rag.forget(&self.collections(scope), &[id]).await.map_err(RagError::into_gateway_error)?;
        let doc = deleted.into_iter().next().ok_or_else(|| GatewayError::NotFound(document_id.to_owned()))?;
        Ok(ForgetReceipt { document_id: doc.id.to_string(), title: doc.title, chunks: doc.chunks as u32 })
    }
}

impl Rag {
    /// Deletes the documents `ids` of `collections` (ids elsewhere are left alone), then catches
    /// the indexes up once. Returns the documents deleted.
    pub async fn forget(
        &self,
        collections: &[String],
        ids: &[i64],
    ) -> Result<Vec<crate::store::DocumentRow>, RagError> {
        let mut deleted = Vec::new();
        for &id in ids {
            deleted.extend(self.store.delete_document(collections, id).await?);
        }
        if !deleted.is_empty() {
            self.indexes.catch_up(self.store.as_ref()).await?;
        }
        Ok(deleted)
    }

    /// Ollama and store state. `collections` limits the counts (None: everything).
    pub async fn status(&self, collections: Option<&[String]>) -> Result<Status, RagError> {
        let counts = self.store.counts(collections).await?;
        let chat = &self.cfg.ollama.chat_model;
        let embed = &self.cfg.ollama.embed_model;
        let mut status = Status {
            ollama_reachable: false,
            chat_model: ModelState { name: chat.clone(), available: false, loaded: false, expires_at: None },
            embed_model: ModelState { name: embed.clone(), available: false, loaded: false, expires_at: None },
            documents: counts.documents as u64,
            chunks: counts.chunks as u64,
            pending_embeddings: counts.pending_embeddings as u64,
            problem: None,
        };
        let (tags, ps) = tokio::join!(self.ollama.tags(), self.ollama.ps());
        let (tags, ps) = match (tags, ps) {
            (Ok(tags), Ok(ps)) => (tags, ps),
            (Err(e), _) | (_, Err(e)) => {
                status.problem = Some(format!("{e}. {}", e.fix()));
                return Ok(status);
            }
        };
        status.ollama_reachable = true;
        for state in [&mut status.chat_model, &mut status.embed_model] {
            state.available = tags.iter().any(|m| same_model(&m.name, &state.name));
            if let Some(running) = ps.iter().find(|m| same_model(&m.name, &state.name)) {
                state.loaded = true;
                state.expires_at = running.expires_at.map(|t| t.to_rfc3339());
            }
        }
        let missing: Vec<&str> = [&status.chat_model, &status.embed_model]
            .into_iter()
            .filter(|m| !m.available)
            .map(|m| m.name.as_str())
            .collect();
        if !missing.is_empty() {
            status.problem = Some(
                missing
                    .iter()
                    .map(|m| format!("model {m} is not pulled: run `ollama pull {m}`"))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        Ok(status)
    }
}
