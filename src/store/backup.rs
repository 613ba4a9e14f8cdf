//! Copies of the embedded SQLite database, for `footnote backup` and `footnote restore`.
//!
//! A copy is made with `VACUUM INTO`: one read transaction, so it is a consistent snapshot even
//! while `footnote serve` writes (copying the file with `cp` can catch it half-written, and
//! misses what is still in the write-ahead log). It is written under a temporary name, checked
//! (`PRAGMA quick_check`, and that it is a Footnote database), and only then given its name, so a
//! file with the backup's name is always a whole one. A restore checks the file it is given the
//! same way before anything changes. Backups hold every document: they are
//! created readable by their owner only.
//!
//! The search indexes are not copied: they are derived from the database and rebuilt from it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};

use super::{Result, StoreError};

/// What a database copy holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    pub collections: i64,
    pub documents: i64,
    pub chunks: i64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

fn io_error(what: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

/// Opens an existing database file (never creates one) without applying migrations.
async fn connect(path: &Path) -> Result<SqliteConnection> {
    let options =
        SqliteConnectOptions::new().filename(path).create_if_missing(false).busy_timeout(Duration::from_secs(10));
    Ok(SqliteConnection::connect_with(&options).await?)
}

/// Opens a copy for reading only, creating nothing beside it (no `-wal` or `-shm` files). A copy
/// with a write-ahead log beside it was taken from a database in use, and the log may hold part
/// of it: refused.
async fn open_copy(path: &Path) -> Result<SqliteConnection> {
    let log = PathBuf::from(format!("{}-wal", path.display()));
    if log.exists() {
        return Err(StoreError::Io(format!(
            "{} has a write-ahead log beside it ({}): it is a database in use or a copy of one, not a backup \
             (make backups with `footnote backup`)",
            path.display(),
            log.display()
        )));
    }
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(false).read_only(true).immutable(true);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| StoreError::Io(format!("{} is not a database Footnote can open: {e}", path.display())))
}

/// A name beside `path` for the file being written, gone once it is done or failed.
fn partial(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Creates `path` empty and readable by its owner only (VACUUM INTO writes into an empty file).
fn create_private(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Checks that `path` is an intact Footnote database and counts what it holds.
async fn inspect(path: &Path) -> Result<Contents> {
    let bytes = std::fs::metadata(path).map_err(|e| io_error("cannot read", path, e))?.len();
    let mut conn = open_copy(path).await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| StoreError::Io(format!("{} is not a database Footnote can read: {e}", path.display())))?;
    if check != "ok" {
        return Err(StoreError::Io(format!("{} is damaged: {check}", path.display())));
    }
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&mut conn).await?;
    if !["meta", "collections", "documents", "chunks", "changes"].iter().all(|t| tables.iter().any(|n| n == t)) {
        return Err(StoreError::Io(format!("{} is an SQLite database, but not one of Footnote's", path.display())));
    }
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM collections), (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(Contents { collections: row.get(0), documents: row.get(1), chunks: row.get(2), bytes })
}

/// Copies the database open on `conn` into the empty file `target` and makes the copy durable.
async fn copy_into(mut conn: SqliteConnection, target: &Path) -> Result<()> {
    sqlx::query("VACUUM INTO ?").bind(target.to_string_lossy().as_ref()).execute(&mut conn).await?;
    conn.close().await?;
    std::fs::File::open(target).and_then(|f| f.sync_all()).map_err(|e| io_error("cannot write", target, e))
}

/// Gives the finished file `from` the name `to`, unless something took that name meanwhile: by a
/// hard link, which fails on a taken name, or where the file system has none (a FAT-formatted
/// stick) by a rename after one more look.
fn give_name(from: &Path, to: &Path) -> Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(io_error("cannot create", to, e)),
        Err(_) if !to.exists() => std::fs::rename(from, to).map_err(|e| io_error("cannot create", to, e)),
        Err(e) => Err(io_error("cannot create", to, e)),
    }
}

