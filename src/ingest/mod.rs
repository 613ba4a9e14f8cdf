//! Turning an uploaded file into text: type sniffing, extraction under limits, and chunking.
//!
//! [`extract`] sniffs the file type (content first, then the name, then the MIME hint) and reads
//! the text as [`Section`]s, each with a [`Locator`] (page, heading path, email attachment,
//! subject and date). [`Chunker`] cuts the sections into token-sized [`ChunkDraft`]s that never
//! span two sections, so every chunk's locator is exact. [`read_file`] does both and checks the
//! result's size: it is the job of an extraction worker.
//!
//! The parsers run on untrusted bytes, and no in-process guard stops a stack overflow or an
//! allocation storm: the service never calls them in its own process. [`pool::WorkerPool`] runs
//! them in worker processes ([`worker`]) under kernel limits and kills a worker that crashes or
//! runs too long. The extractors still bound what they decompress and copy (defence in depth):
//! every decompression reads through the unpacked-size budget, and titles, headings, subjects and
//! attachment names are capped in length and depth ([`normalize::cap`]).
//!
//! Every refusal is an [`IngestError`] whose text tells a chat user what was wrong with the file.

mod chunk;
pub mod context;
mod docx;
mod email;
mod html;
mod normalize;
mod output;
mod pdf;
pub mod pool;
mod protocol;
mod sniff;
mod text;
pub mod worker;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use footnote_adapter::{IngestError, Locator};
use serde::{Deserialize, Serialize};

pub use chunk::{ChunkDraft, Chunker, count_tokens};
pub use output::{Chunked, read_file};
pub use pool::WorkerPool;

/// How much work one file may cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// Largest total a compressed file (DOCX) or an email (with all its attachments) may unpack
    /// to, in bytes.
    pub max_unpacked_size: u64,
    /// Most pages read from a PDF; a longer PDF is refused.
    pub max_pages: u32,
    /// Most attachments read from one email, nested ones included.
    pub max_attachments: usize,
    /// Longest time spent extracting text from one file (enforced by the worker pool, which
    /// kills a worker that runs past it).
    pub extract_timeout: Duration,
}

impl From<&crate::config::IngestConfig> for Limits {
    fn from(config: &crate::config::IngestConfig) -> Self {
        Limits {
            max_file_size: config.max_file_size.as_u64(),
            max_unpacked_size: config.max_unpacked_size.as_u64(),
            max_pages: config.max_pages,
            max_attachments: config.max_attachments,
            extract_timeout: config.extract_timeout,
        }
    }
}

impl Default for Limits {
    /// The limits of the default configuration.
    fn default() -> Self {
        Limits::from(&crate::config::IngestConfig::default())
    }
}

/// The kinds of file Footnote reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// Plain text (UTF-8, or UTF-8/UTF-16 with a byte-order mark).
    Text,
    /// Markdown, cut at its headings.
    Markdown,
    /// An HTML page, cut at its headings.
    Html,
    /// A PDF, one section per page.
    Pdf,
    /// A Word document (.docx), cut at its heading paragraphs.
    Docx,
    /// An email with its attachments and forwarded messages.
    Email,
}

impl DocKind {
    /// A stable lower-case name, as stored with the document.
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Text => "text",
            DocKind::Markdown => "markdown",
            DocKind::Html => "html",
            DocKind::Pdf => "pdf",
            DocKind::Docx => "docx",
            DocKind::Email => "email",
        }
    }
}

/// One run of text and where it stands in the document (page, heading path, attachment,
/// email subject and date). Chunks never span two sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Normalised text (Markdown sections keep their Markdown, without the heading line).
    pub text: String,
    /// Where the text stands: page, heading path, attachment, email subject and date.
    pub locator: Locator,
}

/// The text of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// From the document itself when it names one (PDF Info, DOCX core properties, HTML
    /// `<title>`, Markdown front matter or first `# heading`, email subject), else the file
    /// name without its extension.
    pub title: String,
    pub kind: DocKind,
    /// Never empty, and no section is blank.
    pub sections: Vec<Section>,
    /// Page count, for PDFs.
    pub pages: Option<u32>,
}

/// Sniffs the type (content first via magic bytes/structure, then extension, then the mime
/// hint) and extracts the text, in this process and on this thread. Panics from parser crates
/// (pdf-extract/lopdf panic on some broken files) become [`IngestError::Unreadable`]; a stack
/// overflow or an exhausted memory cannot be caught, which is why the service calls this only
/// inside an extraction worker ([`pool::WorkerPool`]).
pub fn extract(file_name: &str, mime: Option<&str>, bytes: &[u8], limits: &Limits) -> Result<Extracted, IngestError> {
    if bytes.len() as u64 > limits.max_file_size {
        return Err(IngestError::TooLarge(format!(
            "it is {} and the limit is {}",
            megabytes(bytes.len() as u64),
            megabytes(limits.max_file_size)
        )));
    }
    let ctx = Ctx::new(limits.clone());
    let outcome = match catch_unwind(AssertUnwindSafe(|| extract_any(&ctx, file_name, mime, bytes, 0))) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::warn!(file = file_name, panic = what, "a parser panicked on this file");
            Err(damaged())
        }
    };
    if let Err(error) = &outcome {
        tracing::info!(file = file_name, %error, "file refused");
    }
    outcome
}

