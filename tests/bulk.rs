//! Bulk ingest (`Core::ingest_many` / `Rag::ingest_many`): per-file results in input order, a
//! broken file refused without stopping the others or leaving anything half-stored, chunks of
//! several documents packed into one embed call with every vector stored with its own chunk,
//! and an embedder that fails (for one call or altogether) leaving text searchable and the
//! embeddings queued.
//!
//! Every test runs on both backends: `name::sqlite` and `name::postgres`.

#[macro_use]
mod common;

on_both_backends!(
    a_broken_file_is_refused_and_the_others_are_stored_whole,
    packed_batches_keep_each_vector_with_its_chunk_even_when_one_call_fails,
    ollama_down_bulk_ingest_stores_text_and_queues_embeddings,
);

use std::collections::BTreeSet;

use common::*;
use footnote::ingest::context;
use footnote::rag::gateway::Core;
use footnote::rag::{BulkInput, Rag};
use footnote::store::ChangeOp;
use footnote_adapter::{Actor, IngestError, IngestOutcome, IngestReceipt};
use footnote_ollama_double::embed_text;
use futures::StreamExt;

async fn ingest_many(core: &Core, collection: &str, inputs: Vec<BulkInput>) -> Vec<Result<IngestReceipt, IngestError>> {
    core.ingest_many(&scope(collection), &Actor::operator(), futures::stream::iter(inputs)).collect().await
}

/// A note of a few sentences on `topic` (one or two chunks).
fn note(topic: &str, n: usize) -> String {
    let sentences: Vec<String> =
        (0..n).map(|i| format!("Fact {i} about {topic}: the {topic} record number {i} says {topic}{i}.")).collect();
    format!("# {topic}\n\n{}", sentences.join(" "))
}

async fn a_broken_file_is_refused_and_the_others_are_stored_whole(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    let inputs: Vec<BulkInput> = vec![
        Ok(upload("penguins.md", ZOO[0].1)),
        Ok(upload("broken.pdf", "%PDF-1.7\nthis is not really a PDF at all")),
        Ok(upload("volcanoes.md", ZOO[1].1)),
        Err(IngestError::TooLarge("the limit is 1 KiB".into())),
        Ok(upload("empty.md", "   \n")),
        Ok(upload("penguins-copy.md", ZOO[0].1)),
        Ok(upload("bread.md", ZOO[2].1)),
    ];
    let results = ingest_many(&core, "zoo", inputs).await;
    assert_eq!(results.len(), 7, "{results:?}");
    let titles: Vec<Option<&str>> = results.iter().map(|r| r.as_ref().ok().map(|r| r.title.as_str())).collect();
    assert_eq!(
        titles,
        [Some("Penguins"), None, Some("Volcanoes"), None, None, Some("Penguins"), Some("Sourdough bread")],
        "results come in input order: {results:?}"
    );
    assert!(matches!(results[1], Err(IngestError::Unreadable(_))), "{:?}", results[1]);
    assert_eq!(results[3], Err(IngestError::TooLarge("the limit is 1 KiB".into())));
    assert_eq!(results[4], Err(IngestError::Empty));
    let first = results[0].as_ref().unwrap();
    let copy = results[5].as_ref().unwrap();
    assert_eq!((first.outcome.clone(), copy.outcome.clone()), (IngestOutcome::Added, IngestOutcome::Duplicate));
    assert_eq!(copy.document_id, first.document_id);
    assert!(results.iter().flatten().all(|r| !r.embeddings_pending));

    // Exactly the three good documents, each with all its chunks, embedded and indexed by the
    // time the stream ended.
    let rag = &core.rag();
    let docs = rag.store().documents(&["zoo".into()]).await.unwrap();
    let mut stored: Vec<&str> = docs.iter().map(|d| d.title.as_str()).collect();
    stored.sort();
    assert_eq!(stored, ["Penguins", "Sourdough bread", "Volcanoes"]);
    let receipts: u32 = [0, 2, 6].iter().map(|&i| results[i].as_ref().unwrap().chunks).sum();
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!((counts.chunks, counts.pending_embeddings), (i64::from(receipts), 0));
    assert_eq!(rag.indexes().bm25().len() as i64, counts.chunks);
    assert_eq!(vectors_total(rag).await, counts.chunks);
    let hits = rag.indexes().bm25().search(&["zoo".into()], "pyroclastic", 5).unwrap();
    assert_eq!(hits.len(), 1);
}

/// Stored chunks of `collection`: (id, embedding input: the text with its title and headings,
/// has an embedding).
async fn stored_chunks(rag: &Rag, collection: &str) -> Vec<(i64, String, bool)> {
    let pending: BTreeSet<i64> =
        rag.store().pending_embeddings(100_000).await.unwrap().into_iter().map(|p| p.0).collect();
    let changes = rag.store().changes_since(0, 100_000).await.unwrap();
    changes
        .into_iter()
        .filter(|c| c.op == ChangeOp::Add && c.collection == collection)
        .map(|c| {
            let (title, text) = c.content.expect("the chunk exists");
            let input = context::embedding_input(&title, &c.locator.expect("the chunk exists"), &text);
            (c.chunk_id, input, !pending.contains(&c.chunk_id))
        })
        .collect()
}

