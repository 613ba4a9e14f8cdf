//! `footnote reindex [--embeddings]`: rebuilds the search indexes from the database. Only the
//! keeper of the indexes may rebuild them: with no server running this command is it; beside
//! `footnote serve` it asks the server (through the control route its `serve.json` names) and
//! prints the same receipt.

use std::process::ExitCode;

use anyhow::{Context, Result};
use footnote::config::Config;
use footnote::index::lock::{Access, Holder};
use footnote::rag::{ModelCheck, Rag};
use footnote::serve::control::{ControlError, ControlFile, ReindexReport, ReindexRequest};

/// `footnote reindex [--embeddings]`
pub async fn reindex(config: Config, embeddings: bool) -> Result<ExitCode> {
    let model = config.ollama.embed_model.clone();
    let report = match Rag::index_access(&config, "reindex")? {
        Access::Read(holder) => through_server(&config, &holder, embeddings).await?,
        access => {
            let check = if embeddings { ModelCheck::Allow } else { ModelCheck::Refuse };
            let rag = Rag::open_as(config, check, access).await.context("cannot open the data")?;
            let embedded = rag.reindex(embeddings).await?;
            let counts = rag.store().counts(None).await?;
            ReindexReport { chunks: counts.chunks as u64, embedded, pending: counts.pending_embeddings as u64 }
        }
    };
    println!(
        "Rebuilt the search indexes: {} chunks; {} embedded with {model}; {} still waiting for embeddings.",
        report.chunks, report.embedded, report.pending
    );
    if report.pending > 0 {
        println!("Ollama was not reachable for the rest: run `footnote reindex` again once it is.");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the server that keeps the indexes to rebuild them. Anything that makes this impossible
/// is one line saying what to do.
async fn through_server(config: &Config, holder: &Holder, embeddings: bool) -> Result<ReindexReport> {
    let dir = config.data_dir.display();
    if !holder.is_server() {
        anyhow::bail!(
            "{} is using the search indexes of {dir}: run `footnote reindex` again once it has finished",
            holder.describe()
        );
    }
    let pid = holder.pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    let unreachable = |why: &str| {
        anyhow::anyhow!(
            "Footnote is running (pid {pid}) and holds the data directory {dir}, but {why}: stop it, then run `footnote reindex` again"
        )
    };
    let control = ControlFile::read(&config.data_dir)
        .filter(|c| holder.pid.is_none_or(|p| p == c.pid))
        .ok_or_else(|| unreachable("its serve.json is missing or unreadable"))?;
    eprintln!("(footnote serve (pid {pid}) keeps the indexes of {dir}: it rebuilds them now)");
    let request = ReindexRequest { embeddings, embed_model: config.ollama.embed_model.clone() };
    let response = reqwest::Client::new()
        .post(format!("{}/local/reindex", control.url))
        .bearer_auth(&control.token)
        .json(&request)
        .send()
        .await
        .map_err(|_| unreachable(&format!("it does not answer at {}", control.url)))?;
    if response.status().is_success() {
        return response.json::<ReindexReport>().await.map_err(|_| unreachable("its answer could not be read"));
    }
    let status = response.status();
    match response.json::<ControlError>().await {
        Ok(error) => anyhow::bail!("{}", error.message),
        Err(_) => Err(unreachable(&format!("it answered {status}"))),
    }
}
