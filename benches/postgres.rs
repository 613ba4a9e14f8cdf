//! Hybrid retrieval on PostgreSQL + pgvector: latency (p50/p95) and vector recall@10 against an
//! exact scan, at a configurable size.
//!
//! ```sh
//! eval "$(scripts/test-services.sh)"                     # the server (FOOTNOTE_TEST_DATABASE_URL)
//! cargo bench --bench postgres                           # 100,000 chunks, 768 dimensions
//! BENCH_CHUNKS=1000000 cargo bench --bench postgres      # bigger
//! BENCH_SMOKE=1 cargo test --bench postgres              # tiny, proves it runs (scripts/test.sh)
//! ```
//!
//! Env: `BENCH_CHUNKS` (100000), `BENCH_DIMS` (768), `BENCH_QUERIES` (200), `BENCH_EF_SEARCH`
//! (the configured `retrieval.hnsw_ef_search`), `BENCH_MAINTENANCE_WORK_MEM` (2GB, for the index
//! build). At 1M chunks the server wants its HNSW index in shared_buffers: the README's 1M figure
//! came from a second test server, `FOOTNOTE_PG_PORT=55499 FOOTNOTE_PG_SHARED_BUFFERS=6GB
//! scripts/test-services.sh`, with `BENCH_MAINTENANCE_WORK_MEM=5GB`. The data: 90% of the chunks in collection
//! `main`, 10% in `team`; vectors are clustered (1,000 topics, each a random direction plus
//! noise), which is closer to real embeddings than uniform noise; chunk texts draw most words from
//! their topic's vocabulary. Queries are perturbed chunk vectors plus three of the chunk's words.
//! Loading uses multi-row inserts with binary vectors and builds the HNSW index after the load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote::config::Config;
use footnote::index::Indexes;
use footnote::index::vector::HnswParams;
use footnote::retrieval::{self, Mode};
use footnote::store::postgres::{PgOptions, PgStore, VectorPlan, hnsw_index_name, hnsw_index_sql};
use footnote::store::{NewChunk, NewDocument, Store};
use pgvector::Vector;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

const TOPICS: usize = 1000;
const WORDS_PER_TOPIC: usize = 30;
const CHUNKS_PER_DOC: usize = 100;
const BATCH: usize = 2000;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random_range(0.0..1.0));
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

struct Corpus {
    centers: Vec<Vec<f32>>,
    dims: usize,
}

impl Corpus {
    fn vector(&self, rng: &mut StdRng, topic: usize, noise: f32) -> Vec<f32> {
        let scale = noise / (self.dims as f32).sqrt();
        unit(self.centers[topic].iter().map(|c| c + gaussian(rng) * scale).collect())
    }

    fn word(topic: usize, i: usize) -> String {
        format!("w{topic}x{i}")
    }