/// The chunk of `collection` whose stored vector is nearest to `query`, in whichever index holds
/// the vectors.
async fn nearest(rag: &Rag, collection: &str, query: &[f32]) -> Option<i64> {
    let collections = [collection.to_owned()];
    let hits = rag.indexes().vector_search().nearest(&collections, query, 1).await.unwrap();
    hits.first().map(|h| h.0 as i64)
}

/// Every embedded chunk's vector is the embedding of its own text in its context (title and
/// headings): searching with that embedding finds that very chunk first (the texts all differ).
async fn assert_vectors_match_chunks(rag: &Rag, collection: &str, chunks: &[(i64, String, bool)]) {
    let prefix = &rag.config().ollama.embed_prefixes().document;
    for (id, text, _) in chunks.iter().filter(|c| c.2) {
        let expected = embed_text(&format!("{prefix}{text}"), 768);
        let found = nearest(rag, collection, &expected).await;
        assert_eq!(found, Some(*id), "the vector made from {text:?} is not stored with its chunk");
    }
}

async fn packed_batches_keep_each_vector_with_its_chunk_even_when_one_call_fails(backend: Backend) {
    let mut env = TestEnv::with_backend(backend).await;
    env.config.ollama.embed_batch_size = 8;
    let core = env.core().await;
    let topics: Vec<String> = (0..24).map(|i| format!("topic{i:02}")).collect();
    let inputs = |collection: &str| -> Vec<BulkInput> {
        topics
            .iter()
            .enumerate()
            .map(|(i, t)| Ok(upload(&format!("{collection}-{t}.md"), &note(t, [2, 12, 25][i % 3]))))
            .collect()
    };

    // Packing depends on timing by design (a partial batch goes when a request slot is idle):
    // a slow embedder leaves time for the other files to be prepared and queue up behind the
    // first calls, as with a real model.
    env.double.set_embed_delay(std::time::Duration::from_millis(100));
    env.double.reset_requests();
    let results = ingest_many(&core, "packed", inputs("packed")).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let calls = env.double.embed_calls();
    let inputs_sent: usize = calls.iter().map(|c| c.inputs).sum();
    assert!(calls.iter().all(|c| c.inputs <= 8), "{calls:?}");
    assert!(calls.len() < topics.len(), "{} calls for {} documents: nothing was packed", calls.len(), topics.len());
    // At least one call carried chunks of several documents.
    let mixed = env.double.requests().iter().filter(|r| r.path == "/api/embed").any(|r| {
        let texts = r.body["input"].as_array().cloned().unwrap_or_default();
        // Each note names its topic (`topicNN`) in every sentence.
        let docs: BTreeSet<String> = texts
            .iter()
            .filter_map(|t| {
                let t = t.as_str()?;
                t.find("topic").and_then(|i| t.get(i..i + 7)).map(str::to_owned)
            })
            .collect();
        docs.len() > 1
    });
    assert!(mixed, "no embed call mixed documents");

    let rag = &core.rag();
    let chunks = stored_chunks(rag, "packed").await;
    assert_eq!(chunks.len(), inputs_sent, "one embed input per stored chunk");
    assert!(chunks.iter().all(|c| c.2), "every chunk has its embedding");
    assert_vectors_match_chunks(rag, "packed", &chunks).await;

    // One failed embed call: the documents with a chunk in it are stored with their embeddings
    // queued, and every vector that did arrive is still with its own chunk.
    env.double.fail_next(500, "the model crashed");
    let results = ingest_many(&core, "failing", inputs("failing")).await;
    let receipts: Vec<IngestReceipt> = results.into_iter().map(|r| r.expect("stored despite the failure")).collect();
    let pending: Vec<&IngestReceipt> = receipts.iter().filter(|r| r.embeddings_pending).collect();
    assert!(!pending.is_empty() && pending.len() < receipts.len(), "{receipts:?}");
    let chunks = stored_chunks(rag, "failing").await;
    let queued = chunks.iter().filter(|c| !c.2).count();
    assert!(queued > 0 && queued <= 8, "one call's chunks are queued, no more: {queued}");
    assert_vectors_match_chunks(rag, "failing", &chunks).await;
    assert_eq!(core.rag().backfill().await.unwrap(), queued);
}

async fn ollama_down_bulk_ingest_stores_text_and_queues_embeddings(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    env.double.stop().await;
    let inputs: Vec<BulkInput> = ZOO.iter().map(|(name, text)| Ok(upload(name, text))).collect();
    let results = ingest_many(&core, "zoo", inputs).await;
    let receipts: Vec<IngestReceipt> = results.into_iter().map(|r| r.expect("stored without Ollama")).collect();
    assert!(receipts.iter().all(|r| r.embeddings_pending && r.outcome == IngestOutcome::Added), "{receipts:?}");
    let rag = &core.rag();
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!(counts.pending_embeddings, counts.chunks);
    assert!(!rag.indexes().bm25().search(&["zoo".into()], "krill", 5).unwrap().is_empty());

    env.double.restart().await;
    assert_eq!(rag.backfill().await.unwrap() as i64, counts.chunks);
    assert_eq!(vectors_total(rag).await, counts.chunks);
}
