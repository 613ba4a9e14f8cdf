//! PostgreSQL-only behaviour of the store: the HNSW index answers vector searches (EXPLAIN), a
//! small collection inside a large one still gets its full k, two instances storing the same
//! upload store it once, the change log cannot skip a late commit, a server without pgvector is
//! named as such, and `footnote migrate`.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pg::TestDatabase;
use footnote::store::postgres::{CHANGE_LOG_LOCK, HNSW_INDEX, PgOptions, PgStore, VectorPlan, ensure_extension};
use footnote::store::{Inserted, NewChunk, NewDocument, Store, StoreError};
use footnote_adapter::Locator;
use rand::{Rng, SeedableRng};

fn options() -> PgOptions {
    PgOptions {
        max_connections: 8,
        retry_for: Duration::from_secs(10),
        ef_search: 40,
        hnsw_m: 16,
        hnsw_ef_construction: 64,
    }
}

async fn store(db: &TestDatabase) -> PgStore {
    PgStore::connect(&db.url.clone().into(), options()).await.expect("connect to the test database")
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// A vector near `center` (noise of size `spread`).
fn near(rng: &mut impl Rng, center: &[f32], spread: f32) -> Vec<f32> {
    unit(center.iter().map(|c| c + rng.random_range(-spread..spread)).collect())
}

fn document(collection: &str, source: &str, vectors: Vec<Vec<f32>>) -> NewDocument {
    NewDocument {
        collection: collection.into(),
        source: source.into(),
        title: source.into(),
        kind: "text".into(),
        content_hash: blake3::hash(format!("{collection}/{source}/{}", vectors.len()).as_bytes()).to_hex().to_string(),
        bytes: 100,
        pages: None,
        origin: Default::default(),
        chunks: vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| NewChunk {
                text: format!("chunk {i} of {source}"),
                locator: Locator::default(),
                tokens: 5,
                embedding: Some(v),
            })
            .collect(),
    }
}

