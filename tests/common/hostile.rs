//! The hostile corpus: files built to take a parser down, generated here (no binary blobs in
//! the repository). Each is refused by Footnote, and none may hurt the service:
//!
//! | file | what it does |
//! |---|---|
//! | `xobject-self.pdf` | a form XObject that draws itself (`/X Do` inside X): endless recursion |
//! | `page-tree-loop.pdf` | a page tree whose `Parent`/`Kids` links go round in a circle |
//! | `flate-bomb.pdf` | a 2 KB page stream through `[/FlateDecode /FlateDecode]` that unpacks to 1 GiB |
//! | `pages-100k.pdf` | 100,000 pages |
//! | `zip-bomb.docx` | `word/document.xml` unpacks to 1 GiB (a 1 MB ZIP) |
//! | `zip-bomb-liar.docx` | the same, while the ZIP declares 2 KB |
//! | `entities.docx` | "billion laughs": nested XML entities |
//! | `headings.md`, `.docx`, `.html` | a 200 KB heading over 40,000 one-word sections |
//! | `nested.html` | 2 MB of nested `<div>`s |
//! | `nested.eml` | 50,000 levels of forwarded `message/rfc822` |
//! | `nul.txt` | 1 MB of NUL bytes |
//! | `invalid-utf8.txt` | Latin-1 text named `.txt` |

use std::io::{Cursor, Write};
use std::sync::OnceLock;

use lopdf::{Document, Object, Stream, dictionary};

/// One hostile file.
pub struct Hostile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

/// Every hostile file (built once per test process).
pub fn corpus() -> &'static [Hostile] {
    static CORPUS: OnceLock<Vec<Hostile>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        vec![
            Hostile { name: "xobject-self.pdf", bytes: xobject_self() },
            Hostile { name: "page-tree-loop.pdf", bytes: page_tree_loop() },
            Hostile { name: "flate-bomb.pdf", bytes: flate_bomb() },
            Hostile { name: "pages-100k.pdf", bytes: many_pages(100_000) },
            Hostile { name: "zip-bomb.docx", bytes: zip_bomb(false) },
            Hostile { name: "zip-bomb-liar.docx", bytes: zip_bomb(true) },
            Hostile { name: "entities.docx", bytes: entities_docx() },
            Hostile { name: "headings.md", bytes: headings_markdown() },
            Hostile { name: "headings.docx", bytes: headings_docx() },
            Hostile { name: "headings.html", bytes: headings_html() },
            Hostile { name: "nested.html", bytes: nested_html() },
            Hostile { name: "nested.eml", bytes: nested_email(50_000) },
            Hostile { name: "nul.txt", bytes: vec![0; 1 << 20] },
            Hostile { name: "invalid-utf8.txt", bytes: b"Caf\xe9 cr\xe8me br\xfbl\xe9e, \xe0 la carte.\n".repeat(100) },
        ]
    })
}

/// One hostile file by name.
pub fn file(name: &str) -> &'static Hostile {
    corpus().iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no hostile file {name}"))
}

/// A PDF of a catalog, a page tree root with `root_extra` entries, and what `build` adds: it
/// gets the document, the root's id and a font's id, and returns the root's `Kids`.
fn pdf(
    root_extra: impl FnOnce(lopdf::ObjectId) -> lopdf::Dictionary,
    build: impl FnOnce(&mut Document, lopdf::ObjectId, lopdf::ObjectId) -> Vec<Object>,
) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let root = doc.new_object_id();
    let font = doc.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" });
    let kids = build(&mut doc, root, font);
    let mut dict = dictionary! { "Type" => "Pages", "Count" => kids.len() as i64, "Kids" => kids };
    for (key, value) in root_extra(root) {
        dict.set(key, value);
    }
    doc.objects.insert(root, Object::Dictionary(dict));
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("write the PDF");
    out
}

fn no_extra(_: lopdf::ObjectId) -> lopdf::Dictionary {
    dictionary! {}
}

fn media_box() -> Object {
    Object::Array(vec![0.into(), 0.into(), 612.into(), 792.into()])
}

/// `[/FlateDecode /FlateDecode]`.
fn flate_twice() -> Object {
    Object::Array(vec![Object::Name(b"FlateDecode".to_vec()), Object::Name(b"FlateDecode".to_vec())])
}

