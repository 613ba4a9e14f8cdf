//! Several Footnote instances on one PostgreSQL, and PostgreSQL restarting under load.
//!
//! - Two instances with their own data directories (so their own BM25 indexes): what A ingests,
//!   B finds by BM25 and by vector within seconds; what A forgets, B stops finding.
//! - A private PostgreSQL cluster (started by `scripts/test-services.sh` on another port, so the
//!   other tests are not disturbed) is restarted while documents are ingested: every
//!   acknowledged document is there afterwards, and no document is half-stored.
#![cfg(feature = "postgres")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use footnote::rag::{ModelCheck, Rag};
use footnote::retrieval::{self, Mode};
use footnote_adapter::{Actor, Gateway};
use tokio_util::sync::CancellationToken;

/// Waits up to `limit` for `check` to hold.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn vector_titles(rag: &Rag, collection: &str, question: &str) -> Vec<String> {
    let vector = rag.embed_query(question).await.expect("embed");
    let cfg = &rag.config().retrieval;
    let ranked = retrieval::rank(rag.indexes(), cfg, &[collection.to_owned()], question, Some(&vector), Mode::Vector)
        .await
        .expect("rank");
    let ids: Vec<i64> = ranked.iter().map(|f| f.chunk_id as i64).collect();
    rag.store().chunks(&ids).await.expect("chunks").into_iter().map(|c| c.title).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_instance_ingests_or_forgets_the_other_sees_within_seconds() {
    let env = TestEnv::with_backend(Backend::Postgres).await;
    let a = env.core().await;
    let (_dir_b, config_b) = env.second_instance();
    let b = Rag::open(config_b, ModelCheck::Refuse).await.expect("open instance B");
    // B is told of A's commits (LISTEN/NOTIFY), not only polling.
    let mut signals = b.store().watch_changes().await.unwrap().expect("PostgreSQL notifies");
    let shutdown = CancellationToken::new();
    let sync = b.spawn_sync(shutdown.clone());

    let receipt = ingest(&a, "zoo", ZOO[0].0, ZOO[0].1).await;
    let zoo = vec!["zoo".to_owned()];
    let found = eventually(Duration::from_secs(10), || async {
        !b.indexes().bm25().search(&zoo, "penguins krill", 5).unwrap().is_empty()
    })
    .await;
    assert!(found, "B's BM25 index never saw A's document");
    let notified = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut signals)).await;
    assert!(matches!(notified, Ok(Some(()))), "no notification of A's commit");
    assert!(
        vector_titles(&b, "zoo", "What do penguins eat?").await.contains(&"Penguins".to_owned()),
        "B's vector search misses it"
    );

    a.forget(&scope("zoo"), &Actor::operator(), &receipt.document_id).await.expect("forget");
    let gone = eventually(Duration::from_secs(10), || async {
        b.indexes().bm25().search(&zoo, "penguins krill", 5).unwrap().is_empty()
    })
    .await;
    assert!(gone, "B's BM25 index still finds the forgotten document");
    assert!(vector_titles(&b, "zoo", "What do penguins eat?").await.is_empty(), "B's vector search still finds it");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), sync).await.expect("sync task stops on shutdown").unwrap();
}

/// A PostgreSQL cluster of this test alone, stopped and removed on drop.
struct PrivateServer {
    env: Vec<(String, String)>,
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/test-services.sh")
}

impl PrivateServer {
    fn start() -> PrivateServer {
        let offset = (std::process::id() % 400) as u16;
        let port = (0..400u16)
            .map(|i| 56000 + (offset + i) % 400)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        let dir = PathBuf::from(format!("/var/tmp/footnote-peers/restart-test-{port}"));
        let env = vec![
            ("FOOTNOTE_PG_PORT".to_owned(), port.to_string()),
            ("FOOTNOTE_PG_DIR".to_owned(), dir.display().to_string()),
        ];
        let mut server = PrivateServer { env, dir, url: String::new() };
        let out = server.run("start");
        server.url = String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("FOOTNOTE_TEST_DATABASE_URL=").map(str::to_owned))
            .expect("the script prints the URL");
        server
    }

    fn run(&self, mode: &str) -> Vec<u8> {
        let out = Command::new("bash")
            .arg(script())
            .arg(mode)
            .envs(self.env.iter().cloned())
            .output()
            .expect("run test-services.sh");
        assert!(out.status.success(), "test-services.sh {mode} failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").envs(self.env.iter().cloned()).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_ingest_loses_no_acknowledged_document_and_half_stores_none() {
    let server = tokio::task::spawn_blocking(PrivateServer::start).await.unwrap();
    let mut env = TestEnv::new().await;
    env.config.database.url = server.url.clone().into();
    env.config.database.retry_for = Duration::from_secs(30);
    let core = env.core().await;

    // Every document has the same shape, so the same number of chunks.
    let body = |i: usize| {
        (0..12)
            .map(|p| {
                format!("## Part {p}\n\nDocument {i} paragraph {p}: {}\n", "lorem ipsum dolor sit amet ".repeat(30))
            })
            .collect::<String>()
    };
    let (progress, mut done) = tokio::sync::watch::channel(0usize);
    let ingesting = tokio::spawn(async move {
        let mut receipts = Vec::new();
        let mut failures = 0;
        for i in 0..40 {
            let file = upload(&format!("doc-{i}.md"), &body(i));
            match core.ingest(&scope("load"), &Actor::operator(), file).await {
                Ok(r) => receipts.push(r),
                Err(_) => failures += 1,
            }
            let _ = progress.send(i + 1);
        }
        (core, receipts, failures)
    });
    // Stop the server once a few documents are in, keep it down for a while, start it again.
    done.wait_for(|n| *n >= 3).await.unwrap();
    let server = tokio::task::spawn_blocking(move || {
        server.run("stop");
        server
    })
    .await
    .unwrap();
    let at_stop = *done.borrow();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!ingesting.is_finished(), "the ingest did not wait for the server");
    let server = tokio::task::spawn_blocking(move || {
        server.run("start");
        server
    })
    .await
    .unwrap();
    assert!(at_stop < 40, "the server stopped only after the ingest ended");
    let (core, receipts, failures) = ingesting.await.unwrap();
    assert_eq!(failures, 0, "ingests failed although the server came back within the retry time");
    assert_eq!(receipts.len(), 40);

    let expected_chunks = receipts[0].chunks;
    assert!(expected_chunks > 1);
    let store = core.rag().store();
    let stored = store.documents(&["load".to_owned()]).await.unwrap();
    for receipt in &receipts {
        let doc = stored.iter().find(|d| d.id.to_string() == receipt.document_id);
        let doc = doc.unwrap_or_else(|| panic!("acknowledged document {} is missing", receipt.document_id));
        assert_eq!(doc.chunks as u32, receipt.chunks, "document {} is half-stored", doc.id);
    }
    assert!(stored.iter().all(|d| d.chunks as u32 == expected_chunks), "a document is half-stored: {stored:?}");
    assert_eq!(stored.len(), 40, "a document was stored twice or lost");
    // The change log and the BM25 index agree with the tables.
    let counts = store.counts(None).await.unwrap();
    assert_eq!(counts.chunks, 40 * expected_chunks as i64);
    assert_eq!(core.rag().indexes().bm25().len() as i64, counts.chunks);
    drop(server);
}