    fn text(rng: &mut StdRng, topic: usize) -> String {
        (0..60)
            .map(|_| {
                if rng.random_range(0..4) == 0 {
                    Self::word(rng.random_range(0..TOPICS), rng.random_range(0..WORDS_PER_TOPIC))
                } else {
                    Self::word(topic, rng.random_range(0..WORDS_PER_TOPIC))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn load(store: &PgStore, corpus: &Corpus, rng: &mut StdRng, chunks: usize) -> Vec<(String, usize)> {
    let pool = store.pool();
    // A first document per collection goes through the store, which creates the vector(N) table
    // and each collection's partition with its HNSW index; the indexes are built after the load.
    for collection in ["main", "team"] {
        let seed = NewDocument {
            collection: collection.into(),
            source: format!("seed-{collection}"),
            title: "seed".into(),
            kind: "text".into(),
            content_hash: format!("seed-{collection}"),
            bytes: 1,
            pages: None,
            origin: Default::default(),
            chunks: vec![NewChunk {
                text: Corpus::text(rng, 0),
                locator: Default::default(),
                tokens: 60,
                embedding: Some(corpus.vector(rng, 0, 0.6)),
            }],
            may_replace: true,
        };
        store.insert_document(seed).await.expect("seed document");
    }
    let ids: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM collections ORDER BY id").fetch_all(pool).await.expect("ids");
    for (id, _) in &ids {
        let drop = format!("DROP INDEX {}", hnsw_index_name(*id));
        sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await.expect("drop index for the load");
    }
    let locator = serde_json::to_string(&footnote_adapter::Locator::default()).expect("locator");

    let mut topics_of_chunks = Vec::with_capacity(chunks);
    let started = Instant::now();
    for doc in 0..chunks.div_ceil(CHUNKS_PER_DOC) {
        let (collection_id, collection) = if doc % 10 == 9 { &ids[1] } else { &ids[0] };
        let doc_id: i64 = sqlx::query_scalar(
            "INSERT INTO documents (collection_id, source, title, kind, content_hash, bytes, added_at)
             VALUES ($1, $2, $2, 'text', $2, 1000, '2026-01-01T00:00:00Z') RETURNING id",
        )
        .bind(collection_id)
        .bind(format!("doc-{doc}"))
        .fetch_one(pool)
        .await
        .expect("document");
        let n = CHUNKS_PER_DOC.min(chunks - doc * CHUNKS_PER_DOC);
        let topics: Vec<usize> = (0..n).map(|_| rng.random_range(0..TOPICS)).collect();
        let texts: Vec<String> = topics.iter().map(|t| Corpus::text(rng, *t)).collect();
        let vectors: Vec<Vector> = topics.iter().map(|t| Vector::from(corpus.vector(rng, *t, 0.6))).collect();
        let ordinals: Vec<i32> = (0..n as i32).collect();
        let locators = vec![locator.clone(); n];
        let chunk_ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO chunks (document_id, ordinal, text, locator, tokens, embedded)
             SELECT $1, u.o, u.t, u.l, 60, true FROM UNNEST($2::int4[], $3::text[], $4::text[]) AS u(o, t, l) ORDER BY u.o RETURNING id",
        )
        .bind(doc_id)
        .bind(&ordinals)
        .bind(&texts)
        .bind(&locators)
        .fetch_all(pool)
        .await
        .expect("chunks");
        sqlx::query("INSERT INTO chunk_vectors (chunk_id, collection_id, embedding) SELECT u.id, $2, u.v FROM UNNEST($1::bigint[], $3::vector[]) AS u(id, v)")
            .bind(&chunk_ids)
            .bind(collection_id)
            .bind(&vectors)
            .execute(pool)
            .await
            .expect("vectors");
        sqlx::query("INSERT INTO changes (chunk_id, collection, op) SELECT id, $2, 'add' FROM UNNEST($1::bigint[]) AS u(id) ORDER BY id")
            .bind(&chunk_ids)
            .bind(collection)
            .execute(pool)
            .await
            .expect("changes");
        topics_of_chunks.extend(topics.into_iter().map(|t| (collection.clone(), t)));
        if (doc * CHUNKS_PER_DOC).is_multiple_of(BATCH * 10) && doc > 0 {
            eprintln!("  loaded {} chunks ({:.0?})", doc * CHUNKS_PER_DOC, started.elapsed());
        }
    }
    eprintln!("loaded {chunks} chunks in {:.1?}", started.elapsed());
    topics_of_chunks
}

async fn build_index(store: &PgStore, opts: &PgOptions) {
    let started = Instant::now();
    let mut conn = store.pool().acquire().await.expect("connection");
    // The graph is built fastest when it fits in maintenance_work_mem (about 3.5 GB at 1M x 768).
    let memory = std::env::var("BENCH_MAINTENANCE_WORK_MEM").unwrap_or_else(|_| "2GB".into());
    sqlx::query("SELECT set_config('maintenance_work_mem', $1, false)")
        .bind(&memory)
        .execute(&mut *conn)
        .await
        .expect("maintenance_work_mem");
    sqlx::query("SET max_parallel_maintenance_workers = 1").execute(&mut *conn).await.expect("setting");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM collections").fetch_all(&mut *conn).await.expect("ids");
    for id in ids {
        let sql = hnsw_index_sql(id, opts.hnsw_m, opts.hnsw_ef_construction);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.expect("build the HNSW index");
    }
    sqlx::query("ANALYZE").execute(&mut *conn).await.expect("analyze");
    eprintln!(
        "built the HNSW indexes (m = {}, ef_construction = {}) in {:.1?}",
        opts.hnsw_m,
        opts.hnsw_ef_construction,
        started.elapsed()
    );
}

async fn measure(label: &str, store: &PgStore, indexes: &Indexes, cfg: &Config, queries: &[(String, Vec<f32>)]) {
    let collections = vec![label.to_owned()];
    let (mut hybrid, mut vector, mut bm25, mut vector40) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut recall = 0.0;
    for (i, (text, q)) in queries.iter().enumerate() {
        let started = Instant::now();
        let ranked =
            retrieval::rank(indexes, &cfg.retrieval, &collections, text, Some(q), Mode::Hybrid).await.expect("rank");
        let took = started.elapsed();
        assert!(!ranked.is_empty());
        let started = Instant::now();
        let approx = store.vector_search_with(&collections, q, 10, VectorPlan::Default).await.expect("search");
        let vector_took = started.elapsed();
        let started = Instant::now();
        indexes.bm25().search(&collections, text, cfg.retrieval.bm25_top_k).expect("bm25");
        let bm25_took = started.elapsed();
        let started = Instant::now();
        store
            .vector_search_with(&collections, q, cfg.retrieval.vector_top_k, VectorPlan::Default)
            .await
            .expect("search");
        let vector40_took = started.elapsed();
        let exact = store.vector_search_with(&collections, q, 10, VectorPlan::Exact).await.expect("exact");
        recall += exact.iter().filter(|e| approx.iter().any(|a| a.0 == e.0)).count() as f64 / exact.len().max(1) as f64;
        if i >= 5 {
            // The first few warm the caches.
            hybrid.push(took);
            vector.push(vector_took);
            bm25.push(bm25_took);
            vector40.push(vector40_took);
        }
    }
    for list in [&mut hybrid, &mut vector, &mut bm25, &mut vector40] {
        list.sort();
    }
    println!(
        "{label:>5}: hybrid p50 {:>6.2} ms  p95 {:>6.2} ms | vector k=10 p50 {:>6.2} ms  p95 {:>6.2} ms | recall@10 {:.3} ({} queries)",
        percentile(&hybrid, 0.5).as_secs_f64() * 1e3,
        percentile(&hybrid, 0.95).as_secs_f64() * 1e3,
        percentile(&vector, 0.5).as_secs_f64() * 1e3,
        percentile(&vector, 0.95).as_secs_f64() * 1e3,
        recall / queries.len() as f64,
        queries.len()
    );
    println!(
        "       of which: BM25 top-{} p50 {:.2} ms, vector top-{} p50 {:.2} ms p95 {:.2} ms",
        cfg.retrieval.bm25_top_k,
        percentile(&bm25, 0.5).as_secs_f64() * 1e3,
        cfg.retrieval.vector_top_k,
        percentile(&vector40, 0.5).as_secs_f64() * 1e3,
        percentile(&vector40, 0.95).as_secs_f64() * 1e3,
    );
}

async fn run(server: &str) {
    let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
    let chunks = if smoke { 3000 } else { env_usize("BENCH_CHUNKS", 100_000) };
    let dims = env_usize("BENCH_DIMS", if smoke { 64 } else { 768 });
    let n_queries = if smoke { 20 } else { env_usize("BENCH_QUERIES", 200) };
    let mut cfg = Config::default();
    cfg.retrieval.hnsw_ef_search = env_usize("BENCH_EF_SEARCH", cfg.retrieval.hnsw_ef_search);

    let name = format!("footnote_bench_{:08x}", rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(server).await.expect("connect to the benchmark server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template1")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let mut url = reqwest::Url::parse(server).expect("server URL");
    url.set_path(&format!("/{name}"));
    cfg.database.url = url.to_string().into();

    let opts = PgOptions::from_config(&cfg);
    let store = Arc::new(PgStore::connect(&cfg.database.url, opts.clone()).await.expect("connect"));
    let mut rng = StdRng::seed_from_u64(7);
    let corpus =
        Corpus { centers: (0..TOPICS).map(|_| unit((0..dims).map(|_| gaussian(&mut rng)).collect())).collect(), dims };
    println!("PostgreSQL + pgvector: {chunks} chunks, {dims} dimensions, ef_search {}", opts.ef_search);
    let topics = load(&store, &corpus, &mut rng, chunks).await;
    build_index(&store, &opts).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let indexes = Indexes::open(dir.path(), None, HnswParams::from(&cfg.retrieval))
        .expect("BM25 index")
        .searching_vectors_in(store.as_ref());
    let started = Instant::now();
    indexes.catch_up(store.as_ref()).await.expect("BM25 catch-up");
    eprintln!("BM25 caught up in {:.1?}", started.elapsed());

    for label in ["main", "team"] {
        let candidates: Vec<usize> =
            topics.iter().enumerate().filter(|(_, (c, _))| c == label).map(|(i, _)| i).collect();
        let queries: Vec<(String, Vec<f32>)> = (0..n_queries)
            .map(|_| {
                let (_, topic) = &topics[candidates[rng.random_range(0..candidates.len())]];
                let words: Vec<String> =
                    (0..3).map(|_| Corpus::word(*topic, rng.random_range(0..WORDS_PER_TOPIC))).collect();
                (words.join(" "), corpus.vector(&mut rng, *topic, 0.6))
            })
            .collect();
        measure(label, &store, &indexes, &cfg, &queries).await;
    }
    store.pool().close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await;
}

fn main() {
    footnote::install_crypto_provider();
    let server = std::env::var("BENCH_DATABASE_URL").or_else(|_| std::env::var("FOOTNOTE_TEST_DATABASE_URL")).unwrap_or_else(|_| {
        panic!("set FOOTNOTE_TEST_DATABASE_URL (or BENCH_DATABASE_URL): start the server with `eval \"$(scripts/test-services.sh)\"`")
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(&server));
}
