//! `footnote backup FILE` and `footnote restore FILE`: a copy of the embedded database, made
//! while Footnote runs, and putting one back (see [`footnote::store::backup`]). With PostgreSQL,
//! its own tools do both.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use footnote::config::{Config, Database};
use footnote::index::lock::Access;
use footnote::rag::Rag;
use footnote::store::backup::{self, Contents};
use footnote_adapter::render;

const POSTGRES: &str = "the database is PostgreSQL: back it up with its own tools (pg_dump --format=custom, \
     pg_restore), which copy everything Footnote stores; each instance rebuilds its search index \
     from the database by itself";

/// The SQLite file of the configuration, or why there is none to copy.
fn sqlite_file(config: &Config) -> Result<std::path::PathBuf> {
    match config.database().map_err(anyhow::Error::msg)? {
        Database::Sqlite(path) => Ok(path),
        Database::SqliteUrl(url) => match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(path) if !path.is_empty() && !path.starts_with(":memory:") => {
                Ok(path.split('?').next().unwrap_or(path).into())
            }
            _ => bail!("database.url {url} names no file to copy"),
        },
        Database::Postgres(_) => bail!("{POSTGRES}"),
    }
}

fn describe(contents: &Contents) -> String {
    let count = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} ({}) in {}, {}",
        count(contents.documents, "document", "documents"),
        count(contents.chunks, "chunk", "chunks"),
        count(contents.collections, "collection", "collections"),
        render::human_bytes(contents.bytes)
    )
}

/// `footnote backup FILE`
pub async fn backup(config: Config, to: &Path) -> Result<ExitCode> {
    let db = sqlite_file(&config)?;
    let contents = backup::backup(&db, to).await?;
    println!("Backed up {} to {}.", describe(&contents), to.display());
    println!("The search indexes are not in it: Footnote rebuilds them from the database after a restore.");
    Ok(ExitCode::SUCCESS)
}

/// `footnote restore FILE`
pub async fn restore(config: Config, from: &Path) -> Result<ExitCode> {
    let db = sqlite_file(&config)?;
    // Holding the writer lock of the indexes keeps `footnote serve` (and any command that
    // would keep the indexes) from starting meanwhile.
    let lock = match Rag::index_access(&config, "restore")? {
        Access::Read(holder) => {
            bail!("{} uses this data directory: stop it first, then restore", holder.describe())
        }
        Access::Write(lock) => lock,
    };
    let restored = backup::restore(&db, from).await?;
    // The indexes followed the database that was replaced: start them over.
    footnote::index::discard(&config.index_dir(), &lock)
        .map_err(|e| anyhow::anyhow!("restored, but cannot remove the old search indexes: {e}"))?;
    drop(lock);
    println!("Restored {} from {}.", describe(&restored.contents), from.display());
    if let Some(previous) = restored.previous {
        println!("The database it replaced is kept as {}.", previous.display());
    }
    println!("The search indexes are rebuilt from it when Footnote next starts.");
    Ok(ExitCode::SUCCESS)
}
