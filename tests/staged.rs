//! Large uploads are embedded and stored in batches through a stage, on both backends: nothing of
//! them is visible (listings, counts, search, the change log) until the whole document is, a
//! stage left behind by a crash is cleaned up, and Ollama being down still stores everything for
//! keyword search.

#[macro_use]
mod common;

on_both_backends!(
    a_large_upload_is_staged_in_batches_and_appears_at_once,
    a_stage_left_behind_is_cleaned_up_and_cannot_be_committed,
    a_large_upload_while_ollama_is_down_is_stored_for_keyword_search,
);

use std::time::Duration;

use common::*;
use footnote::rag::STAGE_BATCH;
use footnote::store::{NewChunk, NewDocument};
use footnote_adapter::{Actor, Gateway, IngestOutcome, Locator};

/// A Markdown document of `sections` sections, one chunk each; the first and last name words
/// found nowhere else.
fn long_document(sections: usize) -> String {
    let mut text = String::from("# Handbook\n\n");
    for n in 0..sections {
        let word = match n {
            0 => "aardvark".to_owned(),
            n if n + 1 == sections => "zeppelin".to_owned(),
            n => format!("item{n}"),
        };
        text.push_str(&format!("## Part {n}\n\nThe {word} procedure is described in part {n} of the handbook.\n\n"));
    }
    text
}

async fn a_large_upload_is_staged_in_batches_and_appears_at_once(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    let rag = core.rag().clone();
    let sections = STAGE_BATCH * 3 + 17;
    // A slow embedder, so that the upload is observed half-way.
    env.double.set_embed_delay(Duration::from_millis(40));
    env.double.reset_requests();
    let seq_before = rag.store().last_seq().await.unwrap();
    let handbook = upload("handbook.md", &long_document(sections));
    let ingest = {
        let core = core.clone();
        tokio::spawn(async move { core.ingest(&scope("docs"), &Actor::operator(), handbook).await })
    };
    // The commit becomes visible a moment before the ingest returns (the indexes catch up in
    // between): once anything shows, it is the whole document.
    let mut seen_half_way = false;
    loop {
        let finished = ingest.is_finished();
        let staged_already = env.double.embed_calls().len() > 8;
        let seq = rag.store().last_seq().await.unwrap();
        let listed = rag.store().documents(&["docs".into()]).await.unwrap().len();
        let counts = rag.store().counts(None).await.unwrap();
        if (counts.documents, counts.chunks) != (0, 0) {
            assert_eq!((counts.documents, counts.chunks), (1, sections as i64), "part of the upload is visible");
            break;
        }
        // Read before the counts, so before the commit too.
        assert_eq!(seq, seq_before, "the change log saw part of the upload");
        assert_eq!(listed, 0, "the upload was listed before it was whole");
        seen_half_way |= staged_already;
        if finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_half_way, "the upload was never observed half-way");
    let receipt = ingest.await.unwrap().expect("stored");
    assert_eq!(receipt.outcome, IngestOutcome::Added);
    assert_eq!(receipt.chunks as usize, sections);
    assert!(!receipt.embeddings_pending);
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!((counts.documents, counts.chunks, counts.pending_embeddings), (1, sections as i64, 0));
    assert_eq!(vectors_in(&rag, "docs").await, sections as i64);
    for word in ["aardvark", "zeppelin"] {
        let hits = rag.indexes().bm25().search(&["docs".into()], word, 5).unwrap();
        assert_eq!(hits.len(), 1, "{word}");
    }
    // One batch of chunks in flight at a time: embed calls never carry more than a batch.
    let calls = env.double.embed_calls();
    assert!(calls.iter().all(|c| c.inputs <= 32), "{:?}", calls.iter().map(|c| c.inputs).collect::<Vec<_>>());
    // The same content again is a duplicate (found before it is read again).
    let again = core.ingest(&scope("docs"), &Actor::operator(), upload("copy.md", &long_document(sections))).await;
    assert_eq!(again.unwrap().outcome, IngestOutcome::Duplicate);
    assert_eq!(rag.store().counts(None).await.unwrap().chunks, sections as i64);
}

fn chunk(text: &str) -> NewChunk {
    NewChunk { text: text.into(), locator: Locator::default(), tokens: 3, embedding: Some(vec![0.5; 8]) }
}

fn document(collection: &str, name: &str) -> NewDocument {
    NewDocument {
        collection: collection.into(),
        source: name.into(),
        title: name.into(),
        kind: "text".into(),
        content_hash: format!("hash-of-{name}"),
        bytes: 10,
        pages: None,
        origin: Default::default(),
        chunks: Vec::new(),
        may_replace: true,
    }
}

async fn a_stage_left_behind_is_cleaned_up_and_cannot_be_committed(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let rag = env.rag().await;
    let store = rag.store();
    // A writer that "crashes" after two batches, with a lease that runs out at once.
    let stage = store.stage_begin("box", Duration::ZERO).await.unwrap();
    store.stage_chunks(stage, 0, &[chunk("first lost words")], Duration::ZERO).await.unwrap();
    store.stage_chunks(stage, 1, &[chunk("second lost words")], Duration::ZERO).await.unwrap();
    assert_eq!(store.counts(None).await.unwrap().chunks, 0);
    assert!(store.pending_embeddings(10).await.unwrap().is_empty());
    drop(rag);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The next start cleans it up: the stage is gone, and nothing of it shows anywhere.
    let rag = env.rag().await;
    let store = rag.store();
    let gone = store.stage_commit(stage, document("box", "lost.txt")).await;
    assert!(matches!(gone, Err(footnote::store::StoreError::StageGone(s)) if s == stage), "{gone:?}");
    assert_eq!(store.counts(None).await.unwrap().documents, 0);
    assert!(rag.indexes().bm25().search(&["box".into()], "lost", 5).unwrap().is_empty());

    // A live stage commits; an aborted one is gone.
    let live = store.stage_begin("box", Duration::from_secs(60)).await.unwrap();
    store
        .stage_chunks(live, 0, &[chunk("kept words one"), chunk("kept words two")], Duration::from_secs(60))
        .await
        .unwrap();
    let aborted = store.stage_begin("box", Duration::from_secs(60)).await.unwrap();
    store.stage_chunks(aborted, 0, &[chunk("aborted words")], Duration::from_secs(60)).await.unwrap();
    store.stage_abort(aborted).await.unwrap();
    store.stage_commit(live, document("box", "kept.txt")).await.unwrap();
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.documents, counts.chunks, counts.pending_embeddings), (1, 2, 0));
    assert!(matches!(
        store.stage_commit(aborted, document("box", "x.txt")).await,
        Err(footnote::store::StoreError::StageGone(_))
    ));
}

async fn a_large_upload_while_ollama_is_down_is_stored_for_keyword_search(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    env.double.stop().await;
    let sections = STAGE_BATCH + 40;
    let receipt =
        core.ingest(&scope("docs"), &Actor::operator(), upload("handbook.md", &long_document(sections))).await;
    let receipt = receipt.expect("stored for keyword search");
    assert!(receipt.embeddings_pending);
    assert_eq!(receipt.chunks as usize, sections);
    let rag = &core.rag();
    assert_eq!(rag.store().counts(None).await.unwrap().pending_embeddings, sections as i64);
    assert_eq!(rag.indexes().bm25().search(&["docs".into()], "zeppelin", 5).unwrap().len(), 1);
    env.double.restart().await;
    assert_eq!(rag.backfill().await.unwrap(), sections);
    assert_eq!(vectors_in(rag, "docs").await, sections as i64);
}
