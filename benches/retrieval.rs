//! Vector retrieval benchmark: builds indexes of synthetic clustered vectors and reports build
//! time, memory, search latency percentiles and ANN recall@10 against exact search.
//!
//! `cargo bench --bench retrieval`. Environment:
//! - `BENCH_SIZES=10000,100000` vectors in the large collection (default both);
//!   `BENCH_SMOKE=1` runs one tiny size (2,000) with fewer queries, for CI.
//! - `BENCH_DIMS` (768), `BENCH_QUERIES` (500), `BENCH_CENTRES` (100), `BENCH_SPREAD` (1.5: noise
//!   1.5x the spread of the centres, so a point's true neighbours are not just its cluster).
//! - `BENCH_M`, `BENCH_EF`, `BENCH_EFC`, `BENCH_EXACT_BELOW` override the HNSW parameters
//!   (default: `RetrievalConfig::default()`), `BENCH_QUANT=f32|f16|i8` the graph quantization;
//!   `BENCH_EF_SWEEP=32,64,128` also measures other search breadths on the saved graph.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use footnote::index::vector::{HnswParams, Quantization, VectorIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SMALL: usize = 200;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Gaussian mixture: `centres` centres with N(0,1) components, points = centre + N(0, spread²).
struct Mixture {
    centres: Vec<Vec<f32>>,
    spread: f32,
    rng: StdRng,
}

impl Mixture {
    fn new(dims: usize, centres: usize, spread: f32, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..centres).map(|_| (0..dims).map(|_| gaussian(&mut rng)).collect()).collect();
        Mixture { centres, spread, rng }
    }

    fn points(&mut self, n: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                let c = self.rng.random_range(0..self.centres.len());
                let spread = self.spread;
                let rng = &mut self.rng;
                self.centres[c].iter().map(|x| x + spread * gaussian(rng)).collect()
            })
            .collect()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Runs `search` on every query; returns p50/p95/p99 in ms.
fn latencies(queries: &[Vec<f32>], mut search: impl FnMut(&[f32])) -> [f64; 3] {
    let mut times: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let start = Instant::now();
            search(q);
            start.elapsed()
        })
        .collect();
    times.sort();
    [percentile(&times, 0.50), percentile(&times, 0.95), percentile(&times, 0.99)]
}

fn row(label: &str, [p50, p95, p99]: [f64; 3]) {
    println!("  {label:<44} p50 {p50:>7.3} ms   p95 {p95:>7.3} ms   p99 {p99:>7.3} ms");
}

