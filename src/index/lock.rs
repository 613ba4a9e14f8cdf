//! The writer lock of a data directory's search indexes.
//!
//! One process at a time changes the derived indexes of a data directory (and only it may
//! rebuild or delete them): `footnote serve`, or a command-line command when no server runs. It
//! holds an exclusive advisory lock (`flock`) on `index/writer.lock`, which the kernel releases
//! when the process ends, crash included, and writes its pid and command into the file so that
//! the others can say who holds it. Every other process opens the indexes read-only
//! ([`Access::Read`]).
//!
//! The lock file sits beside the index directories, never inside them: rebuilding an index
//! deletes its directory's contents, and must not delete the lock that allows it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file in the index directory.
pub const LOCK_FILE: &str = "writer.lock";

/// The command name `footnote serve` records in the lock.
pub const SERVE: &str = "serve";

/// Proof that this process holds the writer lock; released when dropped.
#[derive(Debug)]
pub struct WriterLock {
    // Holding the open file holds the lock.
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds the writer lock, as it wrote itself into the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its process id, when it could be read.
    pub pid: Option<u32>,
    /// The command it runs (`serve`, `ingest`, …), when it could be read.
    pub command: Option<String>,
}

impl Holder {
    /// True when the holder is `footnote serve`.
    pub fn is_server(&self) -> bool {
        self.command.as_deref() == Some(SERVE)
    }

    /// The holder for people: `footnote serve (pid 1234)`.
    pub fn describe(&self) -> String {
        let command = match &self.command {
            Some(command) => format!("footnote {command}"),
            None => "another footnote process".to_owned(),
        };
        match self.pid {
            Some(pid) => format!("{command} (pid {pid})"),
            None => command,
        }
    }

    fn parse(text: &str) -> Holder {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::trim).filter(|v| !v.is_empty())
        };
        Holder { pid: field("pid").and_then(|p| p.parse().ok()), command: field("command").map(str::to_owned) }
    }
}

/// How this process may use the indexes.
#[derive(Debug)]
pub enum Access {
    /// It holds the writer lock: it applies changes, rebuilds and persists.
    Write(WriterLock),
    /// Another process holds it: searches only, never a change on disk.
    Read(Holder),
}

impl Access {
    /// True with the writer lock.
    pub fn is_write(&self) -> bool {
        matches!(self, Access::Write(_))
    }
}

/// Takes the writer lock of the indexes in `index_dir` if it is free (recording `command` as
/// the holder), else says who holds it. Never waits.
pub fn acquire(index_dir: &Path, command: &str) -> io::Result<Access> {
    std::fs::create_dir_all(index_dir)?;
    let path = index_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.write_all(format!("pid={}\ncommand={command}\n", std::process::id()).as_bytes())?;
            file.flush()?;
            Ok(Access::Write(WriterLock { _file: file, path }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder may be writing its line right now: an empty holder is still a holder.
            let _ = file.read_to_string(&mut text);
            Ok(Access::Read(Holder::parse(&text)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_the_others_learn_who() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), SERVE).unwrap();
        assert!(first.is_write());
        let Access::Read(holder) = acquire(dir.path(), "ingest").unwrap() else { panic!("two writers") };
        assert_eq!(holder.pid, Some(std::process::id()));
        assert!(holder.is_server());
        assert_eq!(holder.describe(), format!("footnote serve (pid {})", std::process::id()));
        drop(first);
        let again = acquire(dir.path(), "ingest").unwrap();
        assert!(again.is_write(), "the lock is free once its holder is gone");
        let Access::Read(holder) = acquire(dir.path(), SERVE).unwrap() else { panic!("two writers") };
        assert!(!holder.is_server());
        assert_eq!(holder.command.as_deref(), Some("ingest"));
    }

    #[test]
    fn an_unreadable_holder_is_described_without_details() {
        assert_eq!(Holder::parse("").describe(), "another footnote process");
        assert_eq!(Holder::parse("pid=12\n").describe(), "another footnote process (pid 12)");
    }
}
