//! Hybrid retrieval latency on the embedded store: BM25 (tantivy) + vector (HNSW) + reciprocal
//! rank fusion + loading the winning chunks from SQLite, exactly the path a question takes
//! (`footnote::retrieval::retrieve`), with the query embedding excluded (precomputed).
//!
//! Synthetic corpus: chunks of ~120 words drawn from one of `BENCH_TOPICS` topic vocabularies
//! plus common words, with 768-d vectors from a Gaussian mixture (one centre per topic).
//!
//! - `BENCH_SIZES=10000,100000` chunks (default both); `BENCH_SMOKE=1` one tiny size for CI.
//! - `BENCH_DIMS` (768), `BENCH_QUERIES` (300).
//!
//! Run: `cargo bench --bench hybrid`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote::config::RetrievalConfig;
use footnote::index::Indexes;
use footnote::index::vector::HnswParams;
use footnote::retrieval;
use footnote::store::sqlite::SqliteStore;
use footnote::store::{NewChunk, NewDocument, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CHUNKS_PER_DOC: usize = 100;
const WORDS_PER_CHUNK: usize = 120;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random_range(0.0..1.0));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

struct Corpus {
    topics: Vec<Vec<String>>,
    common: Vec<String>,
    centres: Vec<Vec<f32>>,
}

impl Corpus {
    fn new(rng: &mut StdRng, topics: usize, dims: usize) -> Corpus {
        let word = |rng: &mut StdRng| -> String {
            (0..rng.random_range(4..9)).map(|_| rng.random_range(b'a'..=b'z') as char).collect()
        };
        Corpus {
            topics: (0..topics).map(|_| (0..60).map(|_| word(rng)).collect()).collect(),
            common: (0..400).map(|_| word(rng)).collect(),
            centres: (0..topics).map(|_| (0..dims).map(|_| gaussian(rng)).collect()).collect(),
        }
    }

    fn text(&self, rng: &mut StdRng, topic: usize) -> String {
        (0..WORDS_PER_CHUNK)
            .map(|_| {
                if rng.random_bool(0.3) {
                    self.topics[topic][rng.random_range(0..60)].as_str()
                } else {
                    self.common[rng.random_range(0..400)].as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn vector(&self, rng: &mut StdRng, topic: usize) -> Vec<f32> {
        self.centres[topic].iter().map(|c| c + 1.5 * gaussian(rng)).collect()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(n: usize, dims: usize, queries: usize) {
    let mut rng = StdRng::seed_from_u64(7);
    let topics = (n / 200).clamp(10, 500);
    let corpus = Corpus::new(&mut rng, topics, dims);
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await.expect("store"));
    let cfg = RetrievalConfig::default();
    let indexes = Indexes::open(&dir.path().join("index"), Some(dims), HnswParams::from(&cfg)).expect("indexes");

    let started = Instant::now();
    for d in 0..n.div_ceil(CHUNKS_PER_DOC) {
        let chunks = (0..CHUNKS_PER_DOC.min(n - d * CHUNKS_PER_DOC))
            .map(|_| {
                let topic = rng.random_range(0..topics);
                NewChunk {
                    text: corpus.text(&mut rng, topic),
                    locator: Default::default(),
                    tokens: 160,
                    embedding: Some(corpus.vector(&mut rng, topic)),
                }
            })
            .collect();
        let doc = NewDocument {
            collection: "bench".into(),
            source: format!("doc-{d}"),
            title: format!("Document {d}"),
            kind: "text".into(),
            content_hash: format!("{d:064}"),
            bytes: 1,
            pages: None,
            origin: Default::default(),
            chunks,
            may_replace: true,
        };
        store.insert_document(doc).await.expect("insert");
    }
    let stored = started.elapsed();
    let started = Instant::now();
    indexes.catch_up(store.as_ref()).await.expect("catch up");
    let indexed = started.elapsed();

    let scope = vec!["bench".to_owned()];
    let mut samples = Vec::with_capacity(queries);
    for _ in 0..queries {
        let topic = rng.random_range(0..topics);
        let text: String =
            (0..5).map(|_| corpus.topics[topic][rng.random_range(0..60)].clone()).collect::<Vec<_>>().join(" ");
        let vector = corpus.vector(&mut rng, topic);
        let t = Instant::now();
        let hits = retrieval::retrieve(&indexes, store.as_ref(), &cfg, &scope, &text, Some(&vector), 24)
            .await
            .expect("retrieve");
        samples.push(t.elapsed());
        assert!(!hits.is_empty());
    }
    samples.sort();
    println!(
        "| {n:>7} | {dims} | {:>6.1} s | {:>6.1} s | {:>6.2} | {:>6.2} | {:>6.2} |",
        stored.as_secs_f64(),
        indexed.as_secs_f64(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99)
    );
}

fn main() {
    let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
    let sizes: Vec<usize> = match std::env::var("BENCH_SIZES") {
        Ok(list) => list.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) if smoke => vec![1_000],
        Err(_) => vec![10_000, 100_000],
    };
    let dims = env_or("BENCH_DIMS", 768usize);
    let queries = env_or("BENCH_QUERIES", if smoke { 20 } else { 300usize });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!(
        "hybrid retrieval (BM25 top-40 + HNSW top-40 + RRF + SQLite fetch of 24), query embedding excluded, {queries} queries"
    );
    println!("| chunks | dims | store | index | p50 ms | p95 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        runtime.block_on(run(n, dims, queries));
    }
}
