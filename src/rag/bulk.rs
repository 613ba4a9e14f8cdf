//! Ingesting many uploads at once: [`Rag::ingest_many`], a pipeline that keeps the embedder busy.
//!
//! One upload at a time leaves the embedding model idle while a file is read, chunked, stored and
//! indexed, and sends a small file's chunks as one small embed call. Here three stages run
//! concurrently, joined by bounded channels:
//!
//! 1. *prepare*: the next [`PREPARE_AHEAD`] uploads are checked, extracted and chunked (in the
//!    extraction workers, as many at once as there are workers) while earlier ones embed;
//! 2. *pack*: the chunks of consecutive documents go into one queue that is cut into full
//!    `embed_batch_size` batches, up to `embed_parallelism` requests in flight; a partial batch
//!    goes out only when a request slot is free and no further chunk is ready;
//! 3. *store*: vectors come back in queue order, so the first `n` of them belong to the oldest
//!    waiting document of `n` chunks; each document is stored with its own vectors in its own
//!    transaction, and receipts come out in input order.
//!
//! The guarantees of [`Rag::ingest`] hold per upload: all of a document's chunks or none are
//! stored; a refused file does not stop the others; when the embedder fails, the affected
//! documents are stored for keyword search with their embeddings queued for the back-fill. What
//! changes is when the indexes see the new chunks: they catch up at most every [`INDEX_EVERY`]
//! while the ingest runs (one BM25 commit for many files), and once more before the result
//! stream ends. The change log makes this safe: a crash before a catch-up loses nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use footnote_adapter::{IngestError, IngestReceipt, Upload};
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::upload::{Preparation, Prepared};
use super::{Rag, RagError, error};

/// Uploads prepared concurrently ahead of the embedder (more when there are more extraction
/// workers).
const PREPARE_AHEAD: usize = 4;
/// Capacity of the channels between stages (documents or batches).
const QUEUED: usize = 64;
/// While a bulk ingest runs, the indexes catch up at most this often (and once at the end).
pub const INDEX_EVERY: Duration = Duration::from_millis(250);

/// One input of [`Rag::ingest_many`]: an upload, or why it could not be read (which becomes its
/// result).
pub type BulkInput = Result<Upload, IngestError>;

/// What the pack stage hands to the store stage, in order.
enum Packed {
    /// A document whose chunks are the next ones in the batches that follow.
    Doc(Prepared),
    /// The vectors of the next `inputs` chunks; `None` when the embedder failed.
    Batch { inputs: usize, vectors: JoinHandle<Option<Vec<Vec<f32>>>> },
    /// A result decided before embedding (refused, duplicate).
    Finished(Result<IngestReceipt, RagError>),
}

/// A result the store stage still owes, in input order.
enum Owed {
    Doc(Prepared),
    Finished(Result<IngestReceipt, RagError>),
}

impl Rag {
    /// Stores many uploads in `collection` through the pipeline described in [`self`](self):
    /// one result per input, in input order, each as [`Rag::ingest`] would give it. The stream
    /// ends once every stored document is in the indexes. Dropping it stops the work after the
    /// documents in flight.
    pub fn ingest_many<S>(
        self: &Arc<Self>,
        collection: &str,
        uploads: S,
    ) -> BoxStream<'static, Result<IngestReceipt, RagError>>
    where
        S: Stream<Item = BulkInput> + Send + 'static,
    {
        let (prepared_tx, prepared_rx) = mpsc::channel(QUEUED);
        let (packed_tx, packed_rx) = mpsc::channel(QUEUED);
        let (results_tx, results_rx) = mpsc::channel(QUEUED);
        self.workers.warm();
        let tracker = self.lifecycle.tracker();
        tracker.spawn(prepare_all(self.clone(), collection.to_owned(), uploads, prepared_tx));
        tracker.spawn(pack(self.clone(), prepared_rx, packed_tx));
        tracker.spawn(store_all(self.clone(), collection.to_owned(), packed_rx, results_tx));
        futures::stream::unfold(results_rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).boxed()
    }
}

