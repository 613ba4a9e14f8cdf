//! Retrieval without an answer, for callers that read the passages themselves (the MCP server's
//! `search` and `get_passage`, the HTTP API's `/api/search`): the same hybrid search an answer
//! starts with, and one stored chunk with its neighbours. Both go through [`Core`] so that the
//! scope policy is checked as for every other call, and both read only the scope's collections.

use footnote_adapter::{Actor, GatewayError, Locator, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Action;
use super::gateway::Core;
use super::{Rag, RagError};
use crate::retrieval;
use crate::store::ChunkRow;

/// Most passages one search returns.
pub const MAX_SEARCH_K: usize = 20;
/// Most neighbours on each side that one passage read returns.
pub const MAX_AROUND: u32 = 3;
/// Longest snippet in a search hit, in characters (the whole text is one `get_passage` away).
const SNIPPET_CHARS: usize = 600;

/// One passage found by a search.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// Passage id (for `get_passage`).
    pub id: i64,
    /// Id of the document it belongs to (as `list_documents` gives it).
    pub document_id: String,
    /// Collection it belongs to.
    pub collection: String,
    /// Document title.
    pub title: String,
    /// Document source (file name or message link).
    pub source: String,
    /// Where in the document: page, headings, link.
    pub locator: Locator,
    /// The beginning of the passage's text.
    pub snippet: String,
    /// Fused retrieval score (higher is better; comparable within one search only).
    pub score: f32,
}

/// One stored passage, whole.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Passage {
    /// Passage id.
    pub id: i64,
    /// Id of the document it belongs to.
    pub document_id: String,
    /// Collection it belongs to.
    pub collection: String,
    /// Document title.
    pub title: String,
    /// Document source.
    pub source: String,
    /// Where in the document.
    pub locator: Locator,
    /// The passage's text.
    pub text: String,
}

/// A passage with the passages around it in its document, in document order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PassageContext {
    /// The passage asked for.
    pub passage: Passage,
    /// The passages just before it, nearest last.
    pub before: Vec<Passage>,
    /// The passages just after it, nearest first.
    pub after: Vec<Passage>,
}

impl From<ChunkRow> for Passage {
    fn from(c: ChunkRow) -> Passage {
        Passage {
            id: c.id,
            document_id: c.document_id.to_string(),
            collection: c.collection,
            title: c.title,
            source: c.source,
            locator: c.locator,
            text: c.text,
        }
    }
}

/// The first `max` characters of `text`, cut at a word boundary, with `…` when cut.
fn snippet(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => {
            let cut = text[..end].rfind(char::is_whitespace).filter(|&i| i > end / 2).unwrap_or(end);
            format!("{}…", text[..cut].trim_end())
        }
    }
}

impl Rag {
    /// The best `k` passages of `collections` for `query`: hybrid retrieval, or keyword search
    /// alone while the embedding model is unreachable.
    pub async fn search(&self, collections: &[String], query: &str, k: usize) -> Result<Vec<SearchHit>, RagError> {
        let query_vector = match self.embed_query(query).await {
            Ok(v) => Some(v),
            Err(RagError::Ollama(e)) => {
                super::error::count_ollama_error(&e);
                tracing::warn!(error = %e, "query embedding failed; keyword search only");
                None
            }
            Err(e) => return Err(e),
        };
        let sources = retrieval::retrieve(
            self.indexes(),
            self.store(),
            &self.config().retrieval,
            collections,
            query,
            query_vector.as_deref(),
            k,
        )
        .await?;
        Ok(sources
            .into_iter()
            .map(|s| SearchHit {
                id: s.chunk.id,
                document_id: s.chunk.document_id.to_string(),
                snippet: snippet(&s.chunk.text, SNIPPET_CHARS),
                collection: s.chunk.collection,
                title: s.chunk.title,
                source: s.chunk.source,
                locator: s.chunk.locator,
                score: s.score,
            })
            .collect())
    }

    /// Passage `id` with up to `around` passages on each side, if it belongs to `collections`.
    pub async fn passage(
        &self,
        collections: &[String],
        id: i64,
        around: u32,
    ) -> Result<Option<PassageContext>, RagError> {
        let ids = self.store().neighbour_ids(id, i64::from(around.min(MAX_AROUND))).await?;
        let mut rows = self.store().chunks(&ids).await?;
        rows.retain(|r| collections.contains(&r.collection));
        rows.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
        let Some(at) = rows.iter().position(|r| r.id == id) else { return Ok(None) };
        let after = rows.split_off(at + 1);
        let passage = rows.pop().map(Passage::from);
        Ok(passage.map(|passage| PassageContext {
            passage,
            before: rows.into_iter().map(Passage::from).collect(),
            after: after.into_iter().map(Passage::from).collect(),
        }))
    }
}

impl Core {
    /// [`Rag::search`] in the scope's collections, for who may ask there; `k` is kept within
    /// 1..=[`MAX_SEARCH_K`].
    pub async fn search(
        &self,
        scope: &Scope,
        actor: &Actor,
        query: &str,
        k: usize,
    ) -> Result<Vec<SearchHit>, GatewayError> {
        if !self.allows(scope, actor, Action::Ask) {
            return Err(GatewayError::Denied);
        }
        let k = k.clamp(1, MAX_SEARCH_K);
        self.rag().search(&self.collections(scope), query.trim(), k).await.map_err(RagError::into_gateway_error)
    }

    /// [`Rag::passage`] in the scope's collections, for who may ask there; a passage of another
    /// collection is "not found", exactly like one that does not exist.
    pub async fn passage(
        &self,
        scope: &Scope,
        actor: &Actor,
        id: i64,
        around: u32,
    ) -> Result<PassageContext, GatewayError> {
        if !self.allows(scope, actor, Action::Ask) {
            return Err(GatewayError::Denied);
        }
        self.rag()
            .passage(&self.collections(scope), id, around)
            .await
            .map_err(RagError::into_gateway_error)?
            .ok_or_else(|| GatewayError::NotFound(format!("passage {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_cut_at_a_word() {
        assert_eq!(snippet("  short text ", 100), "short text");
        assert_eq!(snippet("one two three four", 9), "one two…");
        assert_eq!(snippet("ééééé", 3), "ééé…");
    }
}
