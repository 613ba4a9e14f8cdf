//! The store and retrieval behaviour suite: ingest, dedupe, replace (by who may forget), forget,
//! BM25, vector, fusion, the cross-collection leak test and the Ollama-down back-fill (which
//! skips a chunk Ollama refuses), through the public core.
//!
//! Every test runs on both backends: `name::sqlite` and `name::postgres`.

#[macro_use]
mod common;

on_both_backends!(
    ingest_then_dedupe_then_replace_then_forget,
    bm25_vector_and_fusion_each_rank_the_right_document_first,
    no_query_in_one_collection_sees_another,
    ollama_down_ingest_keeps_text_and_backfills_embeddings_later,
    backfill_runs_on_the_next_start,
    backfill_skips_a_chunk_ollama_refuses_and_goes_on,
    indexes_are_rebuilt_from_the_database_when_lost,
    replacing_a_document_needs_the_right_to_forget_it,
);

use common::*;
use footnote::retrieval::{self, Mode};
use footnote_adapter::{Actor, Gateway, IngestError, IngestOutcome, Notice, Question, Scope};

async fn ingest_then_dedupe_then_replace_then_forget(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    let first = ingest(&core, "notes", "plan.md", "# Plan\n\nThe launch is on Tuesday at the harbour.").await;
    assert_eq!(first.outcome, IngestOutcome::Added);
    assert!(first.chunks >= 1);
    assert!(!first.embeddings_pending);

    let again = ingest(&core, "notes", "plan-copy.md", "# Plan\n\nThe launch is on Tuesday at the harbour.").await;
    assert_eq!(again.outcome, IngestOutcome::Duplicate, "same bytes under another name are a duplicate");
    assert_eq!(again.document_id, first.document_id);

    let other_collection =
        ingest(&core, "other", "plan.md", "# Plan\n\nThe launch is on Tuesday at the harbour.").await;
    assert_eq!(other_collection.outcome, IngestOutcome::Added, "dedupe is per collection");

    let replaced = ingest(&core, "notes", "plan.md", "# Plan\n\nThe launch moved to Friday at the airport.").await;
    assert_eq!(replaced.outcome, IngestOutcome::Replaced { previous_id: first.document_id.clone() });
    let docs = core.documents(&scope("notes"), &Actor::operator()).await.unwrap();
    assert_eq!(docs.len(), 1, "the old version is gone: {docs:?}");

    let rag = &core.rag();
    let hits = rag.indexes().bm25().search(&["notes".into()], "harbour", 10).unwrap();
    assert!(hits.is_empty(), "BM25 still finds the replaced text: {hits:?}");
    let hits = rag.indexes().bm25().search(&["notes".into()], "airport", 10).unwrap();
    assert_eq!(hits.len(), 1);

    let forgotten = core.forget(&scope("notes"), &Actor::operator(), &replaced.document_id).await.unwrap();
    assert_eq!(forgotten.document_id, replaced.document_id);
    assert!(rag.indexes().bm25().search(&["notes".into()], "airport", 10).unwrap().is_empty());
    let counts = rag.store().counts(Some(&["notes".into()])).await.unwrap();
    assert_eq!((counts.documents, counts.chunks), (0, 0));
    assert_eq!(vectors_in(rag, "notes").await, 0, "forgotten vectors remain");
    assert!(vectors_in(rag, "other").await > 0, "the other collection keeps its vectors");

    let missing = core.forget(&scope("notes"), &Actor::operator(), &replaced.document_id).await;
    assert!(missing.is_err(), "forgetting twice must say it is not there");
    let elsewhere = core.forget(&scope("notes"), &Actor::operator(), &other_collection.document_id).await;
    assert!(elsewhere.is_err(), "a document of another collection cannot be forgotten from here");
}

async fn bm25_vector_and_fusion_each_rank_the_right_document_first(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    for (name, text) in ZOO {
        ingest(&core, "zoo", name, text).await;
    }
    let rag = &core.rag();
    let cfg = &rag.config().retrieval;
    let zoo = vec!["zoo".to_owned()];
    for (question, expected) in [
        ("What do penguins eat?", "Penguins"),
        ("How does magma cause an eruption?", "Volcanoes"),
        ("How often should I feed my starter with flour?", "Sourdough bread"),
    ] {
        let vector = rag.embed_query(question).await.unwrap();
        for mode in [Mode::Bm25, Mode::Vector, Mode::Hybrid] {
            let ranked = retrieval::rank(rag.indexes(), cfg, &zoo, question, Some(&vector), mode).await.unwrap();
            assert!(!ranked.is_empty(), "{mode:?} found nothing for {question:?}");
            let top = rag.store().chunks(&[ranked[0].chunk_id as i64]).await.unwrap();
            assert_eq!(top[0].title, expected, "{mode:?} ranked the wrong document first for {question:?}");
        }
    }
}