/// Stage 1: checks, extracts and chunks the uploads, [`PREPARE_AHEAD`] at a time, in order.
async fn prepare_all<S>(rag: Arc<Rag>, collection: String, uploads: S, tx: mpsc::Sender<Preparation>)
where
    S: Stream<Item = BulkInput> + Send + 'static,
{
    let collection = Arc::new(collection);
    // Each preparation is a task of its own, so that it runs on while this loop waits for room
    // in the channel: a future merely buffered here would not be polled meanwhile, and would
    // keep the database connection it was using (or had just been handed) for as long as the
    // embedder took. A preparation nobody waits for any more is cancelled.
    let prepared = uploads
        .map(|input| {
            let (rag, collection) = (rag.clone(), collection.clone());
            AbortOnDropHandle::new(tokio::spawn(async move {
                match input {
                    Ok(upload) => rag.prepare(&collection, upload).await,
                    Err(refused) => Preparation::Finished(Err(RagError::Ingest(refused))),
                }
            }))
        })
        .buffered(rag.workers.size().max(PREPARE_AHEAD))
        .map(|joined| {
            joined.unwrap_or_else(|error| {
                tracing::error!(%error, "preparing an upload failed");
                Preparation::Finished(Err(RagError::Ingest(IngestError::Internal)))
            })
        });
    let mut prepared = std::pin::pin!(prepared);
    while let Some(p) = prepared.next().await {
        if tx.send(p).await.is_err() {
            break;
        }
    }
}

