//! `footnote doctor`: checks everything Footnote needs and says exactly what to fix.

use std::process::ExitCode;

use anyhow::Result;
use footnote::config::Config;
use footnote::ingest::{Limits, WorkerPool};
use footnote::llm::OllamaClient;
use footnote::rag::{ModelCheck, Rag};

struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("✓ {what}");
    }

    fn bad(&mut self, what: &str, fix: &str) {
        self.problems += 1;
        println!("✗ {what}\n    fix: {fix}");
    }
}

/// Runs every check; exits 1 when something needs fixing.
pub async fn doctor(config: Config) -> Result<ExitCode> {
    let mut r = Report { problems: 0 };
    r.ok("configuration is valid");

    let dir = &config.data_dir;
    match std::fs::create_dir_all(dir).and_then(|_| tempfile_probe(dir)) {
        Ok(()) => r.ok(&format!("data directory {} is writable", dir.display())),
        Err(e) => r.bad(
            &format!("data directory {} is not writable ({e})", dir.display()),
            "set data_dir (or FOOTNOTE_DATA_DIR) to a directory you can write",
        ),
    }

    let o = &config.ollama;
    let client = OllamaClient::new(o)?;
    let reachable = client.is_reachable().await;
    if reachable {
        r.ok(&format!("Ollama answers at {}", o.url));
        match client.tags().await {
            Ok(tags) => {
                for model in [&o.chat_model, &o.embed_model] {
                    let norm = |s: &str| if s.contains(':') { s.to_owned() } else { format!("{s}:latest") };
                    if tags.iter().any(|t| norm(&t.name) == norm(model)) {
                        r.ok(&format!("model {model} is pulled"));
                    } else {
                        r.bad(&format!("model {model} is not pulled"), &format!("ollama pull {model}"));
                    }
                }
            }
            Err(e) => r.bad(&format!("cannot list Ollama's models: {e}"), &e.fix()),
        }
        match client.show(&o.embed_model).await {
            Ok(info) => match info.embedding_length {
                Some(dims) => r.ok(&format!("{} makes {dims}-dimensional embeddings", o.embed_model)),
                None => r.bad(
                    &format!("{} does not look like an embedding model", o.embed_model),
                    "set ollama.embed_model to an embedding model such as nomic-embed-text",
                ),
            },
            Err(e) => r.bad(&format!("cannot inspect {}: {e}", o.embed_model), &e.fix()),
        }
    } else {
        r.bad(
            &format!("Ollama does not answer at {}", o.url),
            "start it with `ollama serve`, or set OLLAMA_HOST / ollama.url",
        );
    }

    let opened = match Rag::index_access(&config, "doctor") {
        Ok(access) => Rag::open_as(config.clone(), ModelCheck::Refuse, access).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(rag) => {
            let limits = Limits::from(&config.ingest);
            let chunking = (config.ingest.chunk_tokens, config.ingest.chunk_overlap);
            let probe = b"Footnote doctor reads this line in an extraction worker.".to_vec();
            match rag.workers().read("doctor.txt", None, probe, &limits, chunking).await {
                Ok(_) if WorkerPool::KERNEL_LIMITS => r.ok(&format!(
                    "files are read by extraction workers ({} at most, {} of memory each, enforced by the kernel)",
                    rag.workers().size(),
                    config.ingest.worker_memory.display().iec()
                )),
                Ok(_) => r.ok(&format!(
                    "files are read by extraction workers ({} at most; this platform sets no memory or CPU limits on them)",
                    rag.workers().size()
                )),
                Err(_) => r.bad(
                    "the extraction workers do not start (see the log above), so no file can be added",
                    "set ingest.worker_program to the footnote binary",
                ),
            }
            let status = rag.status(None).await?;
            r.ok(&format!("database opens: {} documents, {} chunks", status.documents, status.chunks));
            if let Some(holder) = rag.indexes().holder() {
                r.ok(&format!("search indexes are kept up to date by {}", holder.describe()));
            }
            if status.pending_embeddings > 0 {
                r.bad(
                    &format!(
                        "{} chunks are waiting for embeddings (search by keywords only)",
                        status.pending_embeddings
                    ),
                    "make sure Ollama is reachable, then run `footnote reindex`",
                );
            }
            if let Ok(Some(made_from)) = footnote::rag::stale_embedding_input(rag.store()).await {
                r.bad(
                    &format!("the stored embeddings were made from {made_from}, without titles and headings"),
                    "run `footnote reindex --embeddings` once (it re-embeds every chunk) for better answers",
                );
            }
        }
        Err(e) => r.bad(
            &format!("cannot open the database: {e}"),
            "see the message above; `footnote reindex` rebuilds the indexes",
        ),
    }

    if r.problems == 0 {
        println!("\nEverything looks fine.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\n{} problem(s) found.", r.problems);
        Ok(ExitCode::from(1))
    }
}

fn tempfile_probe(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(".footnote-write-test");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(probe)
}
