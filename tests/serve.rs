//! End-to-end tests of `footnote serve` in-process: a fake chat adapter, the HTTP API (JSON, SSE,
//! multipart), the model queue, authentication, the OpenAPI document, adapter restarts and the
//! graceful shutdown, over the Ollama double and SQLite.

mod common;
mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use footnote_adapter::{Answer, AskEvent, IngestReceipt};
use secrecy::SecretString;
use service::*;

#[tokio::test]
async fn ask_through_the_adapter_and_http_plain_and_sse_ingest_by_multipart_and_forget() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.ingest.max_file_size = bytesize::ByteSize::kib(4);
    let (adapter, platform) = fake_adapter();
    let running = start(cfg, vec![adapter]).await;
    let http = client();

    // Ingest by multipart into the default collection.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(ZOO[0].1.as_bytes().to_vec()).file_name(ZOO[0].0));
    let reply = http.post(url(&running, "/api/documents")).multipart(form).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let receipt: IngestReceipt = reply.json().await.unwrap();
    assert_eq!((receipt.title.as_str(), receipt.collection.as_str()), ("Penguins", "default"));

    // Past the limit: 413, whether the body limit or the core's size check catches it.
    for size in [5 * 1024, 512 * 1024] {
        let big = reqwest::multipart::Part::bytes(vec![b'a'; size]).file_name("big.txt");
        let reply = http
            .post(url(&running, "/api/documents"))
            .multipart(reqwest::multipart::Form::new().part("file", big))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 413, "{size} bytes");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["error"], "too_large", "{body}");
    }

    // Ask: plain JSON.
    let reply = http
        .post(url(&running, "/api/ask"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let answer: Answer = reply.json().await.unwrap();
    assert!(answer.text.contains("[1]"), "{answer:?}");
    assert_eq!(answer.citations[0].title, "Penguins");

    // Ask: server-sent events.
    let body = http
        .post(url(&running, "/api/ask/stream"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&body);
    assert!(events.iter().any(|(e, _)| e == "token"), "{body}");
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "done", "{body}");
    let done: Answer = serde_json::from_str(data).unwrap();
    assert_eq!(done.citations[0].title, "Penguins");

    // Through the adapter: its room is its own collection, which does not see the HTTP upload.
    let general = room("fake", Some("guild"), "general");
    let events = ask_via(&platform, general.clone(), member("u1"), "What do penguins eat?").await;
    match events.last() {
        Some(AskEvent::Done(answer)) => {
            assert!(answer.citations.is_empty(), "the room sees another collection: {answer:?}");
        }
        other => panic!("{other:?}"),
    }
    let core = &running.core;
    use footnote_adapter::Gateway;
    core.ingest(&general, &member("u1"), upload(ZOO[1].0, ZOO[1].1)).await.unwrap();
    let events = ask_via(&platform, general, member("u1"), "How does magma cause an eruption?").await;
    assert!(events.iter().any(|e| matches!(e, AskEvent::Token(_))));
    match events.last() {
        Some(AskEvent::Done(answer)) => assert_eq!(answer.citations[0].title, "Volcanoes"),
        other => panic!("{other:?}"),
    }

    // List and forget over HTTP.
    let docs: Vec<serde_json::Value> =
        http.get(url(&running, "/api/documents")).send().await.unwrap().json().await.unwrap();
    assert_eq!(docs.len(), 1);
    let path = format!("/api/documents/{}", receipt.document_id);
    let reply = http.delete(url(&running, &path)).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let docs: Vec<serde_json::Value> =
        http.get(url(&running, "/api/documents")).send().await.unwrap().json().await.unwrap();
    assert!(docs.is_empty());
    assert_eq!(http.delete(url(&running, &path)).send().await.unwrap().status(), 404);

    // Status, warm-up, probes and metrics.
    let status: serde_json::Value = http.get(url(&running, "/api/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["ollama_reachable"], true);
    assert_eq!(http.post(url(&running, "/api/warmup")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url(&running, "/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url(&running, "/readyz")).send().await.unwrap().status(), 200);
    let metrics = http.get(url(&running, "/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "footnote_ask_retrieval_seconds",
        "footnote_ask_first_token_seconds",
        "footnote_ask_total_seconds",
        "footnote_queue_depth",
        "footnote_ingest_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn three_asks_at_once_wait_in_the_queue_and_see_their_positions() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.ollama.max_parallel = 1;
    let running = start(cfg, Vec::new()).await;
    let core = running.core.clone();
    ingest(&core, "default", ZOO[0].0, ZOO[0].1).await;
    env.double.set_token_delay(Duration::from_millis(40));

    let asks = (0..3).map(|_| {
        let http = client();
        let url = url(&running, "/api/ask/stream");
        tokio::spawn(async move {
            let body = http
                .post(url)
                .json(&serde_json::json!({ "question": "What do penguins eat?" }))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            parse_sse(&body)
        })
    });
    let mut positions = Vec::new();
    for ask in asks.collect::<Vec<_>>() {
        let events = ask.await.unwrap();
        assert_eq!(events.last().unwrap().0, "done", "{events:?}");
        let seen: Vec<u64> = events
            .iter()
            .filter(|(e, _)| e == "queued")
            .map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).unwrap()["position"].as_u64().unwrap())
            .collect();
        positions.push(seen);
    }
    positions.sort();
    // One went straight to the model; one waited as number 1; one as number 2, then moved up.
    assert_eq!(positions, vec![vec![], vec![1], vec![2, 1]], "{positions:?}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    let token = "a-test-token-of-some-length";
    cfg.server.tokens = vec![SecretString::from(token)];
    let running = start(cfg, Vec::new()).await;
    let http = client();
    let docs = url(&running, "/api/documents");
    assert_eq!(http.get(&docs).send().await.unwrap().status(), 401, "no token");
    assert_eq!(
        http.get(&docs).bearer_auth("wrong-token-of-some-length").send().await.unwrap().status(),
        401,
        "wrong token"
    );
    assert_eq!(http.get(&docs).bearer_auth(token).send().await.unwrap().status(), 200, "right token");
    assert_eq!(http.get(url(&running, "/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(url(&running, "/healthz")).send().await.unwrap().status(), 200, "probes are public");
    // The page shows the login form; logging in sets an HttpOnly session cookie that works.
    let page = http.get(url(&running, "/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Access token"), "{page}");
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let reply = no_redirect.post(url(&running, "/login")).form(&[("token", "wrong")]).send().await.unwrap();
    assert_eq!(reply.status(), 401);
    let reply = no_redirect.post(url(&running, "/login")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(reply.status(), 303);
    let cookie = reply.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains(token), "{cookie}");
    let session = cookie.split(';').next().unwrap();
    let page_docs = url(&running, "/ui/documents");
    assert_eq!(http.get(&page_docs).header("cookie", session).send().await.unwrap().status(), 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn without_tokens_only_loopback_is_allowed_unless_told_otherwise() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.server.listen = "0.0.0.0:0".into();
    let err = footnote::serve::start(cfg.clone(), Default::default()).await.err().expect("refused");
    assert!(err.to_string().contains("refusing to listen on 0.0.0.0:0 without authentication"), "{err}");
    cfg.server.allow_unauthenticated_remote = true;
    assert!(footnote::http::check_bind(&cfg).is_ok());
    cfg.server.allow_unauthenticated_remote = false;
    cfg.server.tokens = vec![SecretString::from("a-test-token-of-some-length")];
    assert!(footnote::http::check_bind(&cfg).is_ok());
    cfg.server.tokens.clear();
    cfg.server.listen = "[::1]:0".into();
    assert!(footnote::http::check_bind(&cfg).is_ok());
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_it_validates() {
    let env = TestEnv::new().await;
    let running = start(config(&env), Vec::new()).await;
    let text = client().get(url(&running, "/openapi.json")).send().await.unwrap().text().await.unwrap();
    let spec = oas3::from_json(&text).expect("the OpenAPI document parses as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let routes = footnote::http::routes(1024);
    for r in &routes {
        let method = r.method.as_str().to_ascii_lowercase();
        assert!(doc["paths"][r.path][&method].is_object(), "{} {} is not in /openapi.json", r.method, r.path);
    }
    // And nothing is documented that the router does not serve.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                routes.iter().any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} documented but not routed"
            );
        }
    }
    // Every schema reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "$ref {r} does not resolve");
    }
    running.stop().await.unwrap();
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    out.extend(child.as_str().map(str::to_owned));
                }
                collect_refs(child, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_failing_adapter_is_restarted_and_the_others_keep_running() {
    let env = TestEnv::new().await;
    let starts = Arc::new(AtomicUsize::new(0));
    let (fake, platform) = fake_adapter();
    let running = start(config(&env), vec![flaky_adapter(3, starts.clone()), fake]).await;
    ingest(&running.core, "fake:r", ZOO[2].0, ZOO[2].1).await;
    for _ in 0..200 {
        if starts.load(Ordering::SeqCst) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(starts.load(Ordering::SeqCst), 4, "three failures (errors and a panic), then a run that lasts");
    let events = ask_via(&platform, room("fake", None, "r"), member("u"), "How often should I feed my starter?").await;
    assert!(matches!(events.last(), Some(AskEvent::Done(_))), "{events:?}");
    running.stop().await.unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), 4, "not restarted after a clean stop");
}

#[tokio::test]
async fn an_answer_in_flight_at_shutdown_is_delivered_and_new_questions_are_refused() {
    let env = TestEnv::new().await;
    let running = start(config(&env), Vec::new()).await;
    ingest(&running.core, "default", ZOO[0].0, ZOO[0].1).await;
    env.double.set_token_delay(Duration::from_millis(150));
    let http = client();
    let mut reply = http
        .post(url(&running, "/api/ask/stream"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    while !body.contains("event: token") {
        body.push_str(&String::from_utf8_lossy(&reply.chunk().await.unwrap().expect("more of the stream")));
    }
    let shutdown = running.shutdown_token();
    let addr = running.addr;
    let stopping = tokio::spawn(running.wait());
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late = http
        .post(format!("http://{addr}/api/ask"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 503, "new questions are refused while shutting down");
    let late: serde_json::Value = late.json().await.unwrap();
    assert_eq!(late["error"], "shutting_down");
    assert_eq!(http.get(format!("http://{addr}/readyz")).send().await.unwrap().status(), 503);
    while let Some(chunk) = reply.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(parse_sse(&body).last().unwrap().0, "done", "the answer in flight was delivered: {body}");
    stopping.await.unwrap().unwrap();
}