/// `docs` documents of `per_doc` chunks each in `collection`, vectors near `center`.
async fn fill(store: &PgStore, rng: &mut impl Rng, collection: &str, docs: usize, per_doc: usize, center: &[f32]) {
    for d in 0..docs {
        let vectors = (0..per_doc).map(|_| near(rng, center, 0.3)).collect();
        store.insert_document(document(collection, &format!("{collection}-{d}"), vectors)).await.expect("insert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_hnsw_index_answering_vector_search() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let center = unit((0..32).map(|_| rng.random_range(-1.0..1.0)).collect());
    fill(&store, &mut rng, "big", 25, 100, &center).await;
    sqlx::query("ANALYZE chunk_vectors").execute(store.pool()).await.unwrap();

    let plan = store.explain_vector_search(&["big".into()], &center, 10).await.unwrap();
    assert!(plan.contains(HNSW_INDEX), "the HNSW index is not used:\n{plan}");
    let hits = store.vector_search(&["big".into()], &center, 10).await.unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_collection_inside_a_large_one_gets_its_full_k() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let big_center = unit((0..32).map(|_| rng.random_range(-1.0..1.0)).collect());
    let small_center: Vec<f32> = big_center.iter().map(|x| -x).collect();
    fill(&store, &mut rng, "big", 50, 100, &big_center).await;
    fill(&store, &mut rng, "small", 2, 10, &small_center).await;
    sqlx::query("ANALYZE chunk_vectors").execute(store.pool()).await.unwrap();

    // The query sits in the middle of the big collection: the 40 (ef_search) nearest candidates
    // of a plain HNSW scan are all "big", and a filter applied afterwards would leave nothing.
    let small = vec!["small".to_owned()];
    let exact = store.vector_search_with(&small, &big_center, 10, VectorPlan::Exact).await.unwrap();
    assert_eq!(exact.len(), 10);
    let index_only = store.vector_search_with(&small, &big_center, 10, VectorPlan::IndexOnly).await.unwrap();
    assert_eq!(index_only.len(), 10, "the iterative index scan lost rows of the small collection");
    let mut a: Vec<i64> = exact.iter().map(|h| h.0).collect();
    let mut b: Vec<i64> = index_only.iter().map(|h| h.0).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "the index scan found other rows than the exact scan");
    let answer = store.vector_search(&small, &big_center, 10).await.unwrap();
    assert_eq!(answer.len(), 10);
    let rows = store.chunks(&answer.iter().map(|h| h.0).collect::<Vec<_>>()).await.unwrap();
    assert!(rows.iter().all(|r| r.collection == "small"), "a row of another collection leaked in");
    // Asking for more than the collection holds returns all of it, and nothing else.
    assert_eq!(store.vector_search(&small, &big_center, 40).await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_storing_the_same_upload_store_it_once() {
    let db = TestDatabase::create().await;
    let (a, b) = (Arc::new(store(&db).await), Arc::new(store(&db).await));
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let center = unit((0..8).map(|_| rng.random_range(-1.0..1.0)).collect());
    for i in 0..10 {
        let doc = document("shared", &format!("upload-{i}"), (0..5).map(|_| near(&mut rng, &center, 0.2)).collect());
        let (first, second) = tokio::join!(a.insert_document(doc.clone()), b.insert_document(doc));
        let outcomes = [first.expect("instance a"), second.expect("instance b")];
        let new = outcomes.iter().filter(|o| matches!(o, Inserted::New(_))).count();
        let dup = outcomes.iter().filter(|o| matches!(o, Inserted::Duplicate(_))).count();
        assert_eq!((new, dup), (1, 1), "{outcomes:?}");
    }
    let counts = a.counts(None).await.unwrap();
    assert_eq!((counts.documents, counts.chunks), (10, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_is_never_skipped_by_a_watermark() {
    let db = TestDatabase::create().await;
    let store = Arc::new(store(&db).await);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let center = unit((0..8).map(|_| rng.random_range(-1.0..1.0)).collect());

    // A writer that took its seq but has not committed yet holds the change-log lock…
    let mut slow = store.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHANGE_LOG_LOCK).execute(&mut *slow).await.unwrap();
    let slow_seq: i64 = sqlx::query_scalar(
        "INSERT INTO changes (chunk_id, collection, op) VALUES (424242, 'c', 'delete') RETURNING seq",
    )
    .fetch_one(&mut *slow)
    .await
    .unwrap();
    // …so a later ingest cannot make a higher seq visible before it.
    let fast = tokio::spawn({
        let store = store.clone();
        let doc = document("c", "fast", vec![near(&mut rng, &center, 0.2)]);
        async move { store.insert_document(doc).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!fast.is_finished(), "the second writer committed before the first");
    assert!(store.changes_since(0, 100).await.unwrap().is_empty(), "a reader saw a change with a gap before it");
    slow.commit().await.unwrap();
    fast.await.unwrap().expect("the second writer");
    let seen: Vec<i64> = store.changes_since(0, 100).await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(seen[0], slow_seq);
    assert!(seen[1..].iter().all(|s| *s > slow_seq), "{seen:?}");

    // Under load: a reader that follows the log by watermark sees every change exactly once.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            let docs: Vec<NewDocument> = (0..15)
                .map(|i| document("load", &format!("w{w}-{i}"), (0..3).map(|_| near(&mut rng, &center, 0.2)).collect()))
                .collect();
            tokio::spawn(async move {
                for doc in docs {
                    store.insert_document(doc).await.expect("insert");
                }
            })
        })
        .collect();
    let mut watermark = *seen.last().unwrap();
    let mut followed = seen.clone();
    let mut done = false;
    while !done {
        done = writers.iter().all(|w| w.is_finished());
        for change in store.changes_since(watermark, 1000).await.unwrap() {
            followed.push(change.seq);
            watermark = change.seq;
        }
    }
    let all: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM changes ORDER BY seq").fetch_all(store.pool()).await.unwrap();
    assert_eq!(followed, all, "the follower skipped or repeated changes");
    assert_eq!(all.len(), 2 + 4 * 15 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_pgvector_is_named_in_the_error() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    // The test server has pgvector; an extension it does not have takes the same path.
    let err = ensure_extension(store.pool(), "footnote_no_such_extension").await.expect_err("no such extension");
    assert!(matches!(err, StoreError::Pgvector(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("pgvector") && message.contains("install"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footnote_migrate_prepares_an_empty_database() {
    let db = TestDatabase::create().await;
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", data.path())
        .env("FOOTNOTE_DATA_DIR", data.path())
        .env("DATABASE_URL", &db.url)
        .current_dir(data.path())
        .output()
        .expect("run footnote migrate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("up to date"), "{text}");
    let store = store(&db).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for table in ["changes", "chunks", "collections", "documents", "meta"] {
        assert!(tables.iter().any(|t| t == table), "{table} missing: {tables:?}");
    }
}
