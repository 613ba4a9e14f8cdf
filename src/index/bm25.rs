//! BM25 over chunks with tantivy: derived data that follows the store's change log.
//!
//! Each chunk is indexed with three text fields: its text, its document's title, and the
//! headings above it ([`crate::ingest::context::headings`]), analysed as Lucene's English
//! analyzer does ([`analyzer`]). [`score`] ranks them with BM25 computed from tantivy's postings,
//! with tunable `k1` and `b`, the three fields weighted into one (BM25F). The collection is a raw
//! (untokenised) field: only the asker's collections are kept, before the top-k cut. The
//! watermark (the last change-log sequence number applied) is stored as the payload of each
//! tantivy commit: index contents and watermark change together or not at all.
//!
//! Only the process holding the indexes' writer lock ([`super::lock`]) opens it for writing
//! ([`Bm25Index::open`], which may rebuild it); any other process opens it read-only
//! ([`Bm25Index::open_read_only`]) and never touches its files.

mod analyzer;
pub mod score;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use tantivy::schema::{FAST, Field, IndexRecordOption, NumericOptions, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, TERMINATED, Term, doc};

use analyzer::analyzer;
pub use score::Bm25Params;
use score::Weighted;

use super::lock::WriterLock;

const TOKENIZER: &str = "footnote_en";
const WRITER_MEMORY: usize = 50_000_000;
/// Bump when the schema or the analyzer changes: an index of another version is rebuilt.
/// 2: heading and document fields, Lucene-like tokenizer.
const SCHEMA_VERSION: u32 = 2;

/// Why the BM25 index failed.
#[derive(Debug, thiserror::Error)]
pub enum Bm25Error {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("open directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// A change was asked of an index opened read-only (another process holds the writer lock).
    #[error("the index is open read-only: another process keeps it")]
    ReadOnly,
    /// Opened read-only, the index is missing or from another version: only the process holding
    /// the writer lock may build it.
    #[error("the index in {0} is missing or being rebuilt")]
    NotReady(String),
}

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    document_id: Field,
    collection: Field,
    title: Field,
    headings: Field,
    body: Field,
}

/// The BM25 index of one Footnote instance.
pub struct Bm25Index {
    index: Index,
    reader: IndexReader,
    /// `None` when opened read-only.
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
    analyzer: TextAnalyzer,
}

/// One chunk as the index stores it.
#[derive(Clone, Copy, Debug)]
pub struct IndexedChunk<'a> {
    pub chunk_id: u64,
    pub document_id: u64,
    pub collection: &'a str,
    pub title: &'a str,
    /// The headings above the chunk, one per line.
    pub headings: &'a str,
    pub body: &'a str,
}

/// A chunk found by [`Bm25Index::search`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Hit {
    pub chunk_id: u64,
    pub document_id: u64,
    pub score: f32,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        chunk_id: builder.add_u64_field("chunk_id", NumericOptions::default().set_indexed().set_fast()),
        document_id: builder.add_u64_field("document_id", FAST),
        collection: builder.add_text_field("collection", STRING),
        title: builder.add_text_field("title", text.clone()),
        headings: builder.add_text_field("headings", text.clone()),
        body: builder.add_text_field("body", text),
    };
    (builder.build(), fields)
}

/// The commit payload: schema version and watermark.
fn payload(watermark: i64) -> String {
    format!("v{SCHEMA_VERSION}:{watermark}")
}

fn parse_payload(payload: Option<&str>) -> Option<i64> {
    let rest = payload?.strip_prefix(&format!("v{SCHEMA_VERSION}:"))?;
    rest.parse().ok()
}

/// True when `index` has this build's schema and a readable watermark.
fn usable(index: &Index, schema: &Schema) -> bool {
    index.schema() == *schema
        && index.load_metas().map(|m| parse_payload(m.payload.as_deref()).is_some()).unwrap_or(false)
}