/// Sniffs and extracts one file or email attachment; `depth` counts enclosing emails.
fn extract_any(
    ctx: &Ctx,
    file_name: &str,
    mime: Option<&str>,
    bytes: &[u8],
    depth: usize,
) -> Result<Extracted, IngestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty);
    }
    let kind = sniff::sniff(file_name, mime, bytes)?;
    let parsed = match kind {
        DocKind::Text => text::plain(bytes)?,
        DocKind::Markdown => text::markdown(bytes)?,
        DocKind::Html => html::extract(bytes)?,
        DocKind::Pdf => pdf::extract(ctx, bytes)?,
        DocKind::Docx => docx::extract(ctx, bytes)?,
        DocKind::Email => email::extract(ctx, bytes, depth)?,
    };
    let sections: Vec<Section> = parsed.sections.into_iter().filter(|s| !s.text.trim().is_empty()).collect();
    if sections.is_empty() {
        return Err(match kind {
            DocKind::Text | DocKind::Markdown => IngestError::Empty,
            DocKind::Pdf | DocKind::Docx => no_text("it contains no text I can read (a scanned document?)"),
            DocKind::Html | DocKind::Email => no_text("it contains no text I can read"),
        });
    }
    let title =
        parsed.title.map(|t| normalize::cap(&t)).filter(|t| !t.is_empty()).unwrap_or_else(|| file_stem(file_name));
    Ok(Extracted { title, kind, sections, pages: parsed.pages })
}

/// What an extractor hands back; [`extract_any`] fills in the title fallback and checks that
/// some text came out.
#[derive(Debug, Default)]
struct Parsed {
    title: Option<String>,
    sections: Vec<Section>,
    pages: Option<u32>,
}

/// Per-file state shared by the extractors: the limits and the budgets that nested content
/// (DOCX inside an email inside an email) draws from.
struct Ctx {
    limits: Limits,
    unpacked: Cell<u64>,
    attachments: Cell<usize>,
}

impl Ctx {
    fn new(limits: Limits) -> Self {
        Ctx { limits, unpacked: Cell::new(0), attachments: Cell::new(0) }
    }

    /// Bytes that may still be unpacked.
    fn unpacked_left(&self) -> u64 {
        self.limits.max_unpacked_size.saturating_sub(self.unpacked.get())
    }

    /// Counts `n` more unpacked bytes against `max_unpacked_size`.
    fn unpack(&self, n: u64) -> Result<(), IngestError> {
        let total = self.unpacked.get().saturating_add(n);
        if total > self.limits.max_unpacked_size {
            return Err(self.too_much_unpacked());
        }
        self.unpacked.set(total);
        Ok(())
    }

    fn too_much_unpacked(&self) -> IngestError {
        IngestError::TooLarge(format!(
            "it unpacks to more than {}, the limit for compressed files and emails",
            megabytes(self.limits.max_unpacked_size)
        ))
    }

    /// Counts one more email attachment against `max_attachments`.
    fn attachment(&self) -> Result<(), IngestError> {
        let n = self.attachments.get() + 1;
        if n > self.limits.max_attachments {
            return Err(IngestError::TooLarge(format!(
                "it has more than {} attachments (forwarded ones included)",
                self.limits.max_attachments
            )));
        }
        self.attachments.set(n);
        Ok(())
    }
}

fn no_text(why: &str) -> IngestError {
    IngestError::Unreadable(why.to_owned())
}

/// A parser crashed on the file.
fn damaged() -> IngestError {
    IngestError::Unreadable("it is damaged in a way I can't make sense of".into())
}

/// `n` bytes as a short size for people: "50 MB", "1.5 MB", "300 KB".
fn megabytes(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if n >= MB {
        if n.is_multiple_of(MB) { format!("{} MB", n / MB) } else { format!("{:.1} MB", n as f64 / MB as f64) }
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

/// The file name without its folder and extension; "document" when nothing is left. A suffix of
/// digits is a version, not an extension: `LGPL-2.1` keeps its name.
fn file_stem(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = match base.rsplit_once('.') {
        Some((_, ext)) if ext.chars().all(|c| c.is_ascii_digit()) => base,
        Some((stem, _)) if !stem.trim().is_empty() => stem,
        _ => base,
    };
    let stem = normalize::cap(stem);
    if stem.is_empty() { "document".into() } else { stem }
}

/// The lower-case extension of a file name, if any.
fn extension(file_name: &str) -> Option<String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    base.rsplit_once('.').map(|(_, ext)| ext.trim().to_ascii_lowercase()).filter(|e| !e.is_empty())
}