async fn no_query_in_one_collection_sees_another(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    // Overlapping vocabulary: both collections talk about the same things.
    let shared = [
        ("a1.md", "The project budget for the bridge is four million euros and the deadline is March."),
        ("a2.md", "The bridge design uses steel cables and a concrete deck; the budget covers the cables."),
        ("b1.md", "The project budget for the tunnel is nine million euros and the deadline is June."),
        ("b2.md", "The tunnel design uses concrete rings; the budget and the deadline are tight."),
    ];
    for (name, text) in &shared[..2] {
        ingest(&core, "alpha", name, text).await;
    }
    for (name, text) in &shared[2..] {
        ingest(&core, "beta", name, text).await;
    }
    let rag = &core.rag();
    let cfg = &rag.config().retrieval;
    for (collection, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let scope = vec![collection.to_owned()];
        for question in
            ["project budget deadline", "tunnel concrete rings nine million", "bridge steel cables", "design"]
        {
            let vector = rag.embed_query(question).await.unwrap();
            for mode in [Mode::Bm25, Mode::Vector, Mode::Hybrid] {
                let ranked = retrieval::rank(rag.indexes(), cfg, &scope, question, Some(&vector), mode).await.unwrap();
                let ids: Vec<i64> = ranked.iter().map(|f| f.chunk_id as i64).collect();
                for chunk in rag.store().chunks(&ids).await.unwrap() {
                    assert_eq!(
                        chunk.collection, collection,
                        "{mode:?} leaked a chunk of {other} into {collection} for {question:?}"
                    );
                }
            }
            let (_, answer) = ask(&core, collection, Question::new(question)).await;
            let docs = core.documents(&common::scope(collection), &Actor::operator()).await.unwrap();
            for citation in &answer.citations {
                assert!(docs.iter().any(|d| d.id == citation.document_id), "answer in {collection} cites {other}");
            }
        }
    }
    // A question only the other collection can answer finds nothing here.
    let (_, answer) = ask(&core, "alpha", Question::new("tunnel rings")).await;
    assert!(answer.citations.iter().all(|c| c.title != "b1" && c.title != "b2"), "{answer:?}");
}

async fn ollama_down_ingest_keeps_text_and_backfills_embeddings_later(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    env.double.stop().await;

    let mut receipts = Vec::new();
    for (name, text) in ZOO {
        receipts.push(ingest(&core, "zoo", name, text).await);
    }
    assert!(receipts.iter().all(|r| r.embeddings_pending), "{receipts:?}");
    let rag = &core.rag();
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!(counts.pending_embeddings, counts.chunks);

    // Keyword search still works, and asking returns sources with a notice instead of an answer.
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.notice, Some(Notice::ModelUnreachable));
    assert!(answer.text.is_empty(), "the notice alone says it: {:?}", answer.text);
    assert_eq!(answer.citations.first().map(|c| c.title.as_str()), Some("Penguins"));

    // Nothing is embedded while Ollama is down.
    assert_eq!(rag.backfill().await.unwrap(), 0);

    env.double.restart().await;
    let embedded = rag.backfill().await.unwrap();
    assert_eq!(embedded as i64, counts.chunks);
    let after = rag.store().counts(None).await.unwrap();
    assert_eq!(after.pending_embeddings, 0);
    assert_eq!(after.chunks, counts.chunks, "back-fill must not duplicate chunks");
    assert_eq!(vectors_total(rag).await, after.chunks, "every chunk has exactly one vector");

    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.notice, None);
    assert_eq!(answer.citations[0].title, "Penguins");
}

async fn backfill_runs_on_the_next_start(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    {
        let core = env.core().await;
        env.double.stop().await;
        ingest(&core, "zoo", ZOO[0].0, ZOO[0].1).await;
        core.rag().flush().unwrap();
    }
    env.double.restart().await;
    let rag = env.rag().await;
    assert_eq!(rag.backfill().await.unwrap() as i64, rag.store().counts(None).await.unwrap().chunks);
}

