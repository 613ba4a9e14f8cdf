//! Which database the indexes on disk were derived from, and how far.
//!
//! The indexes follow the change log by sequence number, so they are only right for the
//! database whose log they followed, up to a point that log has reached. Two things break that,
//! both by hand outside Footnote: a data directory gets another database file (or
//! `database.url` another database) while its `index/` stays, or the database is restored from
//! a backup taken before changes the indexes already hold. Followed blindly, the indexes would
//! then keep chunks the database no longer has, skip the new changes whose sequence numbers
//! they believe they have seen, and answer with chunk ids the database has since given to other
//! text.
//!
//! Every database carries a random identity, made once by a migration (meta `database_id`);
//! the keeper of the indexes records it in `index/origin` beside the writer lock. When it opens
//! them, [`Indexes::align`] rebuilds both indexes from the database if the recorded identity is
//! another one or either index is ahead of the database's log.

use std::io;
use std::path::Path;

use super::vector::VectorIndex;
use super::{IndexError, Indexes, blocking, remove};
use crate::store::{META_DATABASE_ID, Store};

/// The file in the index directory that names the database the indexes follow.
pub const ORIGIN_FILE: &str = "origin";

/// Why the indexes on disk cannot be followed from the database as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misaligned {
    /// They were derived from another database.
    OtherDatabase,
    /// They hold changes up to `indexed`, past the database's last, `logged`.
    Ahead { indexed: i64, logged: i64 },
}

/// Decides whether indexes derived from `recorded` up to `indexed` can follow the database
/// `current` whose log ends at `logged`. Indexes that recorded no database (made before the
/// identity existed, or new) are judged by their progress alone.
pub fn judge(recorded: Option<&str>, current: Option<&str>, indexed: i64, logged: i64) -> Option<Misaligned> {
    match (recorded, current) {
        (Some(recorded), Some(current)) if recorded != current => Some(Misaligned::OtherDatabase),
        _ if indexed > logged => Some(Misaligned::Ahead { indexed, logged }),
        _ => None,
    }
}

fn read(dir: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(dir.join(ORIGIN_FILE)) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the file whole or not at all (a temporary file renamed over it).
fn write(dir: &Path, id: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!("{ORIGIN_FILE}.tmp"));
    std::fs::write(&temporary, format!("{id}\n"))?;
    std::fs::rename(&temporary, dir.join(ORIGIN_FILE))
}

fn io_error(dir: &Path, e: io::Error) -> IndexError {
    IndexError::Io { path: dir.join(ORIGIN_FILE).display().to_string(), reason: e.to_string() }
}

impl Indexes {
    /// The furthest change either index holds on disk or in memory (the vector index's files
    /// count even when they are not open yet: the first vector would open them).
    fn furthest_mark(&self) -> i64 {
        let vectors = match self.vectors() {
            Some(v) => v.applied.load(std::sync::atomic::Ordering::Acquire),
            None => VectorIndex::stored_watermark(&self.vector_dir).unwrap_or(0),
        };
        self.bm25.watermark().max(vectors)
    }

    /// Makes the indexes fit for following `store`: empties both when they were derived from
    /// another database or are ahead of its log ([`judge`]), so that the next catch-up
    /// rebuilds them from the whole log, and records the database they now follow. Returns why
    /// it emptied them, if it did. Only for the keeper of the indexes; call before the first
    /// catch-up.
    pub async fn align(&self, store: &dyn Store) -> Result<Option<Misaligned>, IndexError> {
        self.require_writer()?;
        let current = store.meta(META_DATABASE_ID).await?;
        let logged = store.last_seq().await?;
        let recorded = read(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let verdict = judge(recorded.as_deref(), current.as_deref(), self.furthest_mark(), logged);
        if let Some(why) = &verdict {
            match why {
                Misaligned::OtherDatabase => tracing::warn!(
                    "The search indexes were built from another database; rebuilding them from this one."
                ),
                Misaligned::Ahead { indexed, logged } => tracing::warn!(
                    indexed,
                    logged,
                    "The search indexes hold changes this database does not (was it restored from a backup?); rebuilding them from the database."
                ),
            }
            self.clear().await?;
            if self.vectors().is_none() && !self.vectors_in_database {
                // Files nobody opened yet would be opened by the first vector, with their old
                // watermark: empty them now.
                blocking(|| remove(&self.vector_dir))?;
            }
        }
        if let Some(current) = current.filter(|c| recorded.as_deref() != Some(c.as_str())) {
            write(&self.dir, &current).map_err(|e| io_error(&self.dir, e))?;
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_database_within_its_log_is_followed() {
        assert_eq!(judge(Some("a"), Some("a"), 10, 10), None);
        assert_eq!(judge(Some("a"), Some("a"), 3, 10), None, "behind is what catching up is for");
        assert_eq!(judge(None, Some("a"), 10, 12), None, "indexes from before the identity existed");
        assert_eq!(judge(None, None, 0, 0), None);
    }

    #[test]
    fn another_database_or_a_log_that_went_back_is_rebuilt() {
        assert_eq!(judge(Some("a"), Some("b"), 3, 10), Some(Misaligned::OtherDatabase));
        assert_eq!(judge(Some("a"), Some("a"), 11, 10), Some(Misaligned::Ahead { indexed: 11, logged: 10 }));
        assert_eq!(judge(None, Some("a"), 5, 0), Some(Misaligned::Ahead { indexed: 5, logged: 0 }));
    }

    #[test]
    fn the_record_is_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), "0123abcd").unwrap();
        assert_eq!(read(dir.path()).unwrap().as_deref(), Some("0123abcd"));
        assert!(!dir.path().join(format!("{ORIGIN_FILE}.tmp")).exists());
    }
}
