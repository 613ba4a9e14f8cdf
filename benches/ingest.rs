//! Ingest throughput against an embedder with a fixed per-batch latency: how much of the wall
//! time is spent outside the embedder, and how well chunks are packed into embed calls.
//!
//! The Ollama double runs in this process with `set_embed_delay` (a model's fixed cost per
//! `/api/embed` request) and records every embed call's start, end and number of inputs. The
//! embedder's busy time is the union of those intervals (up to `embed_parallelism` requests are
//! in flight at once); everything else in the wall time (reading, extraction, chunking, SQLite,
//! BM25 and vector indexing, waiting) is "outside". Batching efficiency = inputs sent / (calls ×
//! `embed_batch_size`): 100% means every request was a full batch.
//!
//! Synthetic corpus in a temporary directory: `BENCH_SMALL` (400) short Markdown notes of one to
//! three chunks and `BENCH_LARGE` (10) long Markdown documents of about 40 pages, SQLite in a
//! temporary data directory, default chunking (200 tokens) and batching (32 inputs, 2 parallel).
//! `BENCH_EMBED_DELAY_MS` (40) sets the delay.
//!
//! Runs:
//! - `per-file`: `Rag::ingest` once per file in order (what `footnote ingest` did before bulk
//!   ingest), timed from the first file to the last receipt plus the final flush;
//! - `bulk`: `Rag::ingest_many` over the same files (read as the pipeline asks for them), timed
//!   from the start to the end of its result stream (all indexed) plus the final flush;
//! - `cli`: the whole `footnote ingest DIR` command as a process, start to exit (it uses
//!   `ingest_many`; process start, opening the store and indexes are included).
//!
//! `cargo bench --bench ingest` (release); `BENCH_SMOKE=1` for a quick run at tiny size.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use footnote::config::Config;
use footnote::rag::{ModelCheck, Rag};
use footnote_adapter::Upload;
use footnote_ollama_double::{OllamaDouble, busy_time};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes the corpus: `small` notes and `large` long documents. Returns the total size in bytes.
fn write_corpus(dir: &Path, small: usize, large: usize) -> u64 {
    let mut rng = StdRng::seed_from_u64(9);
    let vocabulary: Vec<String> = (0..2000)
        .map(|_| (0..rng.random_range(3..10)).map(|_| rng.random_range(b'a'..=b'z') as char).collect())
        .collect();
    let sentence = |rng: &mut StdRng| {
        let words: Vec<&str> =
            (0..rng.random_range(8..20)).map(|_| vocabulary[rng.random_range(0..vocabulary.len())].as_str()).collect();
        format!("{}.", words.join(" "))
    };
    let paragraph = |rng: &mut StdRng| (0..rng.random_range(3..7)).map(|_| sentence(rng)).collect::<Vec<_>>().join(" ");
    let mut bytes = 0;
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    for i in 0..small {
        let paragraphs: Vec<String> = (0..rng.random_range(1..6)).map(|_| paragraph(&mut rng)).collect();
        let text = format!("# Note {i}: {}\n\n{}\n", sentence(&mut rng), paragraphs.join("\n\n"));
        bytes += text.len() as u64;
        std::fs::write(notes.join(format!("note-{i:04}.md")), text).unwrap();
    }
    let manuals = dir.join("manuals");
    std::fs::create_dir_all(&manuals).unwrap();
    for i in 0..large {
        let mut text = format!("# Manual {i}\n\n");
        for section in 0..40 {
            text.push_str(&format!("## Section {section}: {}\n\n", sentence(&mut rng)));
            for _ in 0..4 {
                text.push_str(&paragraph(&mut rng));
                text.push_str("\n\n");
            }
        }
        bytes += text.len() as u64;
        std::fs::write(manuals.join(format!("manual-{i:02}.md")), text).unwrap();
    }
    bytes
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["notes", "manuals"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        out.extend(entries);
    }
    out
}

fn config(data_dir: &Path, ollama: &OllamaDouble) -> Config {
    let mut cfg = Config { data_dir: data_dir.to_path_buf(), ..Default::default() };
    cfg.ollama.url = ollama.url.clone();
    // Files are read by extraction workers: the footnote binary, not this benchmark.
    cfg.ingest.worker_program = env!("CARGO_BIN_EXE_footnote").into();
    cfg
}

fn upload(path: &Path) -> Upload {
    Upload {
        file_name: path.display().to_string(),
        mime: None,
        bytes: std::fs::read(path).unwrap(),
        origin: Default::default(),
    }
}

/// One run's figures.
struct Figures {
    files: usize,
    chunks: i64,
    started: Instant,
    wall: Duration,
}