/// Writes a consistent copy of the database `db` to `to`, which must not exist yet.
pub async fn backup(db: &Path, to: &Path) -> Result<Contents> {
    if !db.exists() {
        return Err(StoreError::Io(format!("there is no database at {}: nothing to back up", db.display())));
    }
    if to.exists() {
        return Err(StoreError::Io(format!("{} already exists: give the backup a new name", to.display())));
    }
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
    }
    let temporary = partial(to);
    create_private(&temporary).map_err(|e| io_error("cannot create", &temporary, e))?;
    let made = async {
        copy_into(connect(db).await?, &temporary).await?;
        let contents = inspect(&temporary).await?;
        give_name(&temporary, to)?;
        Ok(contents)
    }
    .await;
    let _ = std::fs::remove_file(&temporary);
    made
}

/// Removes what an earlier restore of `db` that was killed midway left: its partial copies
/// ([`partial`]). Only one restore runs at a time (the caller holds the index writer lock), so
/// none of them is in use.
fn remove_leftovers(db: &Path) {
    let Some(name) = db.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let prefix = format!(".{name}.partial-");
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A free name beside `db` for the database a restore replaces: `footnote.db.before-restore-`
/// and the time (UTC), with a number after it should that be taken.
fn set_aside_name(db: &Path) -> PathBuf {
    let name = db.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = format!("{name}.before-restore-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    (1..)
        .map(|n| db.with_file_name(if n == 1 { stem.clone() } else { format!("{stem}-{n}") }))
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| db.with_file_name(stem))
}

/// What [`restore`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub contents: Contents,
    /// Where the database that was replaced now is (none was there: `None`).
    pub previous: Option<PathBuf>,
}

/// Replaces the database `db` by a copy of the backup `from`, keeping the replaced one beside it
/// ([`set_aside_name`]). The caller makes sure no other process uses `db`
/// (it holds the index writer lock, so no server runs). The backup is checked first: a damaged
/// or foreign file changes nothing.
pub async fn restore(db: &Path, from: &Path) -> Result<Restored> {
    // Checked where it is, so that a refusal names the file given; the copy is not checked
    // again (a checked file copies whole, or VACUUM INTO fails).
    let contents = inspect(from).await?;
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
    remove_leftovers(db);
    // The copy is made in the data directory first, so that the swap below is two renames.
    let incoming = partial(db);
    create_private(&incoming).map_err(|e| io_error("cannot create", &incoming, e))?;
    let copied = async { copy_into(open_copy(from).await?, &incoming).await }.await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&incoming);
        return Err(e);
    }
    let swapped = swap(db, &incoming).await;
    if swapped.is_err() {
        let _ = std::fs::remove_file(&incoming);
    }
    let previous = swapped?;
    Ok(Restored { contents, previous })
}

/// Moves the database `db` aside (whole: its write-ahead log written into it first) and the
/// file `incoming` into its place. Returns where the old database went. Should the last step
/// fail, the old database is put back.
async fn swap(db: &Path, incoming: &Path) -> Result<Option<PathBuf>> {
    let previous = if db.exists() {
        let mut conn = connect(db).await?;
        let busy: i64 = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut conn).await?.get(0);
        conn.close().await?;
        if busy != 0 {
            return Err(StoreError::Io(format!(
                "{} is in use by another process: stop every Footnote process on this data directory first",
                db.display()
            )));
        }
        let aside = set_aside_name(db);
        std::fs::rename(db, &aside).map_err(|e| io_error("cannot move", db, e))?;
        Some(aside)
    } else {
        None
    };
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&side) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error("cannot remove", &side, e)),
            _ => {}
        }
    }
    if let Err(e) = std::fs::rename(incoming, db) {
        if let Some(aside) = &previous {
            let _ = std::fs::rename(aside, db);
        }
        return Err(io_error("cannot move the restored database to", db, e));
    }
    Ok(previous)
}