async fn indexes_are_rebuilt_from_the_database_when_lost(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    {
        let core = env.core().await;
        for (name, text) in ZOO {
            ingest(&core, "zoo", name, text).await;
        }
        core.rag().flush().unwrap();
    }
    std::fs::remove_dir_all(env.config.data_dir.join("index")).unwrap();
    let rag = env.rag().await;
    let hits = rag.indexes().bm25().search(&["zoo".into()], "penguins krill", 5).unwrap();
    assert!(!hits.is_empty(), "BM25 was not rebuilt on start");
    let chunks = rag.store().counts(None).await.unwrap().chunks;
    assert_eq!(vectors_total(&rag).await, chunks, "vectors were not rebuilt on start");
    assert_eq!(rag.indexes().bm25().len() as i64, chunks);

    // `footnote reindex` does the same on demand, without duplicating anything.
    rag.reindex(false).await.unwrap();
    assert_eq!(rag.indexes().bm25().len() as i64, chunks);
    assert_eq!(vectors_total(&rag).await, chunks);
}

async fn backfill_skips_a_chunk_ollama_refuses_and_goes_on(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    env.double.stop().await;
    for (name, text) in ZOO {
        ingest(&core, "zoo", name, text).await;
    }
    ingest(&core, "zoo", "bad.md", "# Bad\n\nThis chunk holds UNEMBEDDABLE bytes the model chokes on.").await;
    let rag = &core.rag();
    let chunks = rag.store().counts(None).await.unwrap().chunks;
    env.double.restart().await;

    // Ollama fails every input, the probe included: a pause, nothing is skipped.
    env.double.reject_embed_input(Some(""));
    assert_eq!(rag.backfill().await.unwrap(), 0);
    assert_eq!(rag.store().counts(None).await.unwrap().pending_embeddings, chunks);

    // Ollama refuses one chunk only: the batch is split, that chunk skipped, the rest embedded.
    env.double.reject_embed_input(Some("UNEMBEDDABLE"));
    let embedded = rag.backfill().await.unwrap();
    assert_eq!(embedded as i64, chunks - 1);
    assert_eq!(rag.store().counts(None).await.unwrap().pending_embeddings, 1, "only the refused chunk waits");
    assert_eq!(vectors_total(rag).await, chunks - 1);
    // The next round does not try it again (and ends).
    env.double.reset_requests();
    assert_eq!(rag.backfill().await.unwrap(), 0);
    assert!(env.double.requests().iter().all(|r| r.path != "/api/embed"), "{:?}", env.double.requests());
    // It is still found by keywords.
    let hits = rag.indexes().bm25().search(&["zoo".into()], "unembeddable", 5).unwrap();
    assert_eq!(hits.len(), 1);
}

async fn replacing_a_document_needs_the_right_to_forget_it(backend: Backend) {
    let env = TestEnv::with_backend(backend).await;
    let core = env.core().await;
    let here = Scope { platform: "slack".into(), space: Some("T1".into()), room: "C1".into(), thread: None };
    let member = Actor { user_id: "U2".into(), ..Actor::default() };
    let admin = Actor { user_id: "U1".into(), is_owner: true, ..Actor::default() };
    let upload = |text: &str| footnote_adapter::Upload {
        file_name: "rota.md".into(),
        mime: None,
        bytes: text.as_bytes().to_vec(),
        origin: Default::default(),
    };
    let first = core.ingest(&here, &admin, upload("# Rota\n\nAnn closes the shop on Mondays.")).await.unwrap();
    let refused = core.ingest(&here, &member, upload("# Rota\n\nNobody closes the shop.")).await.unwrap_err();
    assert_eq!(refused, IngestError::NameTaken { name: "rota.md".into(), document_id: first.document_id.clone() });
    let rag = &core.rag();
    let docs = core.documents(&here, &member).await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id, first.document_id);
    let collection = core.collections(&here)[0].clone();
    assert!(
        rag.indexes().bm25().search(std::slice::from_ref(&collection), "nobody", 5).unwrap().is_empty(),
        "nothing of it stored"
    );
    assert_eq!(rag.indexes().bm25().search(&[collection], "mondays", 5).unwrap().len(), 1);
    let replaced = core.ingest(&here, &admin, upload("# Rota\n\nBen closes the shop on Mondays.")).await.unwrap();
    assert_eq!(replaced.outcome, IngestOutcome::Replaced { previous_id: first.document_id });
}
