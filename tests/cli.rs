//! The `footnote` binary as a user runs it: ingest a folder, ask, list, forget, status, doctor,
//! with settings from the environment and Ollama played by the double.

mod common;

use std::path::Path;

use common::cli::{Cli, text};
use footnote_ollama_double::OllamaDouble;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_ingests_asks_lists_and_forgets() {
    // The commands block one worker thread; the double answers on the other.
    let double = OllamaDouble::start().await;
    let cli = Cli::new(&double.url);
    let docs = cli.data.path().join("docs");
    write(
        &docs,
        "garden/tomatoes.md",
        "# Tomatoes\n\nWater tomatoes deeply twice a week and stake them when they reach knee height.",
    );
    write(&docs, "garden/roses.md", "# Roses\n\nPrune roses in late winter, just above an outward-facing bud.");
    write(&docs, ".hidden.md", "# Hidden\n\nThis must not be ingested.");

    let ingested = cli.run(&["ingest", docs.to_str().unwrap()]);
    let shown = text(&ingested);
    assert!(ingested.status.success(), "{shown}");
    assert!(shown.contains("Added “Tomatoes”") && shown.contains("Added “Roses”"), "{shown}");
    assert!(!shown.contains("Hidden"), "{shown}");
    assert!(shown.contains("2 file(s) processed, 0 refused"), "{shown}");

    let answer = cli.run(&["ask", "How", "often", "should", "I", "water", "tomatoes?"]);
    let shown = text(&answer);
    assert!(answer.status.success(), "{shown}");
    assert!(shown.contains("[1]"), "{shown}");
    assert!(shown.contains("Sources:\n[1] Tomatoes: “Water tomatoes deeply twice a week"), "{shown}");

    let json = cli.run(&["ask", "--json", "When do I prune roses?"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("ask --json prints JSON");
    assert_eq!(value["citations"][0]["title"], "Roses");

    let listed = cli.run(&["documents", "--json"]);
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(docs.len(), 2);
    let roses = docs.iter().find(|d| d["title"] == "Roses").unwrap()["id"].as_str().unwrap().to_owned();

    let forgot = cli.run(&["forget", &roses]);
    assert!(forgot.status.success(), "{}", text(&forgot));
    assert!(text(&forgot).contains("Forgot “Roses”"));

    let other = cli.run(&["--collection", "elsewhere", "documents"]);
    assert!(text(&other).contains("No documents in “elsewhere”"), "{}", text(&other));

    let status = cli.run(&["status"]);
    let shown = text(&status);
    assert!(shown.contains("reachable") && shown.contains("1 documents"), "{shown}");

    let doctor = cli.run(&["doctor"]);
    let shown = text(&doctor);
    assert!(doctor.status.success(), "{shown}");
    assert!(shown.contains("✓ model qwen2.5:3b-instruct is pulled"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_ask_say_what_to_fix_when_ollama_is_down() {
    let double = OllamaDouble::start().await;
    let url = double.url.clone();
    double.stop().await;
    let cli = Cli::new(&url);
    let doctor = cli.run(&["doctor"]);
    let shown = text(&doctor);
    assert!(!doctor.status.success());
    assert!(shown.contains(&format!("Ollama does not answer at {url}")) && shown.contains("ollama serve"), "{shown}");

    write(cli.data.path(), "note.txt", "The spare key is under the blue flower pot.");
    let note = cli.data.path().join("note.txt");
    let ingested = cli.run(&["ingest", note.to_str().unwrap()]);
    let shown = text(&ingested);
    assert!(ingested.status.success(), "{shown}");
    assert!(shown.contains("keyword search works now"), "{shown}");

    let asked = cli.run(&["ask", "where is the spare key?"]);
    let shown = text(&asked);
    assert!(shown.contains("unreachable") && shown.contains("[1] note"), "{shown}");
    assert!(shown.contains("ollama serve"), "{shown}");

    // Once Ollama is back, the next command fills in the waiting embeddings.
    double.restart().await;
    let status = cli.run(&["status"]);
    let shown = text(&status);
    assert!(shown.contains("filled in 1 embeddings") && shown.contains("0 waiting for embeddings"), "{shown}");
}

/// Runs `footnote ARG` in a fresh directory whose `footnote.toml` is `config`.
fn with_config(config: &str, arg: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("footnote.toml"), config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
        .arg(arg)
        .env_clear()
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    (out.status.code(), text(&out))
}

#[tokio::test]
async fn a_bad_config_lists_every_problem() {
    let config = "[ollama]\nchat_modle = \"x\"\nembed_batch_size = 0\n[retrieval]\nrrf_k = \"sixty\"\n";
    let (code, shown) = with_config(config, "status");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("chat_modle"), "{shown}");
    assert!(shown.contains("rrf_k"), "{shown}");
}

#[tokio::test]
async fn doctor_names_the_mistakes_of_an_adapter_section() {
    let config =
        "[adapters.matrix]\nhomeserver = \"matrix.example.org\"\nuser_id = \"@bot:example.org\"\n[adapters.irc]\n";
    let (code, shown) = with_config(config, "doctor");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("[adapters.matrix]: adapters.matrix.homeserver must start with http"), "{shown}");
    assert!(shown.contains("FOOTNOTE_ADAPTERS__MATRIX__PASSWORD"), "{shown}");
    assert!(shown.contains("no adapter named \"irc\""), "{shown}");
}
