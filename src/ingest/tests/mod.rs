//! Behaviour of [`extract`](super::extract) (in this process) on every supported type, on the broken files under
//! `tests/fixtures/broken/`, and under each limit. Binary inputs are built in code
//! ([`build`]); text fixtures live under `tests/fixtures/`.

mod build;
mod chunking;
mod regen;

use std::time::Duration;

use footnote_adapter::{IngestError, Locator};

use super::{DocKind, Extracted, Limits, extract};
use build::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn run(name: &str, bytes: Vec<u8>) -> Result<Extracted, IngestError> {
    extract(name, None, &bytes, &Limits::default())
}

fn ok(name: &str, bytes: Vec<u8>) -> Extracted {
    match run(name, bytes) {
        Ok(doc) => doc,
        Err(e) => panic!("{name}: {e:?}"),
    }
}

fn unreadable(why: &str) -> IngestError {
    IngestError::Unreadable(why.into())
}

fn path(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn pdf_pages_keep_their_numbers() {
    let bytes = simple_pdf(
        &[&["Alpha page one.", "Second line."], &["Bravo page two."], &["Charlie page three."]],
        Some("Field Manual"),
    );
    let doc = ok("manual.pdf", bytes);
    assert_eq!(doc.kind, DocKind::Pdf);
    assert_eq!(doc.title, "Field Manual");
    assert_eq!(doc.pages, Some(3));
    let pages: Vec<_> = doc.sections.iter().map(|s| s.locator.page).collect();
    assert_eq!(pages, vec![Some(1), Some(2), Some(3)]);
    assert!(doc.sections[0].text.contains("Alpha page one."), "{:?}", doc.sections[0].text);
    assert!(doc.sections[0].text.contains("Second line."));
    assert!(doc.sections[1].text.contains("Bravo page two."));
    assert!(doc.sections[2].text.contains("Charlie"));
}

#[test]
fn pdf_title_falls_back_to_the_file_name_and_content_beats_the_name() {
    let doc = ok("folder/Q3 plan.final.txt", simple_pdf(&[&["Text."]], None));
    assert_eq!(doc.kind, DocKind::Pdf);
    assert_eq!(doc.title, "Q3 plan.final");
    // A version number is not an extension.
    assert_eq!(ok("common-licenses/LGPL-2.1", b"Licence text.".to_vec()).title, "LGPL-2.1");
}

#[test]
fn pdf_limits_and_failures() {
    let three = simple_pdf(&[&["a"], &["b"], &["c"]], None);
    let limits = Limits { max_pages: 2, ..Limits::default() };
    assert_eq!(
        extract("x.pdf", None, &three, &limits),
        Err(IngestError::TooLarge("it has 3 pages and the limit is 2 pages".into()))
    );

    let encrypted = pdf(&PdfSpec { pages: vec![vec!["secret"]], password: Some("pw"), ..PdfSpec::default() });
    assert_eq!(run("x.pdf", encrypted), Err(unreadable("it is password-protected")));

    let scanned = simple_pdf(&[&[], &[]], None);
    assert_eq!(run("scan.pdf", scanned), Err(unreadable("it contains no text I can read (a scanned document?)")));

    // pdf-extract panics on a page without a MediaBox: caught, and the file is refused.
    let panicky = pdf(&PdfSpec { pages: vec![vec!["x"]], no_media_box: true, ..PdfSpec::default() });
    assert_eq!(run("x.pdf", panicky), Err(unreadable("the PDF is damaged: none of its pages could be read")));
}

#[test]
fn markdown_sections_carry_heading_paths() {
    let doc = ok("guide.md", fixture("guide.md"));
    assert_eq!(doc.kind, DocKind::Markdown);
    assert_eq!(doc.title, "Footnote Guide");
    let find =
        |needle: &str| doc.sections.iter().find(|s| s.text.contains(needle)).map(|s| s.locator.heading_path.clone());
    assert_eq!(find("apt install"), Some(path(&["Install", "Linux"])));
    assert_eq!(find("brew install"), Some(path(&["Install", "macOS"])));
    assert_eq!(find("footnote ask"), Some(path(&["Usage"])));
    assert!(doc.sections.iter().all(|s| !s.text.contains("## Linux")), "heading lines stay out of the text");
}

#[test]
fn html_drops_scripts_and_keeps_headings() {
    let doc = ok("page.html", fixture("page.html"));
    assert_eq!(doc.kind, DocKind::Html);
    assert_eq!(doc.title, "Office Handbook");
    let all: Vec<&str> = doc.sections.iter().map(|s| s.text.as_str()).collect();
    assert!(!all.concat().contains("tracker"), "{all:?}");
    let wifi = doc.sections.iter().find(|s| s.text.contains("guest network")).map(|s| &s.locator.heading_path);
    assert_eq!(wifi, Some(&path(&["Office Handbook", "Facilities", "Wi-Fi"])));
}

#[test]
fn docx_headings_title_and_styles() {
    let styles = r#"<w:styles xmlns:w="x"><w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>
        <w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="My Heading"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style></w:styles>"#;
    let paragraphs = [
        para(Some("Title"), "Travel Policy"),
        para(None, "Applies to everyone."),
        para(Some("berschrift1"), "Booking"),
        para(None, "Book trains &amp; flights early."),
        para(Some("Custom"), "Trains"),
        para(None, "Second class."),
        para(Some("Heading1"), "Expenses"),
        para(None, "Keep receipts."),
    ];
    let doc = ok("policy.docx", docx(&paragraphs, Some(styles), Some("Travel Policy 2024")));
    assert_eq!(doc.kind, DocKind::Docx);
    assert_eq!(doc.title, "Travel Policy 2024");
    let got: Vec<(Vec<String>, &str)> =
        doc.sections.iter().map(|s| (s.locator.heading_path.clone(), s.text.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (path(&["Travel Policy"]), "Applies to everyone."),
            (path(&["Travel Policy", "Booking"]), "Book trains & flights early."),
            (path(&["Travel Policy", "Booking", "Trains"]), "Second class."),
            (path(&["Travel Policy", "Expenses"]), "Keep receipts."),
        ]
    );
    let untitled = ok("Notes.docx", docx(&[para(None, "hello")], None, None));
    assert_eq!(untitled.title, "Notes");
}

#[test]
fn docx_zip_bombs_are_refused() {
    let big = format!("<w:document><w:body>{}</w:body></w:document>", " ".repeat(5 << 20));
    let bomb = zip(&[("word/document.xml", big.as_bytes())]);
    assert!(bomb.len() < 64 << 10, "a real bomb: {} bytes", bomb.len());
    let limits = Limits { max_unpacked_size: 1 << 20, ..Limits::default() };
    let expected =
        IngestError::TooLarge("it unpacks to more than 1 MB, the limit for compressed files and emails".into());
    assert_eq!(extract("bomb.docx", None, &bomb, &limits), Err(expected.clone()));

    // The same bomb lying about its size in the ZIP directory is stopped while reading.
    let liar = understate_sizes(bomb);
    assert_eq!(extract("bomb.docx", None, &liar, &limits), Err(expected));
}

/// Rewrites every declared uncompressed size in a ZIP to 100 bytes.
fn understate_sizes(mut zip: Vec<u8>) -> Vec<u8> {
    let mut i = 0;
    while i + 30 < zip.len() {
        let offset = match &zip[i..i + 4] {
            b"PK\x03\x04" => Some(22),
            b"PK\x01\x02" => Some(24),
            _ => None,
        };
        if let Some(offset) = offset {
            zip[i + offset..i + offset + 4].copy_from_slice(&100u32.to_le_bytes());
        }
        i += 1;
    }
    zip
}

#[test]
fn zips_that_are_not_word_documents() {
    let xlsx = zip(&[("xl/workbook.xml", b"<x/>")]);
    assert_eq!(run("book.xlsx", xlsx), Err(IngestError::Unsupported("an Excel spreadsheet".into())));
    let plain = zip(&[("a.txt", b"hi")]);
    assert!(matches!(run("files.zip", plain.clone()), Err(IngestError::Unsupported(m)) if m.contains("ZIP")));
    assert_eq!(run("files.docx", plain), Err(unreadable("it is named .docx but is not a Word document")));
}

#[test]
fn email_body_attachments_and_forwards() {
    let doc = ok("mail.eml", fixture("mail.eml"));
    assert_eq!(doc.kind, DocKind::Email);
    assert_eq!(doc.title, "Quarterly report");
    let outer = |attachment: Option<&str>, page: Option<u32>| Locator {
        subject: Some("Quarterly report".into()),
        date: Some("2024-05-14T09:30:00+02:00".into()),
        attachment: attachment.map(str::to_owned),
        page,
        ..Locator::default()
    };
    let at = |needle: &str| {
        doc.sections.iter().find(|s| s.text.contains(needle)).map(|s| s.locator.clone()).unwrap_or_default()
    };
    assert_eq!(at("report is attached"), outer(None, None));
    assert_eq!(at("Revenue grew"), outer(Some("report.pdf"), Some(1)));
    assert_eq!(at("Costs fell"), outer(Some("report.pdf"), Some(2)));
    assert_eq!(at("meeting room"), outer(Some("notes.txt"), None));
    let forwarded = Locator {
        subject: Some("Budget numbers".into()),
        date: Some("2024-05-10T16:00:00Z".into()),
        attachment: Some("Budget numbers".into()),
        ..Locator::default()
    };
    assert_eq!(at("budget is 42"), forwarded);
    let nested = Locator {
        attachment: Some("Budget numbers › budget.md".into()),
        heading_path: path(&["Budget", "Travel"]),
        ..forwarded.clone()
    };
    assert_eq!(at("trains only"), nested);
    assert!(doc.sections.iter().all(|s| s.locator.subject.is_some() && s.locator.date.is_some()));
}

#[test]
fn email_built_in_code_with_html_body_and_limits() {
    let inner = email("Inner", "Fri, 10 May 2024 16:00:00 +0000", "Inner text.", &[]);
    let html_only = b"From: a@b.c\r\nSubject: Html only\r\nDate: Mon, 13 May 2024 08:00:00 +0000\r\nContent-Type: text/html\r\n\r\n<html><body><h1>Hi</h1><p>Rich <b>text</b>.</p><script>x()</script></body></html>".to_vec();
    let doc = ok("html.eml", html_only);
    assert_eq!(doc.title, "Html only");
    let body: Vec<&str> = doc.sections.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(body, vec!["Hi\n\nRich text."]);

    let pdf_bytes = simple_pdf(&[&["Attached page."]], None);
    let parts = [
        attachment("a.pdf", "application/pdf", &pdf_bytes),
        attachment("logo.png", "image/png", &fixture("broken/image.png")),
        attachment("b.txt", "text/plain", b"Text attachment."),
        forwarded(&inner),
    ];
    let mail = email("Outer", "Tue, 14 May 2024 09:30:00 +0200", "Body.", &parts);
    let doc = ok("x.eml", mail.clone());
    let names: Vec<Option<&str>> = doc.sections.iter().map(|s| s.locator.attachment.as_deref()).collect();
    assert_eq!(names, vec![None, Some("a.pdf"), Some("b.txt"), Some("Inner")]);

    // The picture is not counted; three attachments are.
    let limits = Limits { max_attachments: 2, ..Limits::default() };
    let refused = IngestError::TooLarge("it has more than 2 attachments (forwarded ones included)".into());
    assert_eq!(extract("x.eml", None, &mail, &limits), Err(refused));
    let limits = Limits { max_attachments: 3, ..Limits::default() };
    assert!(extract("x.eml", None, &mail, &limits).is_ok());

    let limits = Limits { max_unpacked_size: 100, ..Limits::default() };
    assert!(matches!(extract("x.eml", None, &mail, &limits), Err(IngestError::TooLarge(m)) if m.contains("unpacks")));
}

#[test]
fn deeply_nested_forwards_stop_at_the_depth_limit() {
    let mut mail = email("Level 9", "Fri, 10 May 2024 16:00:00 +0000", "Deepest text.", &[]);
    for level in (0..9).rev() {
        mail = email(
            &format!("Level {level}"),
            "Fri, 10 May 2024 16:00:00 +0000",
            &format!("Text {level}."),
            &[forwarded(&mail)],
        );
    }
    let doc = ok("deep.eml", mail);
    let all: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
    assert!(all.contains("Text 0.") && all.contains("Text 5."), "{all}");
    assert!(!all.contains("Deepest text."), "{all}");
}

#[test]
fn text_encodings() {
    let doc = ok("a.txt", b"\xEF\xBB\xBFcaf\xC3\xA9\r\nline".to_vec());
    assert_eq!((doc.kind, doc.sections[0].text.as_str(), doc.title.as_str()), (DocKind::Text, "café\nline", "a"));
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("hé\0llo".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    assert_eq!(ok("b.txt", utf16).sections[0].text, "héllo");
}

#[test]
fn file_size_limit_names_the_limit_in_mb() {
    let limits = Limits { max_file_size: 1 << 20, ..Limits::default() };
    let bytes = vec![b'a'; 3 << 19];
    assert_eq!(
        extract("big.txt", None, &bytes, &limits),
        Err(IngestError::TooLarge("it is 1.5 MB and the limit is 1 MB".into()))
    );
}

#[test]
fn limits_follow_the_config_and_kinds_have_stable_names() {
    let config = crate::config::IngestConfig::default();
    let limits = Limits::from(&config);
    assert_eq!(limits.max_file_size, 50 << 20);
    assert_eq!(limits.max_unpacked_size, 200 << 20);
    assert_eq!((limits.max_pages, limits.max_attachments), (2000, 20));
    assert_eq!(limits.extract_timeout, Duration::from_secs(60));
    let kinds = [DocKind::Text, DocKind::Markdown, DocKind::Html, DocKind::Pdf, DocKind::Docx, DocKind::Email];
    let names: Vec<&str> = kinds.iter().map(DocKind::as_str).collect();
    assert_eq!(names, ["text", "markdown", "html", "pdf", "docx", "email"]);
}

/// Every file under `tests/fixtures/broken/` is refused with its own error and message.
#[test]
fn broken_files_each_get_their_own_message() {
    let cases: &[(&str, IngestError)] = &[
        ("empty.txt", IngestError::Empty),
        ("whitespace.txt", IngestError::Empty),
        ("invalid-utf8.txt", unreadable("it is not valid UTF-8 text")),
        ("not-a-pdf.pdf", unreadable("it is named .pdf but is not a PDF")),
        ("truncated.pdf", unreadable("the PDF is damaged or incomplete")),
        ("encrypted.pdf", unreadable("it is password-protected")),
        ("scanned.pdf", unreadable("it contains no text I can read (a scanned document?)")),
        ("corrupt.docx", unreadable("the Word document is damaged (its ZIP structure is broken)")),
        ("image.png", IngestError::Unsupported("an image (PNG): pictures have no text for me to read".into())),
    ];
    let mut messages = Vec::new();
    for (name, expected) in cases {
        let got = run(name, fixture(&format!("broken/{name}")));
        assert_eq!(got.as_ref().err(), Some(expected), "{name}");
        messages.push(expected.user_message());
    }
    let mut distinct = messages.clone();
    distinct.sort();
    distinct.dedup();
    // Only the two empty files share a message.
    assert_eq!(distinct.len(), messages.len() - 1, "{messages:#?}");
}
