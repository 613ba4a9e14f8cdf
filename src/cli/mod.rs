//! The CLI commands. Questions, uploads, listings and forgetting go through the same
//! [`Gateway`] the chat adapters use (scope: platform `cli`, room = the collection); `reindex`
//! and `doctor` are operator commands on the core itself.
//!
//! Every command works next to a running `footnote serve` on the same data directory. A command
//! keeps the search indexes itself only when no other process holds their writer lock; beside
//! the server it opens them read-only, writes the database (which is safe from several processes)
//! and waits until the server's catch-up has indexed its writes ([`Rag::settle`]) before it
//! reports. `reindex` asks the server to rebuild its own indexes ([`reindex`]).

mod backup;
mod doctor;
mod eval;
mod files;
pub mod migrate;
mod reindex;
mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use footnote::config::Config;
use footnote::rag::gateway::Core;
use footnote::rag::{ModelCheck, Rag, Settled};
use footnote::serve::ControlFile;
use footnote_adapter::{Actor, AskEvent, Gateway, Notice, Question, Scope, Upload, render};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

pub use backup::{backup, restore};
pub use doctor::doctor;
pub use eval::{CitationArgs, EvalArgs, eval, eval_citations};
pub use reindex::reindex;
pub use serve::serve;

/// Logs go to stderr; `-v` raises the level, `RUST_LOG` overrides it.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,footnote=info",
        _ => "debug,hyper=info,h2=info,tantivy=info,sqlx=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// Logging of an extraction worker: warnings and errors (or `RUST_LOG`), without time stamps or
/// colours, to stderr, which the service relays into its own log.
pub fn init_worker_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .init();
}

/// Opens the core for `command`: as the keeper of the indexes when nobody else is, else
/// read-only beside the process that keeps them, once that process has indexed everything
/// stored so far.
async fn open(config: Config, command: &str) -> Result<Arc<Rag>> {
    let dir = config.data_dir.display().to_string();
    let access = Rag::index_access(&config, command)?;
    let rag = Rag::open_as(config, ModelCheck::Refuse, access)
        .await
        .with_context(|| format!("cannot open the data in {dir}"))?;
    if !rag.indexes().is_writer() {
        settle(&rag).await?;
        return Ok(rag);
    }
    // Chunks stored while Ollama was down get their embeddings on the next start (a server
    // next to this command does it itself).
    if rag.store().counts(None).await?.pending_embeddings > 0 {
        let filled = rag.backfill().await?;
        if filled > 0 {
            rag.flush()?;
            eprintln!("(filled in {filled} embeddings that were waiting for Ollama)");
        }
    }
    Ok(rag)
}

/// Makes what this command stored searchable: written to disk by the keeper of the indexes, or
/// indexed by the server next to it (asked to do it now, and waited for; if it is too slow, the
/// user hears so).
async fn settle(rag: &Rag) -> Result<()> {
    rag.flush()?;
    if rag.indexes().holder().is_some_and(|h| h.is_server()) {
        nudge(rag).await;
    }
    if let Settled::Behind { holder } = rag.settle().await? {
        eprintln!("({holder} has not indexed the latest changes yet: they become searchable once it has)");
    }
    Ok(())
}

/// Asks the server next to this command to catch its indexes up now rather than at its next
/// poll. Best effort: without an answer, it catches up on its own within seconds.
async fn nudge(rag: &Rag) {
    let Some(control) = ControlFile::read(&rag.config().data_dir) else { return };
    let asked = reqwest::Client::new()
        .post(format!("{}/local/catch-up", control.url))
        .bearer_auth(&control.token)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await;
    if let Err(e) = asked.and_then(|r| r.error_for_status()) {
        tracing::info!(error = %e, "The server did not take the catch-up request; waiting for its own.");
    }
}

fn scope(collection: &str) -> Scope {
    Scope::local("cli", collection)
}

