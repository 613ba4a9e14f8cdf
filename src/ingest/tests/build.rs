//! Builders for binary test inputs (PDF with lopdf, DOCX with zip, emails with base64 parts), so
//! the repository holds few binary fixtures.

use std::io::{Cursor, Write};

use lopdf::content::{Content, Operation};
use lopdf::{Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream, dictionary};

/// Options for [`pdf`].
#[derive(Default)]
pub struct PdfSpec<'a> {
    /// Lines of text per page.
    pub pages: Vec<Vec<&'a str>>,
    pub title: Option<&'a str>,
    /// Leave out the MediaBox, which makes pdf-extract panic.
    pub no_media_box: bool,
    /// Encrypt with this user password.
    pub password: Option<&'a str>,
}

/// A PDF with one Helvetica text line per entry of each page.
pub fn pdf(spec: &PdfSpec<'_>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for lines in &spec.pages {
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("Td", vec![72.into(), 760.into()]),
        ];
        for line in lines {
            operations.push(Operation::new("Td", vec![0.into(), (-16).into()]));
            operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations }.encode().expect("content encodes");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    let mut pages = dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id };
    if !spec.no_media_box {
        pages.set("MediaBox", vec![0.into(), 0.into(), 595.into(), 842.into()]);
    }
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    if let Some(title) = spec.title {
        let info_id = doc.add_object(dictionary! { "Title" => Object::string_literal(title) });
        doc.trailer.set("Info", info_id);
    }
    if let Some(password) = spec.password {
        doc.trailer.set(
            "ID",
            Object::Array(vec![
                Object::String(vec![7u8; 16], lopdf::StringFormat::Literal),
                Object::String(vec![9u8; 16], lopdf::StringFormat::Literal),
            ]),
        );
        let version = EncryptionVersion::V2 {
            document: &doc,
            owner_password: "owner",
            user_password: password,
            key_length: 128,
            permissions: Permissions::all(),
        };
        let state = EncryptionState::try_from(version).expect("encryption state");
        doc.encrypt(&state).expect("encrypts");
    }
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("PDF saves");
    bytes
}

/// A PDF whose pages each hold the given lines.
pub fn simple_pdf(pages: &[&[&str]], title: Option<&str>) -> Vec<u8> {
    pdf(&PdfSpec { pages: pages.iter().map(|p| p.to_vec()).collect(), title, ..PdfSpec::default() })
}

/// A deflated ZIP of the given entries.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(data).expect("zip write");
    }
    writer.finish().expect("zip finishes").into_inner()
}

/// A paragraph of `word/document.xml`, with a paragraph style when given.
pub fn para(style: Option<&str>, text: &str) -> String {
    let ppr = style.map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#)).unwrap_or_default();
    format!("<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
}

/// A DOCX with these body paragraphs, the given `styles.xml` and an optional core title.
pub fn docx(paragraphs: &[String], styles: Option<&str>, title: Option<&str>) -> Vec<u8> {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{}</w:body></w:document>"#,
        paragraphs.concat()
    );
    let core = title.map(|t| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{t}</dc:title></cp:coreProperties>"#
        )
    });
    let content_types =
        br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;
    let mut entries: Vec<(&str, &[u8])> =
        vec![("[Content_Types].xml", content_types), ("word/document.xml", document.as_bytes())];
    if let Some(styles) = styles {
        entries.push(("word/styles.xml", styles.as_bytes()));
    }
    if let Some(core) = &core {
        entries.push(("docProps/core.xml", core.as_bytes()));
    }
    zip(&entries)
}

/// Standard base64 with line breaks, for MIME parts.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A multipart/mixed email with a text body and the given `(headers, body)` parts.
pub fn email(subject: &str, date: &str, body: &str, parts: &[(String, String)]) -> Vec<u8> {
    let mut out = format!(
        "From: Ana <ana@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    for (headers, content) in parts {
        out.push_str(&format!("--b1\r\n{headers}\r\n\r\n{content}\r\n"));
    }
    out.push_str("--b1--\r\n");
    out.into_bytes()
}

/// A base64 attachment part for [`email`].
pub fn attachment(name: &str, mime: &str, bytes: &[u8]) -> (String, String) {
    (
        format!(
            "Content-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64"
        ),
        base64(bytes),
    )
}

/// A forwarded message part for [`email`].
pub fn forwarded(message: &[u8]) -> (String, String) {
    (
        "Content-Type: message/rfc822\r\nContent-Disposition: inline".into(),
        String::from_utf8_lossy(message).into_owned(),
    )
}

#[test]
fn base64_matches_known_values() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
