use std::collections::HashSet;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const DIMS: usize = 96;

fn params(exact_below: usize) -> HnswParams {
    HnswParams { connectivity: 16, ef_construction: 128, ef_search: 128, exact_below }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn unit(dims: usize, axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; dims];
    v[axis] = 1.0;
    v
}

fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// `n` points of a Gaussian mixture: `centres` random centres, noise of `spread` per component.
fn mixture(n: usize, dims: usize, centres: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..centres).map(|_| (0..dims).map(|_| gaussian(&mut rng)).collect()).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            c.iter().map(|x| x + spread * gaussian(&mut rng)).collect()
        })
        .collect()
}

fn fill(index: &VectorIndex, collection: &str, first_id: u64, vectors: &[Vec<f32>]) {
    let items = vectors.iter().enumerate().map(|(i, v)| (first_id + i as u64, v.as_slice()));
    index.upsert_many(collection, items).expect("upsert");
}

fn ids(hits: &[(u64, f32)]) -> Vec<u64> {
    hits.iter().map(|h| h.0).collect()
}

fn files_with(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    found
}

#[test]
fn exact_search_ranks_known_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), 3, params(100)).expect("open");
    index.upsert("a", 1, &[1.0, 0.0, 0.0]).expect("upsert");
    index.upsert("a", 2, &[0.0, 2.0, 0.0]).expect("upsert"); // not unit: normalised on the way in
    index.upsert("a", 3, &[0.0, 0.0, 1.0]).expect("upsert");
    index.upsert("a", 4, &[1.0, 1.0, 0.0]).expect("upsert");
    let hits = index.search(&names(&["a"]), &[1.0, 0.2, 0.0], 3).expect("search");
    assert_eq!(ids(&hits), vec![1, 4, 2]);
    let q_norm = (1.0f32 + 0.04).sqrt();
    assert!((hits[0].1 - 1.0 / q_norm).abs() < 1e-5, "{hits:?}");
    assert!((hits[1].1 - 1.2 / (q_norm * 2f32.sqrt())).abs() < 1e-5, "{hits:?}");
    assert!((hits[2].1 - 0.2 / q_norm).abs() < 1e-5, "{hits:?}");
    assert_eq!(index.search_exact(&names(&["a"]), &[1.0, 0.2, 0.0], 3).expect("exact"), hits);
    assert_eq!(index.search(&names(&["a"]), &[1.0, 0.2, 0.0], 10).expect("search").len(), 4);
    assert!(index.search(&names(&["a"]), &[1.0, 0.2, 0.0], 0).expect("search").is_empty());
}

#[test]
fn upsert_replaces_and_remove_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), 4, params(100)).expect("open");
    index.upsert("a", 7, &unit(4, 0)).expect("upsert");
    index.upsert("a", 8, &unit(4, 2)).expect("upsert");
    index.upsert("a", 7, &unit(4, 1)).expect("replace");
    assert_eq!(index.len(), 2);
    let hits = index.search(&names(&["a"]), &unit(4, 1), 1).expect("search");
    assert_eq!(hits[0].0, 7);
    assert!((hits[0].1 - 1.0).abs() < 1e-6);
    let hits = index.search(&names(&["a"]), &unit(4, 0), 2).expect("search");
    assert!(hits.iter().all(|h| h.1 < 0.5), "the old vector of 7 is gone: {hits:?}");

    index.remove("a", 7).expect("remove");
    index.remove("a", 7).expect("removing again is a no-op");
    index.remove("nowhere", 1).expect("unknown collection is a no-op");
    assert_eq!(index.collection_len("a"), 1);
    assert_eq!(ids(&index.search(&names(&["a"]), &unit(4, 1), 5).expect("search")), vec![8]);
    index.remove("a", 8).expect("remove");
    assert!(index.is_empty());
    assert_eq!(index.collection_len("a"), 0);
}

#[test]
fn merges_several_collections_by_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), 2, params(100)).expect("open");
    index.upsert("discord/1/2", 1, &[0.9, 0.1]).expect("upsert");
    index.upsert("my notes", 2, &[1.0, 0.0]).expect("upsert");
    index.upsert("my notes", 3, &[0.0, 1.0]).expect("upsert");
    index.upsert("other", 4, &[1.0, 0.01]).expect("upsert");
    let scope = names(&["discord/1/2", "my notes", "my notes", "missing"]);
    let hits = index.search(&scope, &[1.0, 0.0], 3).expect("search");
    assert_eq!(ids(&hits), vec![2, 1, 3]);
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
    index.remove_collection("my notes").expect("remove collection");
    assert_eq!(ids(&index.search(&scope, &[1.0, 0.0], 3).expect("search")), vec![1]);
    assert_eq!(index.len(), 2);
}

