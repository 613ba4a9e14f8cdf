//! An extraction worker's whole job, [`read_file`]: extract, chunk, and check that what goes back
//! to the service is of a size the service can hold.
//!
//! Three checks bound the result, whatever the file's type:
//! - its total size (chunk texts plus locators) may not exceed [`max_output`], twice the largest
//!   file accepted;
//! - the locators (heading paths, subjects, attachment names, copied into every chunk) may not
//!   outweigh the text itself once they pass [`LOCATOR_FLOOR`];
//! - past [`MANY_CHUNKS`] chunks, they may not be nearly empty on average (under
//!   [`MIN_AVERAGE_CHUNK`] bytes): every chunk costs an embedding and an index entry whatever its
//!   size, so forty thousand one-word sections under forty thousand headings multiply a 1 MB
//!   upload's cost forty times. Such files are ways to multiply an upload, not documents.

use footnote_adapter::{IngestError, Locator};
use serde::{Deserialize, Serialize};

use super::{ChunkDraft, Chunker, DocKind, Limits, extract};

/// Locator bytes allowed whatever the text's size, so that a short note under a long heading is
/// still read.
pub const LOCATOR_FLOOR: u64 = 1 << 20;
/// Chunks any file may have whatever their size.
pub const MANY_CHUNKS: usize = 2_000;
/// The smallest average chunk text, in bytes, of a file of more than [`MANY_CHUNKS`] chunks.
pub const MIN_AVERAGE_CHUNK: u64 = 32;

/// A file read and cut into chunks: what a worker hands back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunked {
    /// See [`super::Extracted::title`].
    pub title: String,
    pub kind: DocKind,
    /// Page count, for PDFs.
    pub pages: Option<u32>,
    /// Never empty.
    pub chunks: Vec<ChunkDraft>,
}

/// The most a worker may hand back for one file, in bytes of chunk text and locators.
pub fn max_output(limits: &Limits) -> u64 {
    limits.max_file_size.saturating_mul(2).max(LOCATOR_FLOOR)
}

/// The refusal for a file that crashed or exhausted its worker, or whose result would not fit.
pub fn too_complex() -> IngestError {
    IngestError::Unreadable("it looks damaged or too complex".into())
}

/// Extracts and chunks one file in this process (see [`extract`] for why the service runs this
/// only in a worker process), and checks the size of the result.
pub fn read_file(
    file_name: &str,
    mime: Option<&str>,
    bytes: &[u8],
    limits: &Limits,
    chunker: &Chunker,
) -> Result<Chunked, IngestError> {
    let extracted = extract(file_name, mime, bytes, limits)?;
    let chunks = chunker.chunk(&extracted);
    if chunks.is_empty() {
        return Err(IngestError::Unreadable("it contains no text I can read".into()));
    }
    let text: u64 = chunks.iter().map(|c| c.text.len() as u64).sum();
    let locators: u64 = chunks.iter().map(|c| locator_size(&c.locator)).sum();
    let too_big = text.saturating_add(locators) > max_output(limits);
    let mostly_locators = locators > text && locators > LOCATOR_FLOOR;
    let nearly_empty = chunks.len() > MANY_CHUNKS && text < MIN_AVERAGE_CHUNK * chunks.len() as u64;
    if too_big || mostly_locators || nearly_empty {
        tracing::info!(
            file = file_name,
            chunks = chunks.len(),
            text,
            locators,
            "file refused: its chunks are too large"
        );
        return Err(too_complex());
    }
    Ok(Chunked { title: extracted.title, kind: extracted.kind, pages: extracted.pages, chunks })
}

/// Bytes of text a locator carries.
fn locator_size(locator: &Locator) -> u64 {
    let strings = locator.heading_path.iter().chain(&locator.attachment).chain(&locator.subject).chain(&locator.date);
    strings.map(|s| s.len() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heading_multiplier_is_refused_and_a_real_document_is_not() {
        let chunker = Chunker::new(200, 30);
        let limits = Limits::default();
        let mut md = format!("# {}\n\n", "Big ".repeat(50_000));
        for n in 0..40_000 {
            md.push_str(&format!("## Section {n}\n\nx\n\n"));
        }
        assert_eq!(read_file("m.md", None, md.as_bytes(), &limits, &chunker), Err(too_complex()));

        let mut manual = String::from("# Manual\n\n");
        for n in 0..300 {
            manual.push_str(&format!("## Step {n}\n\nTurn the valve {n} times, then check the gauge again.\n\n"));
        }
        let read = read_file("manual.md", None, manual.as_bytes(), &limits, &chunker).unwrap();
        assert_eq!(read.chunks.len(), 300);
        assert_eq!(read.chunks[7].locator.heading_path, ["Manual", "Step 7"]);
    }

    #[test]
    fn thousands_of_near_empty_sections_are_refused_and_a_glossary_is_not() {
        let chunker = Chunker::new(200, 30);
        let mut md = String::from("# Sections\n\n");
        for n in 0..5_000 {
            md.push_str(&format!("## S{n}\n\nx\n\n"));
        }
        assert_eq!(read_file("m.md", None, md.as_bytes(), &Limits::default(), &chunker), Err(too_complex()));

        let mut glossary = String::from("# Glossary\n\n");
        for n in 0..3_000 {
            glossary.push_str(&format!("## Term {n}\n\nThe meaning of term number {n}, in one sentence.\n\n"));
        }
        let read = read_file("g.md", None, glossary.as_bytes(), &Limits::default(), &chunker).unwrap();
        assert_eq!(read.chunks.len(), 3_000);
    }

    #[test]
    fn long_headings_over_short_text_pass_below_the_floor() {
        let chunker = Chunker::new(200, 30);
        let note = format!("# {}\n\nShort.\n\n## {}\n\nAlso short.\n", "Title ".repeat(100), "Sub ".repeat(100));
        let read = read_file("n.md", None, note.as_bytes(), &Limits::default(), &chunker).unwrap();
        assert_eq!(read.chunks.len(), 2);
        assert!(read.chunks[1].locator.heading_path.iter().all(|h| h.chars().count() <= 200));
        let limits = Limits { max_file_size: 1 << 20, ..Limits::default() };
        assert_eq!(max_output(&limits), 2 << 20);
    }
}
