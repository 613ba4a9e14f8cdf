//! Chunking: sections are cut into pieces of at most `chunk_tokens` cl100k tokens with
//! `overlap` tokens shared between neighbours, by text-splitter (Markdown-aware for Markdown
//! documents). A chunk never spans two sections, so its locator is exact.

use std::sync::{Arc, LazyLock};

use footnote_adapter::Locator;
use serde::{Deserialize, Serialize};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tiktoken_rs::CoreBPE;

use super::{DocKind, Extracted};

/// The cl100k tokenizer, built once per process.
static CL100K: LazyLock<CoreBPE> =
    LazyLock::new(|| tiktoken_rs::cl100k_base().expect("the cl100k tokenizer is built into tiktoken-rs"));

/// Tokens in `text` by the cl100k tokenizer (the one chunk sizes are measured with).
pub fn count_tokens(text: &str) -> usize {
    CL100K.encode_ordinary(text).len()
}

/// One chunk to store: its text, where it stands, and its size in tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDraft {
    /// The chunk's text, trimmed; never empty.
    pub text: String,
    /// The locator of the section it came from.
    pub locator: Locator,
    /// cl100k tokens in `text`.
    pub tokens: u32,
}

/// Cuts extracted documents into token-sized chunks. Cheap to clone; clones share the
/// splitters.
#[derive(Clone)]
pub struct Chunker {
    inner: Arc<Splitters>,
}

struct Splitters {
    text: TextSplitter<&'static CoreBPE>,
    markdown: MarkdownSplitter<&'static CoreBPE>,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").finish_non_exhaustive()
    }
}

impl Chunker {
    /// Chunks of at most `chunk_tokens` tokens (at least 1), neighbours sharing up to `overlap`
    /// tokens (kept below `chunk_tokens`).
    pub fn new(chunk_tokens: usize, overlap: usize) -> Chunker {
        let chunk_tokens = chunk_tokens.max(1);
        let overlap = overlap.min(chunk_tokens - 1);
        let config = || {
            // Cannot fail: overlap < chunk_tokens.
            ChunkConfig::new(chunk_tokens)
                .with_overlap(overlap)
                .unwrap_or_else(|_| ChunkConfig::new(chunk_tokens))
                .with_sizer(&*CL100K)
        };
        let inner = Splitters { text: TextSplitter::new(config()), markdown: MarkdownSplitter::new(config()) };
        Chunker { inner: Arc::new(inner) }
    }

    /// The chunks of every section, in document order.
    pub fn chunk(&self, doc: &Extracted) -> Vec<ChunkDraft> {
        let mut drafts = Vec::new();
        for section in &doc.sections {
            let pieces: Box<dyn Iterator<Item = &str>> = match doc.kind {
                DocKind::Markdown => Box::new(self.inner.markdown.chunks(&section.text)),
                _ => Box::new(self.inner.text.chunks(&section.text)),
            };
            for piece in pieces {
                let text = piece.trim();
                if text.is_empty() {
                    continue;
                }
                let tokens = u32::try_from(count_tokens(text)).unwrap_or(u32::MAX);
                drafts.push(ChunkDraft { text: text.to_owned(), locator: section.locator.clone(), tokens });
            }
        }
        drafts
    }
}
