//! The command line next to a running `footnote serve` on the same data directory (SQLite):
//! the real binaries, the way a user follows the README. Every command succeeds; what the CLI
//! ingests the server finds as soon as the command has returned, what it forgets the server no
//! longer finds; `reindex` is done by the server; a second server is refused in one line.

mod common;

use std::path::Path;

use common::process::{Serve, Settings, text};
use footnote_ollama_double::OllamaDouble;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
}

/// Asserts a command succeeded and never showed a library's debug text.
fn succeeded(out: &std::process::Output, what: &str) -> String {
    let shown = text(out);
    assert!(out.status.success(), "`footnote {what}` failed next to the server:\n{shown}");
    for debug in ["LockBusy", "tantivy", "Lockfile"] {
        assert!(!shown.contains(debug), "`footnote {what}` showed {debug}:\n{shown}");
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_next_to_a_running_server() {
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(&dir.path().join("data"), &double.url);
    let mut serve = tokio::task::spawn_blocking({
        let settings = settings.clone();
        move || Serve::start(&settings)
    })
    .await
    .unwrap();

    let docs = dir.path().join("manuals");
    write(
        &docs,
        "garden/tomatoes.md",
        "# Tomatoes\n\nWater tomatoes deeply twice a week and stake them at knee height.",
    );
    write(&docs, "garden/roses.md", "# Roses\n\nPrune roses in late winter, just above an outward-facing bud.");

    let ingested = settings.run(&["ingest", docs.to_str().unwrap()]).await;
    let shown = succeeded(&ingested, "ingest");
    assert!(shown.contains("Added “Tomatoes”") && shown.contains("Added “Roses”"), "{shown}");
    assert!(shown.contains("2 file(s) processed, 0 refused"), "{shown}");
    // The ingest returns once the server has indexed the files: the very next question finds them.
    let titles = serve.cites("How often should I water tomatoes?").await;
    assert_eq!(titles.first().map(String::as_str), Some("Tomatoes"), "{titles:?}");

    let asked = settings.run(&["ask", "When", "do", "I", "prune", "roses?"]).await;
    let shown = succeeded(&asked, "ask");
    assert!(shown.contains("Sources:\n[1] Roses: “Prune roses in late winter"), "{shown}");

    let listed = settings.run(&["documents", "--json"]).await;
    succeeded(&listed, "documents");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("documents --json");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let roses = listed.iter().find(|d| d["title"] == "Roses").unwrap()["id"].as_str().unwrap().to_owned();

    let status = settings.run(&["status"]).await;
    let shown = succeeded(&status, "status");
    assert!(shown.contains("Stored: 2 documents"), "{shown}");
    assert!(shown.contains(&format!("kept up to date by footnote serve (pid {})", serve.pid())), "{shown}");

    let forgot = settings.run(&["forget", &roses]).await;
    let shown = succeeded(&forgot, "forget");
    assert!(shown.contains("Forgot “Roses”"), "{shown}");
    let titles = serve.cites("When do I prune roses?").await;
    assert!(!titles.iter().any(|t| t == "Roses"), "the server still cites the forgotten document: {titles:?}");

    let rebuilt = settings.run(&["reindex"]).await;
    let shown = succeeded(&rebuilt, "reindex");
    assert!(shown.contains("Rebuilt the search indexes: 1 chunks"), "{shown}");
    assert!(serve.log().iter().any(|l| l.contains("Rebuilding the search indexes")), "the server did the rebuild");
    let titles = serve.cites("How often should I water tomatoes?").await;
    assert_eq!(titles.first().map(String::as_str), Some("Tomatoes"), "after the rebuild: {titles:?}");

    // What cannot run next to the server says so in one line.
    let second = settings.run(&["serve"]).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second server started on the same data directory");
    let refusal = stderr.lines().find(|l| l.starts_with("footnote: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        refusal.contains(&format!("Footnote is running (pid {}) and holds the data directory", serve.pid())),
        "{stderr}"
    );

    // Nobody but the server touched its index: it never had to rebuild it.
    assert!(serve.stop().await, "the server exits 0; log:\n{}", serve.log().join("\n"));
    let log = serve.log().join("\n");
    assert!(!log.contains("rebuilding it"), "{log}");
}