/// `footnote ingest PATH...`
pub async fn ingest(config: Config, collection: &str, paths: &[PathBuf]) -> Result<ExitCode> {
    let max = config.ingest.max_file_size.as_u64();
    let files = files::collect(paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no files found in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let rag = open(config, "ingest").await?;
    let core = Core::new(rag.clone());
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Files are read as the pipeline asks for them; results come back in the same order.
    let uploads = futures::stream::iter(files.clone()).map(move |path| {
        files::read_limited(&path, max).map(|bytes| Upload {
            file_name: files::source_name(&path),
            mime: None,
            bytes,
            origin: Default::default(),
        })
    });
    let mut results = core.ingest_many(&scope(collection), &Actor::operator(), uploads);
    let mut failed = 0;
    for path in &files {
        let name = path.display().to_string();
        bar.set_message(name.clone());
        let Some(outcome) = results.next().await else { anyhow::bail!("the ingest stopped before {name}") };
        let line = match outcome {
            Ok(receipt) => format!("✓ {name}: {}", receipt.summary()),
            Err(e) => {
                failed += 1;
                format!("✗ {name}: {}", e.user_message())
            }
        };
        // A hidden bar (output is not a terminal) drops its println: print directly then.
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    settle(&rag).await?;
    println!("{} file(s) processed, {} refused, collection “{collection}”.", files.len(), failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `footnote ask "..."`
pub async fn ask(config: Config, collection: &str, question: &str, json: bool) -> Result<ExitCode> {
    let rag = open(config, "ask").await?;
    let core = Core::new(rag.clone());
    let mut events = core.ask_stream(&scope(collection), &Actor::operator(), Question::new(question)).await;
    let mut out = std::io::stdout().lock();
    let mut streamed = false;
    let mut shown = String::new();
    while let Some(event) = events.next().await {
        match event {
            AskEvent::Queued { position } if !json => eprintln!("(waiting for the model, position {position})"),
            AskEvent::LoadingModel if !json => eprintln!("(loading the model…)"),
            AskEvent::Token(piece) if !json => {
                streamed = true;
                shown.push_str(&piece);
                out.write_all(piece.as_bytes())?;
                out.flush()?;
            }
            AskEvent::Done(answer) => {
                if json {
                    serde_json::to_writer_pretty(&mut out, &answer)?;
                    writeln!(out)?;
                    return Ok(ExitCode::SUCCESS);
                }
                // Nothing found, or the model unreachable: the notice stands in for the text.
                if let Some(notice) = answer.notice.filter(|n| *n != Notice::Uncited) {
                    writeln!(out, "{}", notice.user_message())?;
                }
                if streamed {
                    writeln!(out)?;
                    // The support check may have moved, dropped or added markers: show its
                    // version under what streamed.
                    let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
                    if !same(&footnote::rag::citations::tidy(&shown), &answer.text) {
                        writeln!(out, "\nChecked against the sources:\n{}", answer.text)?;
                    }
                } else if !answer.text.is_empty() {
                    writeln!(out, "{}", answer.text)?;
                }
                for note in render::answer_notes(&answer) {
                    writeln!(out, "({note})")?;
                }
                if answer.notice == Some(Notice::Uncited) {
                    writeln!(out, "\n({})", Notice::Uncited.user_message())?;
                }
                if answer.notice == Some(Notice::ModelUnreachable) {
                    writeln!(
                        out,
                        "(Ollama at {} is not reachable: start it with `ollama serve`.)",
                        rag.ollama().base_url()
                    )?;
                }
                if !answer.citations.is_empty() {
                    writeln!(out, "\nSources:\n{}", render::sources_plain(&answer.citations))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            AskEvent::Failed(error) => {
                if json {
                    serde_json::to_writer_pretty(
                        &mut out,
                        &serde_json::json!({ "error": error, "message": error.user_message() }),
                    )?;
                    writeln!(out)?;
                } else {
                    if streamed {
                        writeln!(out)?;
                    }
                    eprintln!("footnote: {}", error.user_message());
                }
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
    anyhow::bail!("the answer ended without a result")
}

/// `footnote mcp`: MCP over stdio until the client closes it. Nothing but the protocol goes to
/// stdout; logs go to stderr.
pub async fn mcp(config: Config, collection: Option<&str>, read_only: bool) -> Result<ExitCode> {
    let rag = open(config, "mcp").await?;
    let grant = footnote::mcp::Grant::narrowed(collection, read_only);
    let served = footnote::mcp::transport::serve_stdio(Core::new(rag.clone()), grant).await;
    rag.flush()?;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// `footnote warmup`
pub async fn warmup(config: Config) -> Result<ExitCode> {
    let rag = open(config, "warmup").await?;
    match Core::new(rag).warmup(&scope("default"), &Actor::operator()).await {
        Ok(report) => {
            for m in report.models {
                println!(
                    "{}: ready in {:.1} s (loading took {:.1} s)",
                    m.name,
                    m.took.as_secs_f32(),
                    m.load.as_secs_f32()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("footnote: {}", e.user_message());
            Ok(ExitCode::from(1))
        }
    }
}

/// `footnote status`
pub async fn status(config: Config, collection: &str, json: bool) -> Result<ExitCode> {
    let url = config.ollama.url.clone();
    let rag = open(config, "status").await?;
    let status = rag.status(None).await?;
    let here = rag.status(Some(&[collection.to_owned()])).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "all": status, "collection": here }))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Ollama {url}: {}", if status.ollama_reachable { "reachable" } else { "NOT reachable" });
    for m in [&status.chat_model, &status.embed_model] {
        let state = match (m.available, m.loaded, &m.expires_at) {
            (_, true, Some(until)) => format!("loaded until {until}"),
            (_, true, None) => "loaded".to_owned(),
            (true, false, _) => "pulled, not loaded (`footnote warmup` loads it)".to_owned(),
            (false, _, _) if status.ollama_reachable => format!("NOT pulled (`ollama pull {}`)", m.name),
            _ => "unknown".to_owned(),
        };
        println!("  {}: {state}", m.name);
    }
    println!(
        "Stored: {} documents, {} chunks, {} waiting for embeddings",
        status.documents, status.chunks, status.pending_embeddings
    );
    println!("Collection “{collection}”: {} documents, {} chunks", here.documents, here.chunks);
    if let Some(holder) = rag.indexes().holder() {
        println!("Search indexes: kept up to date by {}", holder.describe());
    }
    if let Some(problem) = &status.problem {
        println!("Problem: {problem}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `footnote documents`
pub async fn documents(config: Config, collection: &str, json: bool) -> Result<ExitCode> {
    let rag = open(config, "documents").await?;
    let docs = Core::new(rag)
        .documents(&scope(collection), &Actor::operator())
        .await
        .map_err(|e| anyhow::anyhow!(e.user_message()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else if docs.is_empty() {
        println!("No documents in “{collection}” yet: add some with `footnote ingest PATH`.");
    } else {
        println!("{:>5}  {:<8} {:>6}  {:<20}  title (source)", "id", "kind", "chunks", "added");
        for d in docs {
            let pending = if d.pending_embeddings > 0 {
                format!(" [{} awaiting embeddings]", d.pending_embeddings)
            } else {
                String::new()
            };
            println!(
                "{:>5}  {:<8} {:>6}  {:<20}  {} ({}){pending}",
                d.id, d.kind, d.chunks, d.added_at, d.title, d.source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `footnote forget ID`
pub async fn forget(config: Config, collection: &str, id: &str) -> Result<ExitCode> {
    let rag = open(config, "forget").await?;
    let result = Core::new(rag.clone()).forget(&scope(collection), &Actor::operator(), id).await;
    settle(&rag).await?;
    match result {
        Ok(receipt) => {
            println!("Forgot “{}” (document {}, {} chunks).", receipt.title, receipt.document_id, receipt.chunks);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("footnote: {} (collection “{collection}”)", e.user_message());
            Ok(ExitCode::from(1))
        }
    }
}
