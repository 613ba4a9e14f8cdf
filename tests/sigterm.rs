//! `footnote serve` as a process: a real SIGTERM while an answer streams lets the answer finish,
//! and the process exits 0.

mod common;
mod service;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use service::{client, parse_sse};

#[tokio::test]
async fn sigterm_lets_the_answer_in_flight_finish_then_exits_0() {
    let env = TestEnv::new().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_footnote"))
        .arg("serve")
        // Only the settings below: the test runner's own FOOTNOTE_TEST_* variables are no
        // settings and would be refused as unknown keys.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("FOOTNOTE_DATA_DIR", &env.config.data_dir)
        .env("FOOTNOTE_OLLAMA__URL", &env.double.url)
        .env("FOOTNOTE_SERVER__LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start footnote serve");
    // The address is in the "listening" log line.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Footnote is listening")
                && let Some(at) = line.find("127.0.0.1:")
            {
                let addr: String =
                    line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                let _ = addr_tx.send(addr);
            }
            lines.push(line);
        }
        lines
    });
    let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let lines = log.join().unwrap_or_default();
        panic!("footnote serve did not start listening; its log:\n{}", lines.join("\n"));
    };
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
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(killed.success());
    while let Some(chunk) = reply.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(parse_sse(&body).last().map(|e| e.0.as_str()), Some("done"), "the answer was cut: {body}");
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    let lines = log.join().unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("SIGTERM received")), "{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("Footnote stopped")), "{}", lines.join("\n"));
}
