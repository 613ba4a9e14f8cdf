//! The hostile corpus ([`common::hostile`]) against the real `footnote serve` binary over HTTP,
//! and through `footnote ingest`: every file is refused with a clear message, nothing is stored,
//! the service keeps answering (`/healthz`, and the document stored before is still found), and
//! the service's own memory stays below its idle size plus 200 MB. Run with `--nocapture` to see
//! each file's time to refusal and the peak memory of the service and of its busiest worker.

mod common;

use std::time::{Duration, Instant};

use common::cli::{Cli, text};
use common::hostile::{Hostile, corpus};
use common::process::Serve;
use common::served::{self, Sampler, children, status_bytes, wait_until};
use common::*;

/// What the service said, and the refusal expected for each file.
const DAMAGED: &str = "I couldn't read that file: it looks damaged or too complex. Nothing was added.";

fn expected(name: &str) -> &'static str {
    match name {
        "xobject-self.pdf" | "page-tree-loop.pdf" | "headings.md" | "headings.docx" | "headings.html" => DAMAGED,
        "flate-bomb.pdf" | "zip-bomb.docx" => "unpacks to more than",
        "pages-100k.pdf" => "it has 100000 pages and the limit is 2000 pages",
        "zip-bomb-liar.docx" => "the Word document is damaged",
        "entities.docx" => "it contains no text I can read",
        "nul.txt" => "I can't read a binary file",
        "invalid-utf8.txt" => "it is not valid UTF-8 text",
        // Deep nesting ends either in the worker's death or in no text at all.
        "nested.html" | "nested.eml" => "Nothing was added.",
        other => panic!("no expectation for {other}"),
    }
}

const MB: f64 = 1024.0 * 1024.0;

async fn upload(http: &reqwest::Client, serve: &Serve, name: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    let reply = http.post(serve.url("/api/documents")).multipart(form).send().await.expect("upload");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or_default())
}

/// The titles of the stored documents, and the title of the first source for a question about
/// the kept document.
async fn still_there(http: &reqwest::Client, serve: &Serve) -> (Vec<String>, String) {
    let health = http.get(serve.url("/healthz")).send().await.expect("/healthz answers");
    assert!(health.status().is_success(), "/healthz: {}", health.status());
    let docs: Vec<serde_json::Value> =
        http.get(serve.url("/api/documents")).send().await.unwrap().json().await.unwrap();
    let titles = docs.iter().map(|d| d["title"].as_str().unwrap_or_default().to_owned()).collect();
    let answer: serde_json::Value = http
        .post(serve.url("/api/ask"))
        .json(&serde_json::json!({ "question": "Where does the lighthouse keeper keep the spare lamp?" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (titles, answer["citations"][0]["title"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_file_is_refused_over_http_and_the_service_stays_up() {
    let env = TestEnv::new().await;
    let corpus = corpus();
    let settings = [("FOOTNOTE_INGEST__EXTRACT_TIMEOUT", "10s"), ("FOOTNOTE_INGEST__WORKERS", "2")];
    let serve = served::start(&env, &settings, None);
    let pid = serve.pid();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let keep = "# Keep\n\nThe lighthouse keeper keeps the spare lamp in the oil room, behind the red door.";
    let (status, receipt) = upload(&http, &serve, "keep.md", keep.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(still_there(&http, &serve).await, (vec!["Keep".to_owned()], "Keep".to_owned()));
    wait_until(Duration::from_secs(60), "two extraction workers", || children(pid).len() >= 2);
    std::thread::sleep(Duration::from_secs(1));
    let idle = status_bytes(pid, "VmRSS:").unwrap();

    let sampler = Sampler::start(pid);
    let mut rows = Vec::new();
    for Hostile { name, bytes } in corpus {
        sampler.take();
        let started = Instant::now();
        let (status, body) = upload(&http, &serve, name, bytes.clone()).await;
        let took = started.elapsed();
        let (service_peak, worker_peak) = sampler.take();
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        assert!((400..500).contains(&status), "{name}: {status} {body}");
        assert!(message.contains(expected(name)), "{name}: {message}");
        assert!(message.contains("Nothing was added") || message.contains("I can't read"), "{name}: {message}");
        let (titles, found) = still_there(&http, &serve).await;
        assert_eq!(titles, ["Keep"], "{name} left something behind");
        assert_eq!(found, "Keep", "after {name}, the kept document is not found");
        rows.push((name, bytes.len(), took, service_peak, worker_peak, message));
    }
    drop(sampler);
    let hwm = status_bytes(pid, "VmHWM:").unwrap();
    println!(
        "idle RSS of footnote serve: {:.1} MB; its VmHWM after the corpus: {:.1} MB",
        idle as f64 / MB,
        hwm as f64 / MB
    );
    println!("| file | size | time to refusal | service peak RSS | worker peak RSS | reply |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, size, took, service, worker, message) in &rows {
        println!(
            "| `{name}` | {:.1} MB | {:.2} s | {:.1} MB | {:.1} MB | {message} |",
            *size as f64 / MB,
            took.as_secs_f64(),
            *service as f64 / MB,
            *worker as f64 / MB
        );
    }
    let worst = rows.iter().map(|r| r.3).max().unwrap_or(0).max(hwm);
    assert!(worst < idle + 200 * 1024 * 1024, "the service grew from {idle} to {worst} bytes");
    let log = serve.log_text();
    assert!(log.contains("the extraction worker"), "no worker death was logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footnote_ingest_refuses_the_hostile_corpus_and_keeps_the_good_file() {
    let double = footnote_ollama_double::OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let dir = cli.data.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a-good-note.md"), "# Good note\n\nThe boiler is serviced every October.").unwrap();
    for Hostile { name, bytes } in corpus() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let started = Instant::now();
    // The command blocks one worker thread; the double answers on the other.
    let out = cli.run_with(&["ingest", dir.to_str().unwrap()], &[("FOOTNOTE_INGEST__EXTRACT_TIMEOUT", "10s")]);
    let shown = text(&out);
    println!("footnote ingest took {:.1} s:\n{shown}", started.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(1), "refusals, not a crash: {shown}");
    assert!(shown.contains("Added “Good note”"), "{shown}");
    for Hostile { name, .. } in corpus() {
        let line = shown.lines().find(|l| l.contains(&format!("{name}:"))).unwrap_or_else(|| panic!("{name}: {shown}"));
        assert!(line.starts_with('✗') && line.contains(expected(name)), "{line}");
    }
    let processed = corpus().len() + 1;
    assert!(shown.contains(&format!("{processed} file(s) processed, {} refused", corpus().len())), "{shown}");
    let listed = cli.run(&["documents", "--json"]);
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(docs.len(), 1, "{}", text(&listed));
}
