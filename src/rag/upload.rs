//! Storing one upload: [`Rag::ingest`], and the two halves it shares with the bulk pipeline
//! ([`super::bulk`]): preparing an upload (limits, duplicate check, then extraction and chunking
//! in a worker process) and storing a prepared document with its embeddings in one transaction.
//!
//! A large upload is not embedded whole before it is stored: its chunks are embedded and written
//! to a stage batch by batch ([`STAGE_BATCH`] at a time, the next batch embedding while the last
//! one is written), then committed in one step (see [`crate::store::Store::stage_begin`]), so
//! the service holds one batch of vectors at a time instead of all of them.

use std::time::Duration;

use footnote_adapter::{IngestError, IngestOutcome, IngestReceipt, Upload};

use super::{Rag, RagError, error};
use crate::ingest::{ChunkDraft, Chunked, DocKind};
use crate::store::{DocumentRow, Inserted, NewChunk, NewDocument};

/// Chunks embedded and staged together; an upload of more chunks is stored in stages.
pub const STAGE_BATCH: usize = 256;
/// The shortest lease of a stage (renewed by every batch).
const STAGE_LEASE: Duration = Duration::from_secs(600);

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
    pub title: String,
    pub kind: DocKind,
    pub pages: Option<u32>,
    /// Never empty.
    pub drafts: Vec<ChunkDraft>,
    /// Whether it may replace a document of the same name (see [`Rag::ingest_as`]).
    pub may_replace: bool,
}

impl Prepared {
    /// The document row to store (its chunks are added by the caller).
    fn document(&self, collection: &str, chunks: Vec<NewChunk>) -> NewDocument {
        NewDocument {
            collection: collection.to_owned(),
            source: self.upload.file_name.clone(),
            title: self.title.clone(),
            kind: self.kind.as_str().to_owned(),
            content_hash: self.hash.clone(),
            bytes: self.size as i64,
            pages: self.pages.map(i64::from),
            origin: self.upload.origin.clone(),
            chunks,
            may_replace: self.may_replace,
        }
    }
}

/// What preparing an upload led to.
pub(super) enum Preparation {
    Ready(Prepared),
    /// Nothing to embed or store: a duplicate's receipt, or why the upload was refused.
    Finished(Result<IngestReceipt, RagError>),
}

/// The receipt's row and outcome, or the refusal of an upload that may not replace the
/// document of the same name.
fn outcome(inserted: Inserted) -> Result<(DocumentRow, IngestOutcome), RagError> {
    Ok(match inserted {
        Inserted::New(row) => (row, IngestOutcome::Added),
        Inserted::Replaced { new, old } => (new, IngestOutcome::Replaced { previous_id: old.id.to_string() }),
        Inserted::Duplicate(row) => (row, IngestOutcome::Duplicate),
        Inserted::SourceTaken(old) => {
            let taken = IngestError::NameTaken { name: old.source, document_id: old.id.to_string() };
            return Err(RagError::Ingest(taken));
        }
    })
}

fn new_chunks(drafts: Vec<ChunkDraft>, embeddings: Vec<Option<Vec<f32>>>) -> Vec<NewChunk> {
    drafts
        .into_iter()
        .zip(embeddings)
        .map(|(d, embedding)| NewChunk { text: d.text, locator: d.locator, tokens: d.tokens, embedding })
        .collect()
}

