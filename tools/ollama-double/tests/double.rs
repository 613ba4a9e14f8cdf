//! The double over HTTP: lifecycle (stop refuses, restart serves again on the same port), the
//! documented response shapes, errors, model loading and the recorded requests.

use std::sync::Arc;
use std::time::Duration;

/// A reqwest client; installs the crypto provider reqwest needs in a workspace build.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

use footnote_ollama_double::{ModelKind, OllamaDouble, cosine};
use serde_json::{Value, json};

async fn post(d: &OllamaDouble, path: &str, body: Value) -> (u16, Value) {
    let resp = client().post(format!("{}{path}", d.url)).json(&body).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

async fn get(d: &OllamaDouble, path: &str) -> Value {
    reqwest::get(format!("{}{path}", d.url)).await.expect("send").json().await.expect("json body")
}

/// The NDJSON lines of a streamed answer.
async fn lines(d: &OllamaDouble, path: &str, body: Value) -> Vec<Value> {
    let text = client().post(format!("{}{path}", d.url)).json(&body).send().await.unwrap().text().await.unwrap();
    text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_serves_again_on_the_same_port() {
    let d = OllamaDouble::start().await;
    let root = client().get(&d.url).send().await.unwrap().text().await.unwrap();
    assert_eq!(root, "Ollama is running");
    d.add_model("custom:1b", ModelKind::Chat);

    d.stop().await;
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", d.port)).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    d.restart().await;
    assert_eq!(client().get(&d.url).send().await.unwrap().status(), 200);
    let tags = get(&d, "/api/tags").await;
    assert!(tags["models"].as_array().unwrap().iter().any(|m| m["name"] == "custom:1b"), "state survives");
}

#[tokio::test]
async fn stop_cuts_a_stream_in_progress() {
    let d = OllamaDouble::start().await;
    d.set_token_delay(Duration::from_millis(200));
    let resp = client()
        .post(format!("{}/api/chat", d.url))
        .json(&json!({"model": "smollm2:135m", "messages": [{"role": "user", "content": "hello there friend"}]}))
        .send()
        .await
        .unwrap();
    let stopper = d.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stopper.stop().await;
    });
    assert!(resp.text().await.is_err(), "the body must end with an error, not cleanly");
}

#[tokio::test]
async fn chat_streams_chunks_then_a_done_line_with_stats() {
    let d = OllamaDouble::start().await;
    let prompt = "[1] paris.md\nParis is the capital of France.\n[2] bread.md\nBread needs yeast.\nQuestion: what is the capital of France?";
    let got = lines(
        &d,
        "/api/chat",
        json!({"model": "qwen2.5:3b-instruct", "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    let (last, chunks) = got.split_last().unwrap();
    assert!(chunks.len() >= 3);
    for c in chunks {
        assert_eq!(c["done"], false);
        assert_eq!(c["message"]["role"], "assistant");
        assert!(chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).is_ok());
    }
    let text: String = chunks.iter().map(|c| c["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, "According to the documents, Paris is the capital of France [1].");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], chunks.len());
    for key in ["total_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration"] {
        assert!(last[key].as_u64().unwrap() > 0, "{key}");
    }
}

#[tokio::test]
async fn streamed_lines_arrive_split_across_reads() {
    let d = OllamaDouble::start().await;
    let mut resp = client()
        .post(format!("{}/api/chat", d.url))
        .json(&json!({"model": "smollm2:135m", "messages": [{"role": "user", "content": "hello there friend"}]}))
        .send()
        .await
        .unwrap();
    let mut reads = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        reads.push(chunk);
    }
    let partial = reads.iter().filter(|r| !r.ends_with(b"\n")).count();
    assert!(partial > 0, "every read ended with a whole line: {reads:?}");
    let body: Vec<u8> = reads.concat();
    for line in String::from_utf8(body).unwrap().lines() {
        serde_json::from_str::<Value>(line).expect("the halves make whole JSON lines");
    }
}

#[tokio::test]
async fn unknown_models_get_ollamas_404_and_bad_bodies_a_400() {
    let d = OllamaDouble::start().await;
    for path in ["/api/chat", "/api/generate", "/api/embed", "/api/show"] {
        let (status, body) = post(&d, path, json!({"model": "nope", "messages": [], "input": "x"})).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"], "model \"nope\" not found, try pulling it first");
    }
    let resp = client().post(format!("{}/api/embed", d.url)).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    let (status, body) = post(&d, "/api/embed", json!({"model": "all-minilm", "input": 5})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid input type")));
    let (status, _) = post(&d, "/api/chat", json!({"model": "all-minilm", "messages": []})).await;
    assert_eq!(status, 400, "embedding models do not chat");
}

#[tokio::test]
async fn embed_shapes_truncation_and_meaning() {
    let d = OllamaDouble::start().await;
    let (status, body) = post(&d, "/api/embed", json!({"model": "nomic-embed-text:latest", "input": ["reset my password", "how to reset a password", "quarterly revenue report"]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], "nomic-embed-text:latest");
    let vectors: Vec<Vec<f32>> = serde_json::from_value(body["embeddings"].clone()).unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| v.len() == 768));
    assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));
    assert!(body["prompt_eval_count"].as_u64().unwrap() > 0);

    let long = "word ".repeat(600);
    let (status, body) = post(&d, "/api/embed", json!({"model": "all-minilm", "input": long, "truncate": false})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("the input length exceeds the context length")));
    let (status, body) = post(&d, "/api/embed", json!({"model": "all-minilm", "input": long})).await;
    assert_eq!(status, 200);
    assert_eq!(body["embeddings"][0].as_array().unwrap().len(), 384);
}

