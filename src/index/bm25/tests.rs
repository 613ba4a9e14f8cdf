//! The BM25 index against scores computed by hand, collection filtering, deletions and the
//! chunk-to-document map.

use super::*;

fn index() -> (tempfile::TempDir, Bm25Index) {
    let dir = tempfile::tempdir().unwrap();
    let Ok(crate::index::lock::Access::Write(lock)) = crate::index::lock::acquire(dir.path(), "test") else {
        panic!("the writer lock of a new directory is free");
    };
    let index = Bm25Index::open(&dir.path().join("bm25"), &lock).unwrap();
    (dir, index)
}

fn chunk<'a>(id: u64, collection: &'a str, title: &'a str, body: &'a str) -> IndexedChunk<'a> {
    IndexedChunk { chunk_id: id, document_id: id * 10, collection, title, headings: "", body }
}

fn params(k1: f32, b: f32, title_weight: f32) -> Bm25Params {
    Bm25Params { k1, b, title_weight, headings_weight: 0.0 }
}

fn scores(hits: &[Bm25Hit]) -> Vec<(u64, f32)> {
    hits.iter().map(|h| (h.chunk_id, h.score)).collect()
}

fn assert_scores(hits: &[Bm25Hit], expected: &[(u64, f32)]) {
    assert_eq!(hits.len(), expected.len(), "{:?}", scores(hits));
    for (hit, (id, score)) in hits.iter().zip(expected) {
        assert_eq!(hit.chunk_id, *id, "{:?}", scores(hits));
        assert!((hit.score - score).abs() < 1e-4, "chunk {id}: {} instead of {score}", hit.score);
    }
}

/// Three chunks, body lengths 3, 2 and 4 (average 3): "apple" is in one, "cherry" in two.
fn fruit(index: &Bm25Index, titles: [&str; 3]) {
    let adds = [
        chunk(1, "c", titles[0], "apple banana apple"),
        chunk(2, "c", titles[1], "banana cherry"),
        chunk(3, "c", titles[2], "cherry cherry cherry durian"),
    ];
    index.apply(&adds, &[], 3).unwrap();
}