impl Rag {
    /// Checks the size and whether the content is already stored, then extracts and chunks in a
    /// worker process.
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
        let chunking = (self.cfg.ingest.chunk_tokens, self.cfg.ingest.chunk_overlap);
        let read = self.workers.read(&upload.file_name, upload.mime.as_deref(), bytes, &self.limits, chunking).await;
        match read {
            Ok(Chunked { title, kind, pages, chunks }) => Preparation::Ready(Prepared {
                upload,
                hash,
                size,
                title,
                kind,
                pages,
                drafts: chunks,
                may_replace: true,
            }),
            Err(e) => Preparation::Finished(Err(RagError::Ingest(e))),
        }
    }

    /// Stores a prepared document with one embedding (or `None`: queued) per chunk, in one
    /// transaction. The indexes are not caught up here.
    pub(super) async fn store_prepared(
        &self,
        collection: &str,
        mut doc: Prepared,
        embeddings: Vec<Option<Vec<f32>>>,
    ) -> Result<IngestReceipt, RagError> {
        debug_assert_eq!(doc.drafts.len(), embeddings.len());
        let pending = embeddings.iter().any(Option::is_none);
        let chunks = new_chunks(std::mem::take(&mut doc.drafts), embeddings);
        let (row, outcome) = outcome(self.store.insert_document(doc.document(collection, chunks)).await?)?;
        let pending = pending && row.pending_embeddings > 0;
        Ok(receipt(row, outcome, pending))
    }

    /// Embeds texts for storing them: `None` for each when the embedder failed (the caller stores
    /// them for keyword search with their embeddings queued).
    async fn embed_or_queue(&self, file: &str, texts: &[String]) -> Result<Vec<Option<Vec<f32>>>, RagError> {
        match self.embed_documents(texts).await {
            Ok(vectors) => Ok(vectors.into_iter().map(Some).collect()),
            Err(RagError::Ollama(e)) => {
                error::count_ollama_error(&e);
                tracing::warn!(error = %e, file, "embedding failed; stored for keyword search, embeddings queued");
                Ok(vec![None; texts.len()])
            }
            Err(e) => Err(e),
        }
    }

    /// Stores a large prepared document through a stage: [`STAGE_BATCH`] chunks at a time are
    /// embedded (while the previous batch is written) and staged, then the stage is committed.
    /// Once the embedder fails, the remaining chunks are staged with their embeddings queued.
    async fn store_staged(&self, collection: &str, mut doc: Prepared) -> Result<IngestReceipt, RagError> {
        let lease = STAGE_LEASE.max(self.cfg.ollama.request_timeout * 3);
        let stage = self.store.stage_begin(collection, lease).await?;
        let file = doc.upload.file_name.clone();
        let drafts = std::mem::take(&mut doc.drafts);
        let result = async {
            let mut pending = false;
            let mut embedder_down = false;
            let mut written = 0usize;
            let mut staging: Option<Vec<NewChunk>> = None;
            let mut batches = drafts.into_iter().peekable();
            while batches.peek().is_some() || staging.is_some() {
                let batch: Vec<ChunkDraft> = batches.by_ref().take(STAGE_BATCH).collect();
                let texts: Vec<String> =
                    batch.iter().map(|d| self.embedding_input(&doc.title, &d.locator, &d.text)).collect();
                let embed = async {
                    if texts.is_empty() {
                        Ok(Vec::new())
                    } else if embedder_down {
                        Ok(vec![None; texts.len()])
                    } else {
                        self.embed_or_queue(&file, &texts).await
                    }
                };
                let write = async {
                    match staging.take() {
                        Some(chunks) => {
                            self.store.stage_chunks(stage, written, &chunks, lease).await.map(|()| chunks.len())
                        }
                        None => Ok(0),
                    }
                };
                let (embeddings, wrote) = tokio::join!(embed, write);
                let embeddings = embeddings?;
                written += wrote?;
                if embeddings.iter().any(Option::is_none) {
                    pending = true;
                    embedder_down = true;
                }
                if !batch.is_empty() {
                    staging = Some(new_chunks(batch, embeddings));
                }
            }
            let (row, outcome) = outcome(self.store.stage_commit(stage, doc.document(collection, Vec::new())).await?)?;
            let pending = pending && row.pending_embeddings > 0;
            Ok::<_, RagError>(receipt(row, outcome, pending))
        }
        .await;
        if result.is_err()
            && let Err(e) = self.store.stage_abort(stage).await
        {
            tracing::warn!(error = %e, stage, "could not drop a failed upload's stage; it goes when its lease runs out");
        }
        result
    }

    /// Stores an upload in `collection`: extract and chunk (in a worker process), embed (or
    /// queue the embeddings when the model is unreachable), commit the document with all its
    /// chunks in one transaction, and catch the indexes up. A large upload goes through a stage
    /// ([`STAGE_BATCH`]). Many files at once: [`Rag::ingest_many`].
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
        let receipt = if doc.drafts.len() > STAGE_BATCH {
            self.store_staged(collection, doc).await?
        } else {
            let inputs: Vec<String> =
                doc.drafts.iter().map(|d| self.embedding_input(&doc.title, &d.locator, &d.text)).collect();
            let embeddings = self.embed_or_queue(&doc.upload.file_name, &inputs).await?;
            drop(inputs);
            self.store_prepared(collection, doc, embeddings).await?
        };
        self.indexes.catch_up(self.store.as_ref()).await?;
        Ok(receipt)
    }
}
