//! File type sniffing: the content decides first (magic bytes, ZIP contents, email headers,
//! HTML doctype), then the file name's extension, then the MIME type the platform reported.

use std::io::Cursor;

use footnote_adapter::IngestError;

use super::{DocKind, extension, normalize};

/// How far into the file a `%PDF-` header may start (the spec allows leading junk).
const PDF_HEADER_WINDOW: usize = 1024;

/// The start of an OLE compound file (old Office formats, encrypted OOXML).
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Decides how to read a file, or says why it cannot be read at all.
pub(super) fn sniff(file_name: &str, mime: Option<&str>, bytes: &[u8]) -> Result<DocKind, IngestError> {
    let ext = extension(file_name);
    let ext = ext.as_deref();
    let mime = mime.map(|m| m.split(';').next().unwrap_or(m).trim().to_ascii_lowercase());
    let mime = mime.as_deref();

    if is_pdf(bytes) {
        return Ok(DocKind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return sniff_zip(ext, bytes);
    }
    // Word saves a password-protected .docx inside an OLE container instead of a ZIP.
    if ext == Some("docx") && bytes.starts_with(OLE_MAGIC) {
        return Err(IngestError::Unreadable("it is password-protected".into()));
    }
    if let Some(found) = infer::get(bytes).filter(|t| t.matcher_type() != infer::MatcherType::Text) {
        return Err(IngestError::Unsupported(describe(&found)));
    }
    if ext == Some("pdf") {
        return Err(IngestError::Unreadable("it is named .pdf but is not a PDF".into()));
    }
    if mime == Some("application/pdf") {
        return Err(IngestError::Unreadable("it was sent as a PDF but is not one".into()));
    }
    if ext == Some("docx") {
        return Err(IngestError::Unreadable("it is named .docx but is not a Word document".into()));
    }
    if normalize::looks_binary(bytes) {
        return Err(IngestError::Unsupported("a binary file of a type I don't know".into()));
    }
    if looks_like_email(bytes) {
        return Ok(DocKind::Email);
    }
    if looks_like_html(bytes) {
        return Ok(DocKind::Html);
    }
    match ext {
        Some("md" | "markdown" | "mdown" | "mkd" | "mkdn") => return Ok(DocKind::Markdown),
        Some("html" | "htm" | "xhtml") => return Ok(DocKind::Html),
        Some("eml") => return Ok(DocKind::Email),
        _ => {}
    }
    match mime {
        Some("text/markdown" | "text/x-markdown") => Ok(DocKind::Markdown),
        Some("text/html" | "application/xhtml+xml") => Ok(DocKind::Html),
        Some("message/rfc822") => Ok(DocKind::Email),
        _ => Ok(DocKind::Text),
    }
}

fn is_pdf(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(PDF_HEADER_WINDOW)].windows(5).any(|w| w == b"%PDF-")
}

/// A ZIP file is read only when it is a Word document.
fn sniff_zip(ext: Option<&str>, bytes: &[u8]) -> Result<DocKind, IngestError> {
    let archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(error) => {
            tracing::debug!(%error, "not a readable ZIP archive");
            return Err(IngestError::Unreadable(if ext == Some("docx") {
                "the Word document is damaged (its ZIP structure is broken)".into()
            } else {
                "it is a damaged ZIP archive".into()
            }));
        }
    };
    if archive.index_for_name("word/document.xml").is_some() {
        return Ok(DocKind::Docx);
    }
    let names: Vec<&str> = archive.file_names().collect();
    let what = if names.iter().any(|n| n.starts_with("xl/")) {
        "an Excel spreadsheet"
    } else if names.iter().any(|n| n.starts_with("ppt/")) {
        "a PowerPoint presentation"
    } else if names.contains(&"mimetype") && names.contains(&"content.xml") {
        "an OpenDocument file (save it as .docx or PDF)"
    } else if names.iter().any(|n| n.starts_with("META-INF/container.xml")) {
        "an e-book (EPUB)"
    } else if ext == Some("docx") {
        return Err(IngestError::Unreadable("it is named .docx but is not a Word document".into()));
    } else {
        "a ZIP archive (send the files inside it one by one)"
    };
    Err(IngestError::Unsupported(what.into()))
}

/// A short name for a binary type, for "I can't read …".
fn describe(found: &infer::Type) -> String {
    use infer::MatcherType as M;
    let ext = found.extension();
    let upper = ext.to_ascii_uppercase();
    match (found.matcher_type(), ext) {
        (M::Image, _) => format!("an image ({upper}): pictures have no text for me to read"),
        (M::Audio, _) => format!("an audio file ({upper})"),
        (M::Video, _) => format!("a video ({upper})"),
        (M::Font, _) => format!("a font file ({upper})"),
        (_, "doc") => "an old-style Word file (.doc); save it as .docx or PDF".into(),
        (_, "xls" | "xlsx" | "ods") => "a spreadsheet".into(),
        (_, "ppt" | "pptx" | "odp") => "a presentation".into(),
        (_, "rtf") => "an RTF file; save it as .docx or PDF".into(),
        (M::Archive, _) => format!("a compressed archive ({upper})"),
        (M::App, _) => format!("a program or binary file ({upper})"),
        (M::Book, _) => format!("an e-book ({upper})"),
        _ => format!("a {upper} file"),
    }
}

