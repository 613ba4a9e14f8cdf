//! Chunk sizes, overlap, and chunks staying inside their section.

use footnote_adapter::Locator;

use super::super::{ChunkDraft, Chunker, DocKind, Extracted, Section, count_tokens};

fn words(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>().join(" ") + "."
}

fn sentences(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("The {prefix} item number {i} is described here in a few plain words."))
        .collect::<Vec<_>>()
        .join(" ")
}

fn page(n: u32, text: String) -> Section {
    Section { text, locator: Locator { page: Some(n), ..Locator::default() } }
}

fn doc(kind: DocKind, sections: Vec<Section>) -> Extracted {
    Extracted { title: "t".into(), kind, sections, pages: None }
}

/// Length in bytes of the longest suffix of `a` that is a prefix of `b`.
fn shared(a: &str, b: &str) -> usize {
    (1..=a.len().min(b.len()))
        .rev()
        .find(|&k| a.is_char_boundary(a.len() - k) && b.is_char_boundary(k) && a[a.len() - k..] == b[..k])
        .unwrap_or(0)
}

#[test]
fn chunks_fit_the_budget_and_overlap() {
    let chunker = Chunker::new(64, 16);
    let text = sentences("alpha", 60);
    let drafts = chunker.chunk(&doc(DocKind::Text, vec![page(1, text.clone())]));
    assert!(drafts.len() > 5, "{}", drafts.len());
    for d in &drafts {
        assert!(d.tokens as usize <= 64 && d.tokens > 0, "{} tokens", d.tokens);
        assert_eq!(d.tokens as usize, count_tokens(&d.text));
        assert!(text.contains(&d.text));
    }
    for pair in drafts.windows(2) {
        assert!(
            shared(&pair[0].text, &pair[1].text) >= 20,
            "no overlap between {:?} and {:?}",
            pair[0].text,
            pair[1].text
        );
    }
    // Without overlap, neighbours share nothing.
    let plain = Chunker::new(64, 0).chunk(&doc(DocKind::Text, vec![page(1, text)]));
    assert!(plain.windows(2).all(|p| shared(&p[0].text, &p[1].text) == 0));
}

#[test]
fn chunks_never_cross_sections() {
    let sections = vec![page(1, words("alpha", 150)), page(2, "tiny".into()), page(3, words("bravo", 150))];
    let drafts: Vec<ChunkDraft> = Chunker::new(40, 8).chunk(&doc(DocKind::Text, sections.clone()));
    for d in &drafts {
        let section = sections.iter().find(|s| s.locator == d.locator).map(|s| s.text.as_str()).unwrap_or("");
        assert!(section.contains(&d.text), "chunk {:?} is not inside its section", d.text);
    }
    assert_eq!(drafts.iter().filter(|d| d.locator.page == Some(2)).count(), 1);
    assert!(drafts.iter().any(|d| d.locator.page == Some(3)));
}

#[test]
fn markdown_is_split_along_its_structure() {
    let mut md = String::new();
    for i in 0..12 {
        md.push_str(&format!("- list item {i} with some words in it\n"));
    }
    md.push_str("\n```\ncode line one\ncode line two\n```\n\nA closing paragraph.\n");
    let section = Section {
        text: md.clone(),
        locator: Locator { heading_path: vec!["A".into(), "B".into()], ..Locator::default() },
    };
    let drafts = Chunker::new(48, 0).chunk(&doc(DocKind::Markdown, vec![section]));
    assert!(drafts.len() >= 2);
    assert!(drafts.iter().all(|d| d.locator.heading_path == ["A", "B"] && d.tokens <= 48));
    assert!(drafts.iter().any(|d| d.text.starts_with("```") || d.text.contains("\n```")), "{drafts:#?}");
}

#[test]
fn chunker_is_cheap_to_share() {
    fn shareable<T: Send + Sync + Clone>(_: &T) {}
    let chunker = Chunker::new(200, 30);
    shareable(&chunker);
    let other = chunker.clone();
    assert_eq!(other.chunk(&doc(DocKind::Text, vec![page(1, "Hello world.".into())]))[0].tokens, 3);
    // Nonsense settings are clamped, not a panic.
    assert!(!Chunker::new(0, 10).chunk(&doc(DocKind::Text, vec![page(1, "ab".into())])).is_empty());
}
