//! Finding and reading the files `footnote ingest` was given.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use footnote_adapter::IngestError;

/// Expands directories recursively (skipping hidden entries), keeps files as given, sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file, refusing it without reading when it is larger than `max` bytes.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::Unreadable(format!("cannot open it ({e})")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let too_large = || IngestError::TooLarge(format!("the limit is {}", bytesize::ByteSize::b(max).display().iec()));
    if len > max {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| IngestError::Unreadable(format!("cannot read it ({e})")))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The source key of a file: its path as given, so that ingesting the same path again replaces
/// the earlier version while equal names in different folders stay apart.
pub fn source_name(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}