fn report(name: &str, run: &Figures, ollama: &OllamaDouble, batch_size: usize) {
    let calls = ollama.embed_calls();
    let inputs: usize = calls.iter().map(|c| c.inputs).sum();
    let busy = busy_time(&calls);
    let wall = run.wall.as_secs_f64();
    let outside = 1.0 - busy.as_secs_f64() / wall;
    let efficiency = inputs as f64 / (calls.len().max(1) * batch_size) as f64;
    // Where the embedder was idle: before its first call, after its last, and between calls.
    let first = calls.iter().map(|c| c.started).min().unwrap_or(run.started);
    let last = calls.iter().map(|c| c.finished).max().unwrap_or(run.started);
    let before = first.saturating_duration_since(run.started).as_secs_f64();
    let after = (run.started + run.wall).saturating_duration_since(last).as_secs_f64();
    let between = wall - busy.as_secs_f64() - before - after;
    let minimal = (inputs as f64 / batch_size as f64).ceil();
    println!(
        "{name:<9} {:>5} files {:>6} chunks  wall {:>7.2} s  {:>7.1} files/s  {:>7.1} chunks/s  \
         embed calls {:>5} (fewest possible {minimal}), {:>5.1} inputs/call, batching {:>5.1}%  \
         embedder busy {:>6.2} s  outside the embedder {:>5.1}% (idle before the first call {:.2} s, \
         between calls {:.2} s, after the last {:.2} s)",
        run.files,
        run.chunks,
        wall,
        run.files as f64 / wall,
        run.chunks as f64 / wall,
        calls.len(),
        inputs as f64 / calls.len().max(1) as f64,
        efficiency * 100.0,
        busy.as_secs_f64(),
        outside * 100.0,
        before,
        between,
        after,
    );
}

/// `Rag::ingest` once per file, in order.
async fn per_file(corpus: &Path, ollama: &OllamaDouble) -> Figures {
    let data = tempfile::tempdir().unwrap();
    let rag = Rag::open(config(data.path(), ollama), ModelCheck::Refuse).await.unwrap();
    ollama.reset_requests();
    let files = files_in(corpus);
    let started = Instant::now();
    for path in &files {
        rag.ingest("default", upload(path)).await.unwrap();
    }
    rag.flush().unwrap();
    let wall = started.elapsed();
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!(counts.pending_embeddings, 0);
    Figures { files: files.len(), chunks: counts.chunks, started, wall }
}

/// `Rag::ingest_many` over every file.
async fn bulk(corpus: &Path, ollama: &OllamaDouble) -> Figures {
    let data = tempfile::tempdir().unwrap();
    let rag = Rag::open(config(data.path(), ollama), ModelCheck::Refuse).await.unwrap();
    ollama.reset_requests();
    let files = files_in(corpus);
    let started = Instant::now();
    let uploads = futures::stream::iter(files.clone()).map(|path| Ok(upload(&path)));
    let results: Vec<_> = rag.ingest_many("default", uploads).collect().await;
    rag.flush().unwrap();
    let wall = started.elapsed();
    assert_eq!(results.len(), files.len());
    assert!(results.iter().all(Result::is_ok));
    let counts = rag.store().counts(None).await.unwrap();
    assert_eq!(counts.pending_embeddings, 0);
    Figures { files: files.len(), chunks: counts.chunks, started, wall }
}

/// The whole `footnote ingest DIR` command.
async fn cli(corpus: &Path, ollama: &OllamaDouble) -> Figures {
    let data = tempfile::tempdir().unwrap();
    ollama.reset_requests();
    let started = Instant::now();
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
        .arg("ingest")
        .arg(corpus)
        // Only the settings given here: the caller's FOOTNOTE_* variables (scripts/test.sh exports
        // FOOTNOTE_TEST_*) would be read as settings.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data.path())
        .env("FOOTNOTE_DATA_DIR", data.path())
        .env("FOOTNOTE_OLLAMA__URL", &ollama.url)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("run footnote ingest");
    let wall = started.elapsed();
    assert!(status.success(), "footnote ingest failed: {status}");
    let rag = Rag::open(config(data.path(), ollama), ModelCheck::Refuse).await.unwrap();
    let counts = rag.store().counts(None).await.unwrap();
    Figures { files: files_in(corpus).len(), chunks: counts.chunks, started, wall }
}

async fn run(ollama: OllamaDouble) {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let small = env_or("BENCH_SMALL", if smoke { 20 } else { 400 });
    let large = env_or("BENCH_LARGE", if smoke { 1 } else { 10 });
    let delay = Duration::from_millis(env_or("BENCH_EMBED_DELAY_MS", 40));
    let corpus = tempfile::tempdir().unwrap();
    let bytes = write_corpus(corpus.path(), small, large);
    ollama.set_embed_delay(delay);
    let defaults = Config::default();
    let batch = defaults.ollama.embed_batch_size;
    println!(
        "ingest: {small} notes + {large} long documents ({:.1} MB of Markdown), embed delay {} ms per request, \
         batches of {batch}, {} in parallel, SQLite",
        bytes as f64 / 1e6,
        delay.as_millis(),
        defaults.ollama.embed_parallelism,
    );
    let figures = per_file(corpus.path(), &ollama).await;
    report("per-file", &figures, &ollama, batch);
    let figures = bulk(corpus.path(), &ollama).await;
    report("bulk", &figures, &ollama, batch);
    let figures = cli(corpus.path(), &ollama).await;
    report("cli", &figures, &ollama, batch);
}

fn main() {
    footnote::install_crypto_provider();
    // The double gets threads of its own, as Ollama is a process of its own: on the bench's
    // runtime, a worker busy with indexing would delay its replies and count as embedder idle.
    let double_runtime = tokio::runtime::Runtime::new().unwrap();
    let ollama = double_runtime.block_on(OllamaDouble::start());
    tokio::runtime::Runtime::new().unwrap().block_on(run(ollama));
}