/// Share of the exact top 10 that `search` returns, over `queries`.
fn recall_at_10(index: &VectorIndex, scope: &[String], queries: &[Vec<f32>]) -> f64 {
    let mut found = 0;
    for q in queries {
        let exact: HashSet<u64> = index.search_exact(scope, q, 10).expect("exact").iter().map(|h| h.0).collect();
        let approx = index.search(scope, q, 10).expect("search");
        found += approx.iter().filter(|h| exact.contains(&h.0)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

fn run(n: usize, dims: usize, n_queries: usize, params: HnswParams, quantization: Quantization) {
    let centres = env_or("BENCH_CENTRES", 100usize);
    let spread = env_or("BENCH_SPREAD", 1.5f32);
    let mut mixture = Mixture::new(dims, centres, spread, 20_240_601);
    let start = Instant::now();
    let data = mixture.points(n);
    let queries = mixture.points(n_queries);
    let small = Mixture::new(dims, 5, spread, 7).points(SMALL);
    println!(
        "\n== {n} vectors x {dims} dims ({centres} centres, spread {spread}; generated in {:.1} s) ==",
        start.elapsed().as_secs_f64()
    );

    let dir = std::env::temp_dir().join(format!("footnote-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let index = match VectorIndex::open_with(&dir, dims, params, quantization) {
        Ok(index) => index,
        Err(error) => return eprintln!("cannot open the index in {}: {error}", dir.display()),
    };
    let big = vec!["big".to_string()];
    let small_scope = vec!["small".to_string()];
    let both = vec!["big".to_string(), "small".to_string()];

    let start = Instant::now();
    for (b, batch) in data.chunks(1_000).enumerate() {
        let items = batch.iter().enumerate().map(|(i, v)| ((b * 1_000 + i) as u64, v.as_slice()));
        index.upsert_many("big", items).expect("upsert");
    }
    let build = start.elapsed();
    let start = Instant::now();
    for (i, v) in small.iter().enumerate() {
        index.upsert("small", (10_000_000 + i) as u64, v).expect("upsert");
    }
    let small_build = start.elapsed();
    println!(
        "  build: {:.2} s in batches of 1000 ({:.0} vectors/s); small collection ({SMALL}) one by one: {:.1} ms",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        small_build.as_secs_f64() * 1e3
    );
    println!(
        "  memory: {:.1} MiB allocated (f32 vectors {:.1} MiB; ids, graph, and the graph's arenas, which grow\n          by doubling so part is reserved rather than resident)",
        index.memory_usage() as f64 / (1 << 20) as f64,
        (n * dims * 4) as f64 / (1 << 20) as f64
    );

    let start = Instant::now();
    index.persist(1).expect("persist");
    let persist = start.elapsed();
    drop(index);
    let start = Instant::now();
    let index = VectorIndex::open_with(&dir, dims, params, quantization).expect("reopen");
    println!(
        "  persist: {:.2} s; reopen (graph loaded, not rebuilt): {:.2} s",
        persist.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(index.len(), n + SMALL);

    let recall = recall_at_10(&index, &big, &queries);
    println!("  recall@10 (search vs search_exact, {n_queries} held-out queries): {recall:.4}");

    row("search big, k=10", latencies(&queries, |q| drop(index.search(&big, q, 10))));
    row("search big, k=40", latencies(&queries, |q| drop(index.search(&big, q, 40))));
    row("search big + small, k=40", latencies(&queries, |q| drop(index.search(&both, q, 40))));
    let exact_queries = &queries[..queries.len().min(50)];
    row(
        "search_exact big, k=10 (brute force f32)",
        latencies(exact_queries, |q| drop(index.search_exact(&big, q, 10))),
    );
    let mut full = true;
    let small_lat = latencies(&queries, |q| {
        let hits = index.search(&small_scope, q, 40).expect("search");
        full &= hits.len() == 40 && hits.iter().all(|h| h.0 >= 10_000_000);
    });
    row(&format!("search small ({SMALL}) inside the index, k=40"), small_lat);
    println!("  small collection: full k and no foreign id in every answer: {}", if full { "yes" } else { "NO" });
    drop(index);

    // Other search breadths on the same saved graph (reopened, not rebuilt).
    let sweep: Vec<usize> = std::env::var("BENCH_EF_SWEEP")
        .map(|list| list.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default();
    for ef_search in sweep {
        let params = HnswParams { ef_search, ..params };
        let index = VectorIndex::open_with(&dir, dims, params, quantization).expect("reopen");
        let recall = recall_at_10(&index, &big, &queries);
        println!("  ef_search {ef_search:>4}: recall@10 {recall:.4}");
        row("  search big, k=40", latencies(&queries, |q| drop(index.search(&big, q, 40))));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
    let sizes: Vec<usize> = match std::env::var("BENCH_SIZES") {
        Ok(list) => list.split(',').filter_map(|s| s.trim().replace('_', "").parse().ok()).collect(),
        Err(_) if smoke => vec![2_000],
        Err(_) => vec![10_000, 100_000],
    };
    let dims = env_or("BENCH_DIMS", 768usize);
    let n_queries = env_or("BENCH_QUERIES", if smoke { 50 } else { 500usize });
    let defaults = HnswParams::default();
    let params = HnswParams {
        connectivity: env_or("BENCH_M", defaults.connectivity),
        ef_construction: env_or("BENCH_EFC", defaults.ef_construction),
        ef_search: env_or("BENCH_EF", defaults.ef_search),
        exact_below: env_or("BENCH_EXACT_BELOW", defaults.exact_below),
    };
    let quantization = match std::env::var("BENCH_QUANT").as_deref() {
        Ok("f32") => Quantization::F32,
        Ok("f16") => Quantization::F16,
        Ok("i8") => Quantization::I8,
        _ => Quantization::default(),
    };
    println!("Footnote vector retrieval benchmark");
    println!("DATA: synthetic random vectors (Gaussian mixture), not real embeddings; real embeddings");
    println!("      usually give higher recall. Queries are held-out points of the same mixture.");
    println!(
        "params: {params:?}, graph quantization {quantization:?}, cores {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for n in sizes {
        run(n, dims, n_queries, params, quantization);
    }
}
