//! Storing one upload: [`Rag::ingest`], and the two halves it shares with the bulk pipeline
//! ([`super::bulk`]): preparing an upload (limits, duplicate check, extraction, chunking) and
//! storing a prepared document with its embeddings in one transaction.

use footnote_adapter::{IngestError, IngestOutcome, IngestReceipt, Upload};

use super::{Rag, RagError, error};
use crate::ingest::{self, ChunkDraft, Extracted};
use crate::store::{DocumentRow, Inserted, NewChunk, NewDocument};

pub(super) fn receipt(row: DocumentRow, outcome: IngestOutcome, embeddings_pending: bool) -> IngestReceipt {
    IngestReceipt {
        document_id: row.id.to_string(),
        title: row.title,
        collection: row.collection,
        chunks: row.chunks as u32,
        pages: row.pages.map(|p| p as u32),
        outcome,
        embeddings_pending,
    }
}

/// An upload read and cut into chunks, ready to be embedded and stored.
pub(super) struct Prepared {
    pub upload: Upload,
    pub hash: String,
    pub size: u64,
    pub extracted: Extracted,
    /// Never empty.
    pub drafts: Vec<ChunkDraft>,
    /// Whether it may replace a document of the same name (see [`Rag::ingest_as`]).
    pub may_replace: bool,
}

/// What preparing an upload led to.
pub(super) enum Preparation {
    Ready(Prepared),
    /// Nothing to embed or store: a duplicate's receipt, or why the upload was refused.
    Finished(Result<IngestReceipt, RagError>),
}

impl Rag {
    /// Checks the size and whether the content is already stored, then extracts and chunks (on
    /// blocking threads).
    pub(super) async fn prepare(&self, collection: &str, mut upload: Upload) -> Preparation {
        let size = upload.bytes.len() as u64;
        if size > self.limits.max_file_size {
            return Preparation::Finished(Err(RagError::Ingest(IngestError::TooLarge(format!(
                "the limit is {}",
                bytesize::ByteSize::b(self.limits.max_file_size).display().iec()
            )))));
        }
        let hash = blake3::hash(&upload.bytes).to_hex().to_string();
        match self.store.document_by_hash(collection, &hash).await {
            Ok(Some(row)) => return Preparation::Finished(Ok(receipt(row, IngestOutcome::Duplicate, false))),
            Ok(None) => {}
            Err(e) => return Preparation::Finished(Err(e.into())),
        }
        let bytes = std::mem::take(&mut upload.bytes);
        let extracted = match ingest::extract(&upload.file_name, upload.mime.as_deref(), bytes, &self.limits).await {
            Ok(extracted) => extracted,
            Err(e) => return Preparation::Finished(Err(RagError::Ingest(e))),
        };
        let chunker = self.chunker.clone();
        let chunked = tokio::task::spawn_blocking(move || {
            let drafts = chunker.chunk(&extracted);
            (extracted, drafts)
        })
        .await;
        let (extracted, drafts) = match chunked {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(file = %upload.file_name, error = %e, "chunking failed");
                return Preparation::Finished(Err(RagError::Ingest(IngestError::Internal)));
            }
        };
        if drafts.is_empty() {
            let refused = IngestError::Unreadable("it contains no text I can read".into());
            return Preparation::Finished(Err(RagError::Ingest(refused)));
        }
        Preparation::Ready(Prepared { upload, hash, size, extracted, drafts, may_replace: true })
    }

    /// Stores a prepared document with one embedding (or `None`: queued) per chunk, in one
    /// transaction. The indexes are not caught up here.
    pub(super) async fn store_prepared(
        &self,
        collection: &str,
        doc: Prepared,
        embeddings: Vec<Option<Vec<f32>>>,
    ) -> Result<IngestReceipt, RagError> {
        debug_assert_eq!(doc.drafts.len(), embeddings.len());
        let pending = embeddings.iter().any(Option::is_none);
        let chunks = doc
            .drafts
            .into_iter()
            .zip(embeddings)
            .map(|(d, embedding)| NewChunk { text: d.text, locator: d.locator, tokens: d.tokens, embedding })
            .collect();
        let new = NewDocument {
            collection: collection.to_owned(),
            source: doc.upload.file_name,
            title: doc.extracted.title,
            kind: doc.extracted.kind.as_str().to_owned(),
            content_hash: doc.hash,
            bytes: doc.size as i64,
            pages: doc.extracted.pages.map(i64::from),
            origin: doc.upload.origin,
            chunks,
            may_replace: doc.may_replace,
        };
        let (row, outcome) = match self.store.insert_document(new).await? {
            Inserted::New(row) => (row, IngestOutcome::Added),
            Inserted::Replaced { new, old } => (new, IngestOutcome::Replaced { previous_id: old.id.to_string() }),
            Inserted::Duplicate(row) => (row, IngestOutcome::Duplicate),
            Inserted::SourceTaken(old) => {
                let taken = IngestError::NameTaken { name: old.source, document_id: old.id.to_string() };
                return Err(RagError::Ingest(taken));
            }
        };
        let pending = pending && row.pending_embeddings > 0;
        Ok(receipt(row, outcome, pending))
    }

    /// Stores an upload in `collection`: extract, chunk, embed (or queue the embeddings when the
    /// model is unreachable), commit the document with all its chunks in one transaction, and
    /// catch the indexes up. A document of the same name is replaced. Many files at once:
    /// [`Rag::ingest_many`].
    pub async fn ingest(&self, collection: &str, upload: Upload) -> Result<IngestReceipt, RagError> {
        self.ingest_as(collection, upload, true).await
    }

    /// [`Rag::ingest`] for an uploader who may (`may_replace`) or may not forget documents in
    /// `collection`: replacing a document of the same name forgets it, so without that right the
    /// upload is refused ([`IngestError::NameTaken`]) and the other document stays.
    pub async fn ingest_as(
        &self,
        collection: &str,
        upload: Upload,
        may_replace: bool,
    ) -> Result<IngestReceipt, RagError> {
        let mut doc = match self.prepare(collection, upload).await {
            Preparation::Ready(doc) => doc,
            Preparation::Finished(result) => return result,
        };
        doc.may_replace = may_replace;
        let inputs: Vec<String> =
            doc.drafts.iter().map(|d| self.embedding_input(&doc.extracted.title, &d.locator, &d.text)).collect();
        let embeddings = match self.embed_documents(&inputs).await {
            Ok(vectors) => vectors.into_iter().map(Some).collect(),
            Err(RagError::Ollama(e)) => {
                error::count_ollama_error(&e);
                tracing::warn!(error = %e, file = %doc.upload.file_name, "embedding failed; stored for keyword search, embeddings queued");
                vec![None; doc.drafts.len()]
            }
            Err(e) => return Err(e),
        };
        let receipt = self.store_prepared(collection, doc, embeddings).await?;
        self.indexes.catch_up(self.store.as_ref()).await?;
        Ok(receipt)
    }
}
