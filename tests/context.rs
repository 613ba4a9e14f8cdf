//! Contextual chunks end to end: what Ollama is asked to embed for a chunk (its document title
//! and headings with its text), and how data embedded the older way is pointed out until
//! `footnote reindex --embeddings` re-embeds it.

mod common;

use common::*;
use footnote::rag::{ModelCheck, Rag, stale_embedding_input};
use footnote::store::META_EMBED_INPUT;

const MANUAL: &str = "# Router guide\n\n## Factory reset\n\nHold the reset button for ten seconds.\n";

/// Every text sent to `/api/embed` since the last reset.
fn embedded_texts(env: &TestEnv) -> Vec<String> {
    env.double
        .requests()
        .iter()
        .filter(|r| r.path == "/api/embed")
        .flat_map(|r| match &r.body["input"] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_embedded_with_their_title_and_headings() {
    let env = TestEnv::new().await;
    let core = env.core().await;
    env.double.reset_requests();
    ingest(&core, "k", "router.md", MANUAL).await;
    let texts = embedded_texts(&env);
    assert!(
        texts.iter().any(|t| t.ends_with("Router guide\nFactory reset\n\nHold the reset button for ten seconds.")),
        "{texts:?}"
    );
    assert_eq!(stale_embedding_input(core.rag().store()).await.unwrap(), None, "fresh data is current");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_embeddings_are_pointed_out_until_re_embedded() {
    let env = TestEnv::new().await;
    let core = env.core().await;
    ingest(&core, "k", "router.md", MANUAL).await;
    // As an earlier version left it: vectors made from another input.
    core.rag().store().set_meta(META_EMBED_INPUT, "text-only").await.unwrap();
    assert_eq!(stale_embedding_input(core.rag().store()).await.unwrap().as_deref(), Some("text-only"));
    drop(core);

    let rag = Rag::open(env.config.clone(), ModelCheck::Allow).await.expect("old data still opens");
    env.double.reset_requests();
    let embedded = rag.reindex(true).await.unwrap();
    assert_eq!(embedded as i64, rag.store().counts(None).await.unwrap().chunks);
    assert!(
        embedded_texts(&env).iter().all(|t| t.contains("Router guide\nFactory reset\n\n")),
        "{:?}",
        embedded_texts(&env)
    );
    assert_eq!(stale_embedding_input(rag.store()).await.unwrap(), None, "re-embedded data is current");
}
