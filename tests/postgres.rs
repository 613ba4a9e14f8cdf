//! PostgreSQL-only behaviour of the store: the HNSW index answers vector searches (EXPLAIN), a
//! small collection inside a large one still gets its full k, two instances storing the same
//! upload store it once, the change log cannot skip a late commit, a server without pgvector is
//! named as such, `footnote migrate`, one vector partition per collection (forgetting removes
//! its vectors), the migration from the unpartitioned layout, and back-fill claims.
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
        may_replace: true,
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
    let hits = store.vector_search_with(&["big".into()], &center, 10, VectorPlan::Default).await.unwrap();
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
    let answer = store.vector_search_with(&small, &big_center, 10, VectorPlan::Default).await.unwrap();
    assert_eq!(answer.len(), 10);
    let rows = store.chunks(&answer.iter().map(|h| h.0).collect::<Vec<_>>()).await.unwrap();
    assert!(rows.iter().all(|r| r.collection == "small"), "a row of another collection leaked in");
    // Asking for more than the collection holds returns all of it, and nothing else.
    assert_eq!(store.vector_search_with(&small, &big_center, 40, VectorPlan::Default).await.unwrap().len(), 20);
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

/// Vectors per collection, counted in `chunk_vectors` (all partitions).
async fn vectors_of(store: &PgStore, collection: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM chunk_vectors v JOIN collections c ON c.id = v.collection_id WHERE c.name = $1",
    )
    .bind(collection)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_collection_has_its_own_partition_and_forgetting_removes_the_vectors() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let center = unit((0..16).map(|_| rng.random_range(-1.0..1.0)).collect());
    fill(&store, &mut rng, "alpha", 3, 4, &center).await;
    fill(&store, &mut rng, "beta", 2, 4, &center).await;
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'chunk_vectors'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(partitions.len(), 2, "one partition per collection: {partitions:?}");
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%' ORDER BY 1")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(indexes.len(), 2, "one HNSW index per collection: {indexes:?}");
    assert!(indexes.iter().all(|i| i.starts_with(HNSW_INDEX)), "{indexes:?}");
    assert_eq!((vectors_of(&store, "alpha").await, vectors_of(&store, "beta").await), (12, 8));

    let docs = store.documents(&["alpha".into()]).await.unwrap();
    store.delete_document(&["alpha".into()], docs[0].id).await.unwrap().expect("forgotten");
    assert_eq!(vectors_of(&store, "alpha").await, 8, "the forgotten document's vectors stay behind");
    assert_eq!(vectors_of(&store, "beta").await, 8);
    // Replacing a document (same source, new content) swaps its vectors.
    let replacement = document("beta", "beta-0", (0..2).map(|_| near(&mut rng, &center, 0.3)).collect());
    assert!(matches!(store.insert_document(replacement).await.unwrap(), Inserted::Replaced { .. }));
    assert_eq!(vectors_of(&store, "beta").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_of_the_earlier_unpartitioned_layout_are_made_again() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let center = unit((0..8).map(|_| rng.random_range(-1.0..1.0)).collect());
    fill(&store, &mut rng, "old", 2, 3, &center).await;
    // Turn the database back into what the first release left: one unpartitioned table, and
    // the migration that replaces it not yet applied.
    for sql in [
        "DROP TABLE chunk_vectors",
        "CREATE TABLE chunk_vectors (chunk_id BIGINT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
            collection_id BIGINT NOT NULL, embedding vector(8) NOT NULL)",
        "INSERT INTO chunk_vectors SELECT k.id, d.collection_id, array_fill(0.5, ARRAY[8])::vector
            FROM chunks k JOIN documents d ON d.id = k.document_id",
        "DELETE FROM _sqlx_migrations WHERE version = 2",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    }
    store.pool().close().await;

    let store = self::store(&db).await;
    let kind: Option<String> =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('chunk_vectors')")
            .fetch_optional(store.pool())
            .await
            .unwrap();
    assert_eq!(kind, None, "the old table is still there");
    let pending = store.pending_embeddings(100).await.unwrap();
    assert_eq!(pending.len(), 6, "every chunk waits for its embedding again");
    let items: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, _)| (*id, near(&mut rng, &center, 0.3))).collect();
    assert_eq!(store.set_embeddings(&items).await.unwrap(), 6);
    assert_eq!(store.vector_search_with(&["old".into()], &center, 10, VectorPlan::Default).await.unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_back_filling_at_once_claim_different_chunks() {
    let db = TestDatabase::create().await;
    let (a, b) = (store(&db).await, store(&db).await);
    let mut doc = document("pending", "waiting", vec![vec![0.0; 4]; 30]);
    doc.chunks.iter_mut().for_each(|c| c.embedding = None);
    a.insert_document(doc).await.unwrap();

    let ids = |batch: &[(i64, String)]| batch.iter().map(|(id, _)| *id).collect::<Vec<_>>();
    let first_a = ids(&a.pending_embeddings(20).await.unwrap());
    let first_b = ids(&b.pending_embeddings(20).await.unwrap());
    assert_eq!((first_a.len(), first_b.len()), (20, 10));
    assert!(first_a.iter().all(|id| !first_b.contains(id)), "both instances got {first_a:?} / {first_b:?}");
    // An attempt that failed (Ollama went away) is made again by the same instance.
    assert_eq!(ids(&a.pending_embeddings(20).await.unwrap()), first_a);
    // Done chunks leave the queue; the other instance's claim still holds its ten.
    let items: Vec<(i64, Vec<f32>)> = first_a.iter().map(|id| (*id, vec![1.0, 0.0, 0.0, 0.0])).collect();
    assert_eq!(a.set_embeddings(&items).await.unwrap(), 20);
    assert!(a.pending_embeddings(20).await.unwrap().is_empty());
    assert_eq!(ids(&b.pending_embeddings(20).await.unwrap()), first_b);
}