#[test]
fn never_leaks_across_collections_and_small_collection_gets_full_k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    let big = mixture(20_000, DIMS, 100, 0.4, 1);
    let small = mixture(50, DIMS, 3, 0.4, 2);
    fill(&index, "big", 0, &big);
    fill(&index, "small", 1_000_000, &small);
    assert_eq!(index.len(), 20_050);
    let small_ids: HashSet<u64> = (1_000_000..1_000_050).collect();
    // Queries that are *exactly* vectors of the big collection: its own ids would score 1.0.
    for query in big.iter().step_by(997).take(20) {
        for k in [10, 50, 80] {
            let hits = index.search(&names(&["small"]), query, k).expect("search");
            assert_eq!(hits.len(), k.min(50), "full k from the small collection");
            assert!(hits.iter().all(|h| small_ids.contains(&h.0)), "leak: {hits:?}");
        }
        let hits = index.search(&names(&["big"]), query, 10).expect("search");
        assert!(hits.iter().all(|h| h.0 < 20_000), "leak into big: {hits:?}");
        assert_eq!(hits.len(), 10);
    }
    // The same the other way round: small's own vectors as queries against big only.
    for query in &small {
        let hits = index.search(&names(&["big"]), query, 20).expect("search");
        assert_eq!(hits.len(), 20);
        assert!(hits.iter().all(|h| !small_ids.contains(&h.0)));
    }
}

#[test]
fn hnsw_recall_at_10_against_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    let points = mixture(20_100, DIMS, 200, 0.5, 3);
    let (data, queries) = points.split_at(20_000);
    fill(&index, "c", 0, data);
    let scope = names(&["c"]);
    let mut found = 0;
    for query in queries {
        let exact: HashSet<u64> = ids(&index.search_exact(&scope, query, 10).expect("exact")).into_iter().collect();
        let approx = index.search(&scope, query, 10).expect("search");
        assert_eq!(approx.len(), 10);
        found += approx.iter().filter(|h| exact.contains(&h.0)).count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    eprintln!("recall@10 = {recall}");
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

#[test]
fn graph_follows_replacements_removals_and_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), DIMS, params(300)).expect("open");
    let points = mixture(400, DIMS, 10, 0.5, 4);
    fill(&index, "c", 0, &points);
    let scope = names(&["c"]);
    // Move chunk 5 onto chunk 300's vector: both must now score ~1 for that query.
    index.upsert("c", 5, &points[300]).expect("replace");
    let hits = index.search(&scope, &points[300], 2).expect("search");
    assert_eq!(hits.iter().map(|h| h.0).collect::<HashSet<_>>(), HashSet::from([5, 300]));
    index.remove("c", 300).expect("remove");
    let hits = index.search(&scope, &points[300], 2).expect("search");
    assert_eq!(hits[0].0, 5);
    assert!(hits.iter().all(|h| h.0 != 300));
    // Shrink below half the threshold: the graph goes, exact search answers.
    for id in 0..300 {
        index.remove("c", id).expect("remove");
    }
    assert_eq!(index.collection_len("c"), 99);
    let hits = index.search(&scope, &points[350], 5).expect("search");
    assert_eq!(hits, index.search_exact(&scope, &points[350], 5).expect("exact"));
    assert_eq!(hits[0].0, 350);
}

#[test]
fn persist_and_reopen_keep_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = mixture(2_000, DIMS, 20, 0.5, 5);
    let small = mixture(30, DIMS, 2, 0.5, 6);
    let scope = names(&["big", "small"]);
    let before = {
        let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
        fill(&index, "big", 0, &big);
        fill(&index, "small", 10_000, &small);
        index.persist(42).expect("persist");
        assert_eq!(index.watermark(), 42);
        let first = files_with(dir.path(), "vec");
        // Change only `small`: a second persist rewrites it and keeps big's files.
        index.upsert("small", 10_000, &big[0]).expect("upsert");
        index.persist(43).expect("persist");
        let second = files_with(dir.path(), "vec");
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 2);
        assert_eq!(first.iter().filter(|f| second.contains(f)).count(), 1, "{first:?} {second:?}");
        big.iter().take(10).map(|q| index.search(&scope, q, 10).expect("search")).collect::<Vec<_>>()
    };
    assert_eq!(files_with(dir.path(), "hnsw").len(), 1, "the big collection's graph is saved");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("reopen");
    assert_eq!(index.watermark(), 43);
    assert_eq!(index.len(), 2_030);
    assert_eq!(index.collection_len("small"), 30);
    let after: Vec<_> = big.iter().take(10).map(|q| index.search(&scope, q, 10).expect("search")).collect();
    assert_eq!(before, after);
    // Nothing changed since the load: persisting again writes no new vector file.
    let files = files_with(dir.path(), "vec");
    index.persist(44).expect("persist");
    assert_eq!(files_with(dir.path(), "vec"), files);
    assert_eq!(VectorIndex::open(dir.path(), DIMS, params(1000)).expect("reopen").watermark(), 44);
}