/// Header names that open an RFC 5322 message.
const EMAIL_HEADERS: &[&str] = &[
    "from",
    "subject",
    "date",
    "mime-version",
    "received",
    "return-path",
    "to",
    "message-id",
    "delivered-to",
    "reply-to",
    "cc",
    "content-type",
    "x-mailer",
    "dkim-signature",
    "arc-seal",
    "authentication-results",
];

/// The names that make a header block an email (not just any `Key: value` text).
const EMAIL_KEY_HEADERS: &[&str] = &["from", "subject", "date", "mime-version", "received", "return-path"];

/// True when the file opens with RFC 5322 headers: every line up to the first blank one is a
/// header or a folded continuation, and at least two known email headers are among them.
pub(super) fn looks_like_email(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let head = String::from_utf8_lossy(head);
    let head = head.trim_start_matches('\u{FEFF}');
    let mut key = 0;
    let mut known = 0;
    let mut lines = 0;
    for line in head.lines() {
        if line.trim().is_empty() {
            break;
        }
        lines += 1;
        if line.starts_with([' ', '\t']) {
            if lines == 1 {
                return false;
            }
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            // An mbox "From " separator may open the file.
            if lines == 1 && line.starts_with("From ") {
                continue;
            }
            return false;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        let name = name.to_ascii_lowercase();
        known += usize::from(EMAIL_HEADERS.contains(&name.as_str()));
        key += usize::from(EMAIL_KEY_HEADERS.contains(&name.as_str()));
    }
    key >= 1 && known >= 2
}

/// True when the text opens with an HTML doctype or `<html>` tag (after a BOM, blank space or
/// comments).
fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = head.trim_start_matches('\u{FEFF}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?xml") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<!doctype html") || rest.starts_with("<html") || rest.starts_with("<head")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_beats_extension() {
        assert_eq!(sniff("notes.txt", None, b"%PDF-1.7\n..."), Ok(DocKind::Pdf));
        assert_eq!(sniff("page.txt", None, b"<!DOCTYPE html><title>x</title>"), Ok(DocKind::Html));
        assert_eq!(sniff("x.md", None, b"From: a@b.c\nSubject: hi\n\nbody"), Ok(DocKind::Email));
    }

    #[test]
    fn extension_then_mime() {
        assert_eq!(sniff("a.md", None, b"# Title"), Ok(DocKind::Markdown));
        assert_eq!(sniff("a.htm", None, b"<p>hi</p>"), Ok(DocKind::Html));
        assert_eq!(sniff("a", Some("text/markdown; charset=utf-8"), b"# Title"), Ok(DocKind::Markdown));
        assert_eq!(sniff("a", Some("message/rfc822"), b"hello"), Ok(DocKind::Email));
        assert_eq!(sniff("a.eml", None, b"hello"), Ok(DocKind::Email));
        assert_eq!(sniff("README", None, b"hello"), Ok(DocKind::Text));
    }

    #[test]
    fn email_headers_need_a_real_header_block() {
        assert!(looks_like_email(b"Return-Path: <a@b>\r\nReceived: by x\r\n\tfolded\r\nFrom: a\r\n\r\nhi"));
        assert!(!looks_like_email(b"Subject: just one header\n\nbody"));
        assert!(!looks_like_email(b"Note: this\nIs: prose with colons\n"));
        assert!(!looks_like_email(b"From: me\nand then some prose\n"));
    }

    #[test]
    fn misnamed_and_binary_files() {
        assert_eq!(
            sniff("report.pdf", None, b"just text"),
            Err(IngestError::Unreadable("it is named .pdf but is not a PDF".into()))
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(matches!(sniff("a.png", None, png), Err(IngestError::Unsupported(m)) if m.contains("image")));
        assert!(matches!(sniff("a.bin", None, &[0u8; 64]), Err(IngestError::Unsupported(_))));
        let ole = [OLE_MAGIC, &[0u8; 600]].concat();
        assert_eq!(sniff("locked.docx", None, &ole), Err(IngestError::Unreadable("it is password-protected".into())));
        assert_eq!(
            sniff("scan", Some("application/pdf"), b"text"),
            Err(IngestError::Unreadable("it was sent as a PDF but is not one".into()))
        );
    }
}