fn page(doc: &mut Document, parent: lopdf::ObjectId, content: Stream, resources: lopdf::Dictionary) -> Object {
    let content = doc.add_object(content);
    let page = dictionary! {
        "Type" => "Page", "Parent" => parent, "MediaBox" => media_box(), "Contents" => content, "Resources" => resources,
    };
    doc.add_object(page).into()
}

fn fonts(font: lopdf::ObjectId) -> lopdf::Dictionary {
    dictionary! { "Font" => dictionary! { "F1" => font } }
}

fn text(line: &str) -> Vec<u8> {
    format!("BT /F1 12 Tf 72 700 Td ({line}) Tj ET").into_bytes()
}

fn xobject_self() -> Vec<u8> {
    pdf(no_extra, |doc, root, font| {
        let x = doc.new_object_id();
        let form = Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Form", "BBox" => media_box(),
                "Resources" => dictionary! { "XObject" => dictionary! { "X" => x } },
            },
            b"/X Do".to_vec(),
        );
        doc.objects.insert(x, Object::Stream(form));
        let mut content = text("Drawn before the form.");
        content.extend_from_slice(b" /X Do");
        let mut resources = fonts(font);
        resources.set("XObject", dictionary! { "X" => x });
        vec![page(doc, root, Stream::new(dictionary! {}, content), resources)]
    })
}

fn page_tree_loop() -> Vec<u8> {
    // The root's kids are a page and a node whose only kid is the root again; the page's parent
    // is that node, whose parent is the root, whose parent is the node: looking up what a page
    // inherits (MediaBox, Resources) goes round and round.
    let node = std::cell::Cell::new((0, 0));
    pdf(
        |_| dictionary! { "Parent" => node.get() },
        |doc, root, _font| {
            let id = doc.new_object_id();
            node.set(id);
            let content = doc.add_object(Stream::new(dictionary! {}, text("A page in a loop.")));
            let page = doc.add_object(dictionary! { "Type" => "Page", "Parent" => id, "Contents" => content });
            let node_dict = dictionary! { "Type" => "Pages", "Kids" => vec![Object::Reference(root)], "Parent" => root, "Count" => 1 };
            doc.objects.insert(id, Object::Dictionary(node_dict));
            vec![page.into(), id.into()]
        },
    )
}

/// zlib of `n` zero bytes, written in pieces.
fn deflated_zeros(n: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let piece = left.min(block.len());
        encoder.write_all(&block[..piece]).expect("deflate");
        left -= piece;
    }
    encoder.finish().expect("deflate")
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("deflate");
    encoder.finish().expect("deflate")
}

fn flate_bomb() -> Vec<u8> {
    let twice = deflate(&deflated_zeros(1 << 30));
    pdf(no_extra, |doc, root, font| {
        let stream = Stream::new(dictionary! { "Filter" => flate_twice() }, twice);
        vec![page(doc, root, stream, fonts(font))]
    })
}

