//! `footnote serve` as a process: a real SIGTERM while an answer streams lets the answer finish,
//! and the process exits 0.

mod common;
mod service;

use std::time::Duration;

use common::process::{Serve, Settings};
use common::*;
use service::{client, parse_sse};

#[tokio::test]
async fn sigterm_lets_the_answer_in_flight_finish_then_exits_0() {
    let env = TestEnv::new().await;
    let mut serve = Serve::start(&Settings::new(&env.config.data_dir, &env.double.url));
    let addr = serve.addr.clone();
    let http = client();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(ZOO[0].1.as_bytes().to_vec()).file_name(ZOO[0].0));
    assert_eq!(http.post(format!("http://{addr}/api/documents")).multipart(form).send().await.unwrap().status(), 200);

    env.double.set_token_delay(Duration::from_millis(200));
    let mut reply = http
        .post(format!("http://{addr}/api/ask/stream"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    while !body.contains("event: token") {
        body.push_str(&String::from_utf8_lossy(&reply.chunk().await.unwrap().expect("more of the stream")));
    }
    serve.terminate();
    while let Some(chunk) = reply.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(parse_sse(&body).last().map(|e| e.0.as_str()), Some("done"), "the answer was cut: {body}");
    let exited_0 = serve.exited().await;
    let lines = serve.log();
    assert!(exited_0, "it did not exit 0; log:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("SIGTERM received")), "{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("Footnote stopped")), "{}", lines.join("\n"));
}