#[test]
fn corrupt_vector_file_opens_empty_with_watermark_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
        fill(&index, "a", 0, &mixture(100, DIMS, 3, 0.5, 7));
        index.persist(9).expect("persist");
    }
    let file = files_with(dir.path(), "vec").pop().expect("vector file");
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).expect("write");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);

    // A torn (truncated) file too.
    bytes.truncate(middle);
    std::fs::write(&file, &bytes).expect("write");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
    // It still works, and its next persist replaces the bad state.
    index.upsert("a", 1, &unit(DIMS, 0)).expect("upsert");
    index.persist(1).expect("persist");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    assert_eq!((index.len(), index.watermark()), (1, 1));
}

#[test]
fn torn_manifest_opens_empty_with_watermark_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = VectorIndex::open(dir.path(), 4, params(1000)).expect("open");
        index.upsert("a", 1, &unit(4, 0)).expect("upsert");
        index.persist(5).expect("persist");
    }
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read(&manifest).expect("read");
    std::fs::write(&manifest, &text[..text.len() / 2]).expect("write");
    let index = VectorIndex::open(dir.path(), 4, params(1000)).expect("open");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
}

#[test]
fn corrupt_graph_is_rebuilt_from_the_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let points = mixture(1_500, DIMS, 10, 0.5, 8);
    {
        let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
        fill(&index, "a", 0, &points);
        index.persist(77).expect("persist");
    }
    let graph = files_with(dir.path(), "hnsw").pop().expect("graph file");
    std::fs::write(&graph, b"not a graph").expect("write");
    let index = VectorIndex::open(dir.path(), DIMS, params(1000)).expect("open");
    assert_eq!((index.len(), index.watermark()), (1_500, 77));
    let hits = index.search(&names(&["a"]), &points[42], 1).expect("search");
    assert_eq!(hits[0].0, 42);
}

#[test]
fn dimension_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), 4, params(1000)).expect("open");
    assert_eq!(index.dims(), 4);
    let err = index.upsert("a", 1, &[1.0, 0.0, 0.0]).expect_err("wrong length");
    assert!(matches!(err, VectorIndexError::DimensionMismatch { expected: 4, got: 3 }), "{err:?}");
    let err = index.search(&names(&["a"]), &[1.0; 5], 1).expect_err("wrong length");
    assert!(matches!(err, VectorIndexError::DimensionMismatch { expected: 4, got: 5 }), "{err:?}");
    assert!(matches!(index.upsert("a", 1, &[f32::NAN, 0.0, 0.0, 0.0]), Err(VectorIndexError::InvalidVector(_))));
    assert!(index.is_empty());
    index.upsert("a", 1, &unit(4, 0)).expect("upsert");
    index.persist(3).expect("persist");
    drop(index);
    // The embedding model changed: the stored 4-d index is dropped, the caller replays from 0.
    let index = VectorIndex::open(dir.path(), 8, params(1000)).expect("open");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
}

#[test]
fn clear_drops_everything_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), DIMS, params(100)).expect("open");
    fill(&index, "a", 0, &mixture(200, DIMS, 3, 0.5, 9));
    index.persist(12).expect("persist");
    index.clear().expect("clear");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
    assert!(files_with(dir.path(), "vec").is_empty() && files_with(dir.path(), "hnsw").is_empty());
    let index = VectorIndex::open(dir.path(), DIMS, params(100)).expect("reopen");
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
}

#[test]
fn concurrent_searches_while_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = VectorIndex::open(dir.path(), DIMS, params(500)).expect("open");
    let points = mixture(1_200, DIMS, 10, 0.5, 10);
    fill(&index, "a", 0, &points[..1_000]);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (index, points) = (&index, &points);
            scope.spawn(move || {
                for q in points.iter().skip(t).step_by(37) {
                    assert_eq!(index.search(&names(&["a"]), q, 10).expect("search").len(), 10);
                }
            });
        }
        for (i, v) in points[1_000..].iter().enumerate() {
            index.upsert("a", 1_000 + i as u64, v).expect("upsert");
        }
    });
    assert_eq!(index.len(), 1_200);
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<VectorIndex>();
}