impl Bm25Index {
    /// Opens the index in `dir`, or creates it. An index of another schema version, or one that
    /// cannot be opened, is wiped and starts from watermark 0 (the caller replays the log). The
    /// writer lock is the caller's proof that no other process uses the directory meanwhile.
    pub fn open(dir: &Path, _lock: &WriterLock) -> Result<Self, Bm25Error> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let existing = Index::open_in_dir(dir).ok().filter(|index| {
            let ok = usable(index, &schema);
            if !ok {
                tracing::warn!(dir = %dir.display(), "BM25 index is from another version or unreadable; rebuilding it");
            }
            ok
        });
        let index = match existing {
            Some(index) => index,
            None => {
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
                }
                let index = Index::create_in_dir(dir, schema)?;
                index.tokenizers().register(TOKENIZER, analyzer());
                let mut writer: IndexWriter = index.writer(WRITER_MEMORY)?;
                let mut commit = writer.prepare_commit()?;
                commit.set_payload(&payload(0));
                commit.commit()?;
                index
            }
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        let writer = index.writer(WRITER_MEMORY)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Bm25Index { index, reader, writer: Some(Mutex::new(writer)), fields, analyzer: analyzer() })
    }

    /// Opens the index that another process keeps (it holds the writer lock), for searching
    /// only: nothing in `dir` is created, changed or deleted, and tantivy's own writer lock is
    /// never taken. [`refresh`](Self::refresh) shows that process's later commits.
    pub fn open_read_only(dir: &Path) -> Result<Self, Bm25Error> {
        let (schema, fields) = schema();
        let not_ready = || Bm25Error::NotReady(dir.display().to_string());
        let index = Index::open_in_dir(dir).map_err(|_| not_ready())?;
        if !usable(&index, &schema) {
            return Err(not_ready());
        }
        index.tokenizers().register(TOKENIZER, analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Bm25Index { index, reader, writer: None, fields, analyzer: analyzer() })
    }

    /// True when this process may change the index.
    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// Shows the latest commit (of this process or of the one keeping the index).
    pub fn refresh(&self) -> Result<(), Bm25Error> {
        Ok(self.reader.reload()?)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, Bm25Error> {
        let writer = self.writer.as_ref().ok_or(Bm25Error::ReadOnly)?;
        Ok(writer.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The last change-log sequence number this index holds.
    pub fn watermark(&self) -> i64 {
        self.index.load_metas().ok().and_then(|m| parse_payload(m.payload.as_deref())).unwrap_or(0)
    }

    /// Applies a batch of changes and commits them with the new watermark, atomically.
    pub fn apply(&self, adds: &[IndexedChunk<'_>], deletes: &[u64], watermark: i64) -> Result<(), Bm25Error> {
        let mut writer = self.writer()?;
        for &id in deletes {
            writer.delete_term(Term::from_field_u64(self.fields.chunk_id, id));
        }
        for chunk in adds {
            // A re-added id (replayed log) must not appear twice.
            writer.delete_term(Term::from_field_u64(self.fields.chunk_id, chunk.chunk_id));
            writer.add_document(doc!(
                self.fields.chunk_id => chunk.chunk_id,
                self.fields.document_id => chunk.document_id,
                self.fields.collection => chunk.collection,
                self.fields.title => chunk.title,
                self.fields.headings => chunk.headings,
                self.fields.body => chunk.body,
            ))?;
        }
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload(watermark));
        commit.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Deletes everything (for `footnote reindex`), leaving watermark 0.
    pub fn clear(&self) -> Result<(), Bm25Error> {
        let mut writer = self.writer()?;
        writer.delete_all_documents()?;
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload(0));
        commit.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Number of chunks indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The analysed terms of `text` (what BM25 matches on).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            let term = stream.token().text.clone();
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        terms
    }

    /// Top `k` chunks for `query` among `collections`, best first, with the default parameters.
    pub fn search(&self, collections: &[String], query: &str, k: usize) -> Result<Vec<Bm25Hit>, Bm25Error> {
        self.search_with(collections, query, k, &Bm25Params::default())
    }

    /// Top `k` chunks for `query` among `collections`, best first, scored by [`score`] with
    /// `params`.
    pub fn search_with(
        &self,
        collections: &[String],
        query: &str,
        k: usize,
        params: &Bm25Params,
    ) -> Result<Vec<Bm25Hit>, Bm25Error> {
        let terms = self.terms(query);
        if terms.is_empty() || collections.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let f = self.fields;
        let fields = [
            Weighted { field: f.body, weight: 1.0 },
            Weighted { field: f.title, weight: params.title_weight },
            Weighted { field: f.headings, weight: params.headings_weight },
        ];
        let searcher = self.reader.searcher();
        let mut in_scope = |segment: u32, docs: &[DocId]| -> tantivy::Result<Vec<bool>> {
            let index = searcher.segment_reader(segment).inverted_index(f.collection)?;
            let mut keep = vec![false; docs.len()];
            for collection in collections {
                let term = Term::from_field_text(f.collection, collection);
                let Some(mut postings) = index.read_postings(&term, IndexRecordOption::Basic)? else { continue };
                for (flag, &doc) in keep.iter_mut().zip(docs) {
                    let at = if postings.doc() < doc { postings.seek(doc) } else { postings.doc() };
                    if at == TERMINATED {
                        break;
                    }
                    *flag |= at == doc;
                }
            }
            Ok(keep)
        };
        let hits = score::score(&searcher, &fields, &terms, params, k, &mut in_scope)?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let fast = searcher.segment_reader(hit.segment).fast_fields();
            let (Some(chunk_id), document_id) =
                (fast.u64("chunk_id")?.first(hit.doc), fast.u64("document_id")?.first(hit.doc))
            else {
                continue;
            };
            out.push(Bm25Hit { chunk_id, document_id: document_id.unwrap_or(0), score: hit.score });
        }
        Ok(out)
    }

    /// The documents of these chunks, for those the index holds.
    pub fn document_ids(&self, chunk_ids: &[u64]) -> Result<HashMap<u64, u64>, Bm25Error> {
        let searcher = self.reader.searcher();
        let mut out = HashMap::with_capacity(chunk_ids.len());
        for reader in searcher.segment_readers() {
            let index = reader.inverted_index(self.fields.chunk_id)?;
            let documents = reader.fast_fields().u64("document_id")?;
            let wanted: Vec<u64> = chunk_ids.iter().copied().filter(|id| !out.contains_key(id)).collect();
            for id in wanted {
                let term = Term::from_field_u64(self.fields.chunk_id, id);
                let Some(mut postings) = index.read_postings(&term, IndexRecordOption::Basic)? else { continue };
                // A replayed chunk may have a deleted copy beside its live one.
                let mut doc = postings.doc();
                while doc != TERMINATED && reader.alive_bitset().is_some_and(|a| a.is_deleted(doc)) {
                    doc = postings.advance();
                }
                if let Some(document) = (doc != TERMINATED).then(|| documents.first(doc)).flatten() {
                    out.insert(id, document);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