fn many_pages(n: usize) -> Vec<u8> {
    pdf(no_extra, |doc, root, font| {
        let content = doc.add_object(Stream::new(dictionary! {}, text("One of very many pages.")));
        (0..n)
            .map(|_| {
                doc.add_object(dictionary! {
                    "Type" => "Page", "Parent" => root, "Contents" => content, "Resources" => fonts(font),
                    "MediaBox" => media_box(),
                })
                .into()
            })
            .collect()
    })
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/// A DOCX holding `document` as `word/document.xml` (stored with deflate).
fn docx(document: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(document.len() > u32::MAX as usize / 2);
    zip.start_file("[Content_Types].xml", options).expect("zip");
    zip.write_all(CONTENT_TYPES.as_bytes()).expect("zip");
    zip.start_file("word/document.xml", options).expect("zip");
    zip.write_all(document).expect("zip");
    zip.finish().expect("zip").into_inner()
}

fn zip_bomb(lie: bool) -> Vec<u8> {
    // Paragraphs of the same text, 1 GiB of XML, written through the encoder in pieces.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    zip.start_file("[Content_Types].xml", options).expect("zip");
    zip.write_all(CONTENT_TYPES.as_bytes()).expect("zip");
    zip.start_file("word/document.xml", options).expect("zip");
    zip.write_all(format!(r#"<w:document xmlns:w="{W}"><w:body>"#).as_bytes()).expect("zip");
    let paragraph = "<w:p><w:r><w:t>bomb</w:t></w:r></w:p>".repeat(1 << 15);
    let mut written = 0usize;
    while written < 1 << 30 {
        zip.write_all(paragraph.as_bytes()).expect("zip");
        written += paragraph.len();
    }
    zip.write_all(b"</w:body></w:document>").expect("zip");
    let mut bytes = zip.finish().expect("zip").into_inner();
    if lie {
        lie_about_sizes(&mut bytes, "word/document.xml", 2048);
    }
    bytes
}

/// Rewrites the uncompressed size the ZIP declares for `name` (local header, central directory
/// and ZIP64 extra fields) to `size`, as a hostile archive would.
fn lie_about_sizes(bytes: &mut [u8], name: &str, size: u32) {
    let name = name.as_bytes();
    let mut i = 0;
    while i + 46 < bytes.len() {
        let sig = &bytes[i..i + 4];
        if sig == b"PK\x03\x04" && bytes[i + 30..].starts_with(name) {
            bytes[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            let extra_len = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
            patch_zip64(&mut bytes[i + 30 + name.len()..i + 30 + name.len() + extra_len], size);
        } else if sig == b"PK\x01\x02" && bytes[i + 46..].starts_with(name) {
            bytes[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            let extra_len = u16::from_le_bytes([bytes[i + 30], bytes[i + 31]]) as usize;
            patch_zip64(&mut bytes[i + 46 + name.len()..i + 46 + name.len() + extra_len], size);
        }
        i += 1;
    }
}

fn patch_zip64(extra: &mut [u8], size: u32) {
    let mut j = 0;
    while j + 4 <= extra.len() {
        let id = u16::from_le_bytes([extra[j], extra[j + 1]]);
        let len = u16::from_le_bytes([extra[j + 2], extra[j + 3]]) as usize;
        if id == 0x0001 && len >= 8 && j + 12 <= extra.len() {
            extra[j + 4..j + 12].copy_from_slice(&u64::from(size).to_le_bytes());
        }
        j += 4 + len;
    }
}

fn entities_docx() -> Vec<u8> {
    let mut dtd = String::from(r#"<!DOCTYPE lolz [<!ENTITY lol0 "lol">"#);
    for n in 1..10 {
        let previous = format!("&lol{};", n - 1).repeat(10);
        dtd.push_str(&format!(r#"<!ENTITY lol{n} "{previous}">"#));
    }
    dtd.push(']');
    dtd.push('>');
    let xml = format!(
        r#"<?xml version="1.0"?>{dtd}<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"#
    );
    docx(xml.as_bytes())
}

/// 200 KB of heading text.
fn huge_heading() -> String {
    "Overview ".repeat(200_000 / 9)
}

fn headings_markdown() -> Vec<u8> {
    let mut md = format!("# {}\n\n", huge_heading());
    for n in 0..40_000 {
        md.push_str(&format!("## S{n}\n\nx\n\n"));
    }
    md.into_bytes()
}

fn headings_html() -> Vec<u8> {
    let mut html = format!("<html><body><h1>{}</h1>", huge_heading());
    for n in 0..40_000 {
        html.push_str(&format!("<h2>S{n}</h2><p>x</p>"));
    }
    html.push_str("</body></html>");
    html.into_bytes()
}

fn headings_docx() -> Vec<u8> {
    let paragraph = |style: &str, text: &str| {
        format!(r#"<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#)
    };
    let mut xml = format!(r#"<w:document xmlns:w="{W}"><w:body>"#);
    xml.push_str(&paragraph("Heading1", &huge_heading()));
    for n in 0..40_000 {
        xml.push_str(&paragraph("Heading2", &format!("S{n}")));
        xml.push_str("<w:p><w:r><w:t>x</w:t></w:r></w:p>");
    }
    xml.push_str("</w:body></w:document>");
    docx(xml.as_bytes())
}

fn nested_html() -> Vec<u8> {
    let depth = (2 << 20) / 11;
    let mut html = String::with_capacity(2 << 20);
    html.push_str("<!DOCTYPE html><html><body>");
    for _ in 0..depth {
        html.push_str("<div>");
    }
    for _ in 0..depth {
        html.push_str("</div>");
    }
    html.push_str("</body></html>");
    html.into_bytes()
}

fn nested_email(depth: usize) -> Vec<u8> {
    let mut mail = String::from(
        "From: Mallory <mallory@example.org>\r\nTo: footnote@example.org\r\nSubject: Nested\r\n\
         Message-ID: <nested@example.org>\r\nMIME-Version: 1.0\r\n",
    );
    for _ in 0..depth {
        mail.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    mail.push_str("Content-Type: text/plain\r\n\r\nThe bottom.\r\n");
    mail.into_bytes()
}
