//! The engine's housekeeping: forgetting documents (for `Core::forget`, the CLI and `footnote
//! eval`) and the state of the models and the store (for status replies and `footnote doctor`).

use footnote_adapter::{ModelState, Status};

use super::ask::same_model;
use super::{Rag, RagError};

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
