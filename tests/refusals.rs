//! Bad input: every file in `tests/fixtures/broken/` is refused with its own clear message and
//! leaves the store exactly as it was.

mod common;

use std::collections::BTreeMap;

use common::*;
use footnote_adapter::{Actor, Gateway, IngestError, Upload};

#[tokio::test]
async fn each_broken_file_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let core = env.core().await;
    ingest(&core, "box", "keep.md", "# Keep\n\nThis document was here before and must stay.").await;
    let rag = &core.rag();
    let before = rag.store().counts(None).await.unwrap();
    let seq_before = rag.store().last_seq().await.unwrap();

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let mut messages: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert!(names.len() >= 8, "the broken-file folder lost files: {names:?}");
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let upload = Upload { file_name: name.clone(), mime: None, bytes, origin: Default::default() };
        let error = core.ingest(&scope("box"), &Actor::operator(), upload).await.expect_err(name);
        assert_ne!(error, IngestError::Internal, "{name} was not recognised as bad input");
        let message = error.user_message();
        assert!(!message.contains("Error") && !message.contains("error:"), "{name}: raw error text shown: {message}");
        assert!(
            message.contains("Nothing was added")
                || message.contains("nothing to add")
                || message.contains("I can't read"),
            "{name}: {message}"
        );
        messages.insert(name.clone(), message);
    }
    // Each kind of damage has its own explanation (the two empty files share one).
    let mut distinct: Vec<&String> = messages.values().collect();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= names.len() - 1, "messages are not specific enough: {messages:#?}");

    let after = rag.store().counts(None).await.unwrap();
    assert_eq!(before, after, "a refused file left something behind");
    assert_eq!(seq_before, rag.store().last_seq().await.unwrap(), "a refused file touched the change log");
    assert_eq!(rag.indexes().bm25().len() as i64, after.chunks);
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_before_reading_it() {
    let mut env = TestEnv::new().await;
    env.config.ingest.max_file_size = bytesize::ByteSize::kib(1);
    let core = env.core().await;
    let error =
        core.ingest(&scope("box"), &Actor::operator(), upload("big.txt", &"word ".repeat(1000))).await.unwrap_err();
    assert!(matches!(error, IngestError::TooLarge(_)));
    assert!(error.user_message().contains("1.0 KiB"), "{}", error.user_message());
    assert_eq!(core.rag().store().counts(None).await.unwrap().documents, 0);
}

#[tokio::test]
async fn an_email_with_attachments_is_searchable_with_its_locators() {
    let env = TestEnv::new().await;
    let core = env.core().await;
    let bytes =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail.eml")).unwrap();
    let receipt = core
        .ingest(
            &scope("mail"),
            &Actor::operator(),
            Upload { file_name: "mail.eml".into(), mime: None, bytes, origin: Default::default() },
        )
        .await
        .unwrap();
    assert!(receipt.chunks >= 3, "{receipt:?}");
    let rag = &core.rag();
    let ids: Vec<i64> = (1..=200).collect();
    let chunks = rag.store().chunks(&ids).await.unwrap();
    assert!(chunks.iter().all(|c| c.locator.subject.is_some()), "every email chunk carries its subject");
    assert!(chunks.iter().any(|c| c.locator.attachment.is_some()), "attachments are ingested with the mail");
}