#[test]
fn bm25_by_hand_with_lucene_defaults() {
    let (_dir, index) = index();
    fruit(&index, ["", "", ""]);
    // idf(apple) = ln(1 + (3 − 1 + 0.5) / 1.5) = ln(2.6667) = 0.980829
    // idf(cherry) = ln(1 + (3 − 2 + 0.5) / 2.5) = ln(1.6) = 0.470004
    // 1: apple tf 2, length 3: 2 / (2 + 1.2 · (0.25 + 0.75 · 3/3)) = 0.625 → 0.613018
    // 2: cherry tf 1, length 2: 1 / (1 + 1.2 · (0.25 + 0.75 · 2/3)) = 0.526316 → 0.247371
    // 3: cherry tf 3, length 4: 3 / (3 + 1.2 · (0.25 + 0.75 · 4/3)) = 0.666667 → 0.313336
    let hits = index.search_with(&["c".into()], "apples and cherries", 10, &params(1.2, 0.75, 0.0)).unwrap();
    assert_scores(&hits, &[(1, 0.613018), (3, 0.313336), (2, 0.247371)]);
    assert_eq!(hits[0].document_id, 10);
    // k is a cut, not a filter on the scores.
    let top = index.search_with(&["c".into()], "apples and cherries", 2, &params(1.2, 0.75, 0.0)).unwrap();
    assert_eq!(top.iter().map(|h| h.chunk_id).collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn bm25f_by_hand_with_a_weighted_title() {
    let (_dir, index) = index();
    fruit(&index, ["", "Apple pie", ""]);
    // Title weight 0.5: average length 3 + 0.5 · 2/3 = 3.3333; df(apple) = max(1, 1) = 1.
    // k1 0.9, b 0.4:
    // 1: apple tf 2, length 3: norm 0.6 + 0.4 · 3/3.3333 = 0.96: 2 / (2 + 0.864) → 0.684936
    // 2: apple tf 0.5 (title), length 2 + 0.5 · 2 = 3: 0.5 / 1.364 → 0.359542;
    //    cherry tf 1: 1 / 1.864 → 0.252148; together 0.611690
    // 3: cherry tf 3, length 4: norm 0.6 + 0.4 · 4/3.3333 = 1.08: 3 / 3.972 → 0.354988
    let hits = index.search_with(&["c".into()], "apple cherry", 10, &params(0.9, 0.4, 0.5)).unwrap();
    assert_scores(&hits, &[(1, 0.684936), (2, 0.611690), (3, 0.354988)]);
    // Without the title, chunk 2 only has its cherry: 1 / (1 + 0.9 · (0.6 + 0.4 · 2/3)) = 0.561798.
    let hits = index.search_with(&["c".into()], "apple cherry", 10, &params(0.9, 0.4, 0.0)).unwrap();
    assert_eq!(hits[2].chunk_id, 2);
    assert!((hits[2].score - 0.470004 * 0.561798).abs() < 1e-4, "{:?}", scores(&hits));
}

#[test]
fn only_the_asked_collections_and_live_chunks_are_returned() {
    let (_dir, index) = index();
    index
        .apply(
            &[
                chunk(1, "mine", "", "apple tart"),
                chunk(2, "theirs", "", "apple apple apple"),
                chunk(3, "mine", "", "apple crumble"),
                chunk(4, "also", "", "apple pie"),
            ],
            &[],
            4,
        )
        .unwrap();
    let p = Bm25Params::default();
    let ids = |collections: &[&str]| -> Vec<u64> {
        let collections: Vec<String> = collections.iter().map(|c| (*c).to_owned()).collect();
        let mut ids: Vec<u64> =
            index.search_with(&collections, "apple", 10, &p).unwrap().iter().map(|h| h.chunk_id).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids(&["mine"]), [1, 3]);
    assert_eq!(ids(&["mine", "also"]), [1, 3, 4]);
    assert!(ids(&["nobody"]).is_empty());
    // The best chunk of another collection does not take a place of the top k.
    let top = index.search_with(&["mine".into()], "apple", 1, &p).unwrap();
    assert_eq!(top.len(), 1);
    assert_ne!(top[0].chunk_id, 2);

    index.apply(&[], &[1], 5).unwrap();
    assert_eq!(ids(&["mine"]), [3]);
    // Replaying a chunk (the log read again) keeps one live copy.
    index.apply(&[chunk(3, "mine", "", "apple crumble")], &[], 6).unwrap();
    assert_eq!(ids(&["mine"]), [3]);
    assert_eq!(index.document_ids(&[3, 4, 1, 99]).unwrap(), HashMap::from([(3, 30), (4, 40)]));
}

#[test]
fn headings_and_titles_are_searchable_fields() {
    let (_dir, index) = index();
    let adds = [
        IndexedChunk {
            chunk_id: 1,
            document_id: 1,
            collection: "c",
            title: "Router guide",
            headings: "Factory reset",
            body: "Hold the button for ten seconds.",
        },
        chunk(2, "c", "Printer guide", "Hold the lid while you lift it."),
    ];
    index.apply(&adds, &[], 2).unwrap();
    let p = |title_weight, headings_weight| Bm25Params { k1: 1.2, b: 0.75, title_weight, headings_weight };
    let ids = |q: &str, p: Bm25Params| -> Vec<u64> {
        index.search_with(&["c".into()], q, 10, &p).unwrap().iter().map(|h| h.chunk_id).collect()
    };
    assert!(ids("router reset", p(0.0, 0.0)).is_empty(), "the body alone does not say it");
    assert_eq!(ids("router reset", p(0.5, 0.0)), [1]);
    assert_eq!(ids("factory reset", p(0.0, 0.5)), [1]);
    assert_eq!(ids("hold", p(0.5, 0.5)).len(), 2);
}