/// Stage 2: queues the chunks of the prepared documents and sends them in batches.
async fn pack(rag: Arc<Rag>, mut rx: mpsc::Receiver<Preparation>, tx: mpsc::Sender<Packed>) {
    let batch_size = rag.cfg.ollama.embed_batch_size.max(1);
    let slots = Arc::new(Semaphore::new(rag.cfg.ollama.embed_parallelism.max(1)));
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut open = true;
    loop {
        while open && queue.len() < batch_size {
            match rx.try_recv() {
                Ok(p) => {
                    if !forward(&rag, p, &mut queue, &tx).await {
                        return;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if queue.is_empty() {
            let Some(p) = rx.recv().await else { return };
            if !forward(&rag, p, &mut queue, &tx).await {
                return;
            }
            continue;
        }
        let permit = if queue.len() >= batch_size || !open {
            slots.clone().acquire_owned().await
        } else {
            // A partial batch and nothing else ready: it goes when a request slot is free,
            // unless more chunks arrive first.
            tokio::select! {
                biased;
                p = rx.recv() => {
                    match p {
                        Some(p) => {
                            if !forward(&rag, p, &mut queue, &tx).await {
                                return;
                            }
                        }
                        None => open = false,
                    }
                    continue;
                }
                permit = slots.clone().acquire_owned() => permit,
            }
        };
        let Ok(permit) = permit else { return };
        let texts: Vec<String> = queue.drain(..queue.len().min(batch_size)).collect();
        let inputs = texts.len();
        let vectors = tokio::spawn(embed_batch(rag.clone(), texts, permit));
        if tx.send(Packed::Batch { inputs, vectors }).await.is_err() {
            return;
        }
    }
}

/// Queues a prepared document's chunks (their embedding inputs) and passes it on. False when
/// the store stage is gone.
async fn forward(rag: &Rag, p: Preparation, queue: &mut VecDeque<String>, tx: &mpsc::Sender<Packed>) -> bool {
    let packed = match p {
        Preparation::Ready(doc) => {
            let title = &doc.title;
            queue.extend(doc.drafts.iter().map(|d| rag.embedding_input(title, &d.locator, &d.text)));
            Packed::Doc(doc)
        }
        Preparation::Finished(result) => Packed::Finished(result),
    };
    tx.send(packed).await.is_ok()
}

/// One embed request; holds its request slot until the reply is in.
async fn embed_batch(rag: Arc<Rag>, texts: Vec<String>, _slot: OwnedSemaphorePermit) -> Option<Vec<Vec<f32>>> {
    match rag.ollama.embed(&rag.cfg.ollama.embed_model, &texts).await {
        Ok(vectors) => Some(vectors),
        Err(e) => {
            error::count_ollama_error(&e);
            tracing::warn!(error = %e, chunks = texts.len(), "embedding failed; stored for keyword search, embeddings queued");
            None
        }
    }
}

/// Stage 3: pairs documents with their vectors, stores them in order and reports each result.
async fn store_all(
    rag: Arc<Rag>,
    collection: String,
    mut rx: mpsc::Receiver<Packed>,
    results: mpsc::Sender<Result<IngestReceipt, RagError>>,
) {
    let stored = Arc::new(Notify::new());
    let done = CancellationToken::new();
    let indexer = tokio::spawn(index_while_ingesting(rag.clone(), stored.clone(), done.clone()));
    let mut owed: VecDeque<Owed> = VecDeque::new();
    let mut vectors: VecDeque<Option<Vec<f32>>> = VecDeque::new();
    let mut dims = None;
    'receive: while let Some(packed) = rx.recv().await {
        match packed {
            Packed::Doc(doc) => owed.push_back(Owed::Doc(doc)),
            Packed::Finished(result) => owed.push_back(Owed::Finished(result)),
            Packed::Batch { inputs, vectors: batch } => match batch.await {
                Ok(Some(batch)) if batch.len() == inputs => vectors.extend(batch.into_iter().map(Some)),
                outcome => {
                    if let Err(e) = outcome {
                        tracing::error!(error = %e, "an embedding task failed; embeddings queued");
                    }
                    vectors.extend(std::iter::repeat_n(None, inputs));
                }
            },
        }
        while let Some(next) = owed.front() {
            let result = match next {
                Owed::Doc(doc) if vectors.len() < doc.drafts.len() => break,
                Owed::Doc(_) => {
                    let Some(Owed::Doc(doc)) = owed.pop_front() else { unreachable!() };
                    let embeddings: Vec<_> = vectors.drain(..doc.drafts.len()).collect();
                    let result = store_one(&rag, &collection, doc, embeddings, &mut dims).await;
                    if result.is_ok() {
                        stored.notify_one();
                    }
                    result
                }
                Owed::Finished(_) => {
                    let Some(Owed::Finished(result)) = owed.pop_front() else { unreachable!() };
                    result
                }
            };
            if results.send(result).await.is_err() {
                break 'receive;
            }
        }
    }
    done.cancel();
    let _ = indexer.await;
    if let Err(e) = rag.indexes.catch_up(rag.store.as_ref()).await {
        tracing::error!(error = %e, "index catch-up after a bulk ingest failed; the next catch-up retries");
    }
}

/// Checks the vectors' dimension against the stored one (once per bulk ingest and dimension),
/// then stores the document.
async fn store_one(
    rag: &Rag,
    collection: &str,
    doc: Prepared,
    embeddings: Vec<Option<Vec<f32>>>,
    dims: &mut Option<usize>,
) -> Result<IngestReceipt, RagError> {
    for vector in embeddings.iter().flatten() {
        if *dims != Some(vector.len()) {
            rag.check_dims(vector.len()).await?;
            *dims = Some(vector.len());
        }
    }
    rag.store_prepared(collection, doc, embeddings).await
}

/// Catches the indexes up after documents were stored, at most every [`INDEX_EVERY`], until
/// `done`.
async fn index_while_ingesting(rag: Arc<Rag>, stored: Arc<Notify>, done: CancellationToken) {
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = stored.notified() => {}
        }
        if let Err(e) = rag.indexes.catch_up(rag.store.as_ref()).await {
            tracing::warn!(error = %e, "index catch-up during a bulk ingest failed; retrying");
        }
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(INDEX_EVERY) => {}
        }
    }
}
