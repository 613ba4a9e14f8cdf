//! A connection lost during a COMMIT that went through: the store's retry finds the upload it
//! stored itself and reports it as stored, not as a duplicate of itself, and stores it once.
//!
//! A TCP proxy between the store and the test server forwards everything until it sees the
//! client send `COMMIT`; from then on it drops the server's answers, lets the server finish the
//! commit, and closes the connection. The store sees an I/O error exactly where a crash of the
//! network after the commit would show one.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::pg::TestDatabase;
use footnote::store::postgres::{PgOptions, PgStore};
use footnote::store::{Inserted, NewChunk, NewDocument, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards connections to `upstream`; while armed, cuts the first one that sends `COMMIT`.
struct CommitCutter {
    port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CommitCutter {
    async fn start(upstream: String) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (armed, cuts) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (armed2, cuts2) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.expect("connect to the test server");
                tokio::spawn(relay(client, server, armed2.clone(), cuts2.clone()));
            }
        });
        CommitCutter { port, armed, cuts }
    }
}

async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cuts: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let severed = Arc::new(AtomicBool::new(false));
    let severed2 = severed.clone();
    let answers = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            if severed2.load(Ordering::SeqCst) || client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
        let commit = buf[..n].windows(6).any(|w| w == b"COMMIT");
        if commit && armed.swap(false, Ordering::SeqCst) {
            severed.store(true, Ordering::SeqCst);
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = server_write.write_all(&buf[..n]).await;
            // Let the server commit, then drop both sides without a word (the answer relay has
            // already dropped the server's reply and closed its side).
            tokio::time::sleep(Duration::from_millis(300)).await;
            answers.abort();
            return;
        }
        if server_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    answers.abort();
}

fn document(source: &str, text: &str) -> NewDocument {
    NewDocument {
        collection: "cut".into(),
        source: source.into(),
        title: source.into(),
        kind: "text".into(),
        content_hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
        bytes: text.len() as i64,
        pages: None,
        origin: Default::default(),
        chunks: vec![NewChunk {
            text: text.into(),
            locator: Default::default(),
            tokens: 3,
            embedding: Some(vec![0.6, 0.8, 0.0]),
        }],
        may_replace: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_commit_answer_was_lost_is_reported_stored_once() {
    let db = TestDatabase::create().await;
    let url = reqwest::Url::parse(&db.url).expect("database URL");
    let upstream = format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432));
    let proxy = CommitCutter::start(upstream).await;
    let mut through_proxy = url.clone();
    through_proxy.set_port(Some(proxy.port)).expect("port");
    let opts = PgOptions {
        max_connections: 2,
        retry_for: Duration::from_secs(10),
        ef_search: 40,
        hnsw_m: 16,
        hnsw_ef_construction: 64,
    };
    let store = PgStore::connect(&through_proxy.to_string().into(), opts).await.expect("connect through the proxy");
    // The first upload creates the vector table and the collection's partition (their own
    // commits), so that the cut below hits the upload's COMMIT.
    assert!(matches!(store.insert_document(document("first.txt", "one two three")).await, Ok(Inserted::New(_))));

    proxy.armed.store(true, Ordering::SeqCst);
    let outcome = store.insert_document(document("second.txt", "four five six")).await.expect("stored after a retry");
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the proxy did not cut a COMMIT");
    match outcome {
        Inserted::New(row) => assert_eq!(row.source, "second.txt"),
        other => panic!("reported as {other:?} instead of stored"),
    }
    let docs = store.documents(&["cut".into()]).await.expect("documents");
    assert_eq!(docs.iter().filter(|d| d.source == "second.txt").count(), 1, "{docs:?}");
    assert_eq!(docs.len(), 2);

    // Someone else's upload of the same content is still a duplicate.
    let again = store.insert_document(document("second.txt", "four five six")).await.expect("insert");
    assert!(matches!(again, Inserted::Duplicate(_)), "{again:?}");
}