#[tokio::test]
async fn loading_shows_in_ps_with_keep_alive_and_load_duration() {
    let d = OllamaDouble::start().await;
    d.set_load_delay(Duration::from_millis(60));
    let (_, warm) = post(&d, "/api/chat", json!({"model": "smollm2:135m", "messages": [], "keep_alive": "30m"})).await;
    assert_eq!(warm["done_reason"], "load");
    assert_eq!(warm["message"]["content"], "");
    let (_, embedded) = post(&d, "/api/embed", json!({"model": "all-minilm", "input": "hi", "keep_alive": -1})).await;
    assert!(embedded["load_duration"].as_u64().unwrap() >= 60_000_000);
    let (_, again) = post(&d, "/api/embed", json!({"model": "all-minilm", "input": "hi", "keep_alive": -1})).await;
    assert!(again.get("load_duration").is_none(), "already loaded");

    let ps = get(&d, "/api/ps").await;
    let models = ps["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let smol = models.iter().find(|m| m["name"] == "smollm2:135m").unwrap_or_else(|| panic!("{ps}"));
    let expires = chrono::DateTime::parse_from_rfc3339(smol["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((1790..=1800).contains(&left), "{left}");
    assert!(smol["size_vram"].as_u64().unwrap() > 0);

    post(&d, "/api/embed", json!({"model": "all-minilm", "input": [], "keep_alive": 0})).await;
    assert_eq!(d.loaded_models(), vec!["smollm2:135m".to_owned()]);
    let (status, _) = post(&d, "/api/chat", json!({"model": "smollm2:135m", "messages": [], "keep_alive": "-1"})).await;
    assert_eq!(status, 400, "Go cannot parse \"-1\" as a duration");
}

#[tokio::test]
async fn embed_delay_applies_per_request_and_calls_are_recorded_with_their_inputs() {
    let d = OllamaDouble::start().await;
    d.set_embed_delay(Duration::from_millis(50));
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        post(&d, "/api/embed", json!({"model": "all-minilm", "input": ["one", "two", "three"]})),
        post(&d, "/api/embed", json!({"model": "all-minilm", "input": "four"})),
    );
    assert_eq!((a.0, b.0), (200, 200));
    // An empty input loads the model and embeds nothing: no delay, no call recorded.
    post(&d, "/api/embed", json!({"model": "all-minilm", "input": []})).await;
    let calls = d.embed_calls();
    let mut inputs: Vec<usize> = calls.iter().map(|c| c.inputs).collect();
    inputs.sort();
    assert_eq!(inputs, vec![1, 3]);
    for call in &calls {
        assert!(call.started >= started && call.finished - call.started >= Duration::from_millis(50));
    }
    let busy = footnote_ollama_double::busy_time(&calls);
    assert!(busy >= Duration::from_millis(50) && busy <= started.elapsed(), "{busy:?}");
    d.reset_requests();
    assert!(d.embed_calls().is_empty());
}

#[tokio::test]
async fn show_reports_architecture_lengths_and_capabilities() {
    let d = OllamaDouble::start().await;
    let (_, body) = post(&d, "/api/show", json!({"model": "nomic-embed-text"})).await;
    assert_eq!(body["model_info"]["general.architecture"], "nomic-bert");
    assert_eq!(body["model_info"]["nomic-bert.embedding_length"], 768);
    assert_eq!(body["model_info"]["nomic-bert.context_length"], 2048);
    assert_eq!(body["capabilities"], json!(["embedding"]));
    for key in ["modelfile", "parameters", "template", "details"] {
        assert!(body.get(key).is_some(), "{key}");
    }
    assert_eq!(get(&d, "/api/version").await, json!({"version": "0.12.0"}));
}

#[tokio::test]
async fn knobs_fail_next_cut_reply_and_recording() {
    let d = OllamaDouble::start().await;
    d.fail_next(503, "server busy");
    let (status, body) = post(&d, "/api/chat", json!({"model": "smollm2:135m", "messages": []})).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("server busy")));
    assert_eq!(post(&d, "/api/chat", json!({"model": "smollm2:135m", "messages": []})).await.0, 200);

    d.set_reply(Some(Arc::new(|m: &[Value]| format!("{} messages, one two three four five", m.len()))));
    let got = lines(&d, "/api/generate", json!({"model": "smollm2:135m", "prompt": "hi", "system": "be brief"})).await;
    let text: String = got.iter().map(|l| l["response"].as_str().unwrap()).collect();
    assert_eq!(text, "2 messages, one two three four five");

    d.cut_stream_after(Some(1));
    let resp = client()
        .post(format!("{}/api/chat", d.url))
        .json(&json!({"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.is_err(), "cut streams end with a broken body");
    d.cut_stream_after(None);

    d.fail_stream_after(1, "llama runner process has terminated");
    let got =
        lines(&d, "/api/chat", json!({"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["error"], "llama runner process has terminated");

    let paths: Vec<String> = d.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.first().map(String::as_str), Some("/api/chat"));
    assert_eq!(d.requests()[2].body["prompt"], "hi");
    d.reset_requests();
    assert!(d.requests().is_empty());
}
