//! The core behind the adapter boundary: [`Core`] implements [`Gateway`] on top of [`Rag`],
//! mapping each call's [`Scope`] to the collections it may use and every internal error to the
//! safe adapter-facing errors.

use std::sync::Arc;

use async_trait::async_trait;
use footnote_adapter::{
    Actor, AskEvent, DocumentInfo, ForgetReceipt, Gateway, GatewayError, IngestError, IngestReceipt, ModelState,
    Question, Scope, Status, Upload, WarmupReport,
};
use futures::stream::BoxStream;
use futures::StreamExt;

use super::ask::same_model;
use super::{Rag, RagError};

/// Platforms whose scope names its collection directly (the CLI and the HTTP API).
const LOCAL_PLATFORMS: &[&str] = &["cli", "http", "web"];

/// The collection a scope reads and writes: local surfaces name it; a chat room gets its own,
/// keyed by platform, space and room.
pub fn collection_for(scope: &Scope) -> String {
    if LOCAL_PLATFORMS.contains(&scope.platform.as_str()) {
        return scope.room.clone();
    }
    match &scope.space {
        Some(space) => format!("{}:{}:{}", scope.platform, space, scope.room),
        None => format!("{}:{}", scope.platform, scope.room),
    }
}

/// [`Rag`] as a [`Gateway`].
#[derive(Clone)]
pub struct Core(pub Arc<Rag>);

impl Core {
    fn collections(&self, scope: &Scope) -> Vec<String> {
        vec![collection_for(scope)]
    }
}

#[async_trait]
impl Gateway for Core {
    async fn ask_stream(&self, scope: &Scope, _actor: &Actor, question: Question) -> BoxStream<'static, AskEvent> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let rag = self.0.clone();
        let collections = self.collections(scope);
        tokio::spawn(async move { rag.answer(&collections, question, tx).await });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) }).boxed()
    }

    async fn ingest(&self, scope: &Scope, _actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError> {
        let collection = collection_for(scope);
        self.0.ingest(&collection, upload).await.map_err(RagError::into_ingest_error)
    }

    async fn warmup(&self, _scope: &Scope, _actor: &Actor) -> Result<WarmupReport, GatewayError> {
        self.0.warmup().await.map_err(RagError::into_gateway_error)
    }

    async fn status(&self, scope: &Scope, _actor: &Actor) -> Result<Status, GatewayError> {
        self.0.status(Some(&self.collections(scope))).await.map_err(RagError::into_gateway_error)
    }

    async fn documents(&self, scope: &Scope, _actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError> {
        let rows = self.0.store().documents(&self.collections(scope)).await.map_err(|e| RagError::from(e).into_gateway_error())?;
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

    async fn forget(&self, scope: &Scope, _actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError> {
        let id: i64 = document_id.trim().trim_start_matches('#').parse().map_err(|_| GatewayError::NotFound(document_id.to_owned()))?;
        let deleted = self.0.forget(&self.collections(scope), id).await.map_err(RagError::into_gateway_error)?;
        let doc = deleted.ok_or_else(|| GatewayError::NotFound(document_id.to_owned()))?;
        Ok(ForgetReceipt { document_id: doc.id.to_string(), title: doc.title, chunks: doc.chunks as u32 })
    }
}

impl Rag {
    /// Deletes a document of `collections` and catches the indexes up.
    pub async fn forget(&self, collections: &[String], id: i64) -> Result<Option<crate::store::DocumentRow>, RagError> {
        let deleted = self.store.delete_document(collections, id).await?;
        if deleted.is_some() {
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
                missing.iter().map(|m| format!("model {m} is not pulled: run `ollama pull {m}`")).collect::<Vec<_>>().join("; "),
            );
        }
        Ok(status)
    }
}
