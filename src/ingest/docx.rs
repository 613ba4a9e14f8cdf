//! Word documents (.docx): the ZIP is opened with guards against ZIP bombs (entry count,
//! declared and actual unpacked sizes), `word/document.xml` is read with quick-xml, and
//! paragraphs styled as headings (`Heading1`…`Heading9`, `Title`, or any style whose name or
//! outline level says so, as listed in `word/styles.xml`) become the heading path.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use footnote_adapter::{IngestError, Locator};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::normalize::{cap, enter_heading, normalize};
use super::output::too_complex;
use super::{Ctx, Parsed, Section};

/// Most entries a DOCX may hold (real ones hold a few dozen).
const MAX_ENTRIES: usize = 5_000;

/// A DOCX file.
pub(super) fn extract(ctx: &Ctx, bytes: &[u8]) -> Result<Parsed, IngestError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| damaged())?;
    if archive.len() > MAX_ENTRIES {
        return Err(IngestError::TooLarge(format!("the Word document holds more than {MAX_ENTRIES} parts")));
    }
    let document = read_entry(ctx, &mut archive, "word/document.xml")?.ok_or_else(damaged)?;
    let styles = match read_entry(ctx, &mut archive, "word/styles.xml")? {
        Some(xml) => heading_styles(&xml),
        None => HashMap::new(),
    };
    let title = read_entry(ctx, &mut archive, "docProps/core.xml")?.and_then(|xml| core_title(&xml));
    let sections = body_sections(&document, &styles)?;
    Ok(Parsed { title, sections, pages: None })
}

fn damaged() -> IngestError {
    IngestError::Unreadable("the Word document is damaged".into())
}

/// Reads one entry as UTF-8, never unpacking more than the unpacked-size budget allows, whatever
/// size the entry declares.
fn read_entry(
    ctx: &Ctx,
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, IngestError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(error) => {
            tracing::debug!(%error, entry = name, "cannot open DOCX entry");
            return Err(damaged());
        }
    };
    let left = ctx.unpacked_left();
    if entry.size() > left {
        return Err(ctx.too_much_unpacked());
    }
    let mut buf = Vec::with_capacity(usize::try_from(entry.size().min(16 << 20)).unwrap_or(0));
    entry.take(left.saturating_add(1)).read_to_end(&mut buf).map_err(|error| {
        tracing::debug!(%error, entry = name, "cannot unpack DOCX entry");
        // The worker's memory limit refused the buffer: the file is too big for it, not broken.
        if error.kind() == std::io::ErrorKind::OutOfMemory { too_complex() } else { damaged() }
    })?;
    ctx.unpack(buf.len() as u64)?;
    String::from_utf8(buf).map(Some).map_err(|_| damaged())
}

/// Heading level per style id, from `word/styles.xml`: `Title` is 0, `heading N` is N, and a
/// style with `w:outlineLvl` N is N + 1.
fn heading_styles(xml: &str) -> HashMap<String, usize> {
    let mut levels = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == b"style" => current = attr(&e, b"styleId"),
            Ok(Event::End(e)) if e.local_name().as_ref() == b"style" => current = None,
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let Some(id) = current.as_ref() else { continue };
                match e.local_name().as_ref() {
                    b"name" => {
                        if let Some(level) = attr(&e, b"val").and_then(|n| level_from_name(&n)) {
                            levels.insert(id.clone(), level);
                        }
                    }
                    b"outlineLvl" => {
                        if let Some(level) = outline_level(&e) {
                            levels.entry(id.clone()).or_insert(level);
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    levels
}

/// `Title` → 0, `heading 2` / `Heading2` → 2.
fn level_from_name(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if lower == "title" {
        return Some(0);
    }
    let digits = lower.strip_prefix("heading")?.trim();
    digits.parse::<usize>().ok().filter(|l| (1..=9).contains(l))
}

/// The paragraphs of `word/document.xml`, cut into sections at heading paragraphs.
fn body_sections(xml: &str, styles: &HashMap<String, usize>) -> Result<Vec<Section>, IngestError> {
    let mut reader = Reader::from_str(xml);
    let mut sections = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut paragraph = String::new();
    let mut level: Option<usize> = None;
    let mut in_text = false;
    let mut skip_depth = 0usize; // inside deleted text or field instructions
    loop {
        let event = reader.read_event().map_err(|error| {
            tracing::debug!(%error, "bad XML in word/document.xml");
            damaged()
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let started = matches!(event, Event::Start(_));
                match e.local_name().as_ref() {
                    b"p" if started => {
                        paragraph.clear();
                        level = None;
                    }
                    b"t" if started => in_text = true,
                    b"delText" | b"instrText" if started => skip_depth += 1,
                    b"pStyle" => level = level.or_else(|| attr(e, b"val").and_then(|id| style_level(&id, styles))),
                    b"outlineLvl" => level = level.or_else(|| outline_level(e)),
                    b"tab" if skip_depth == 0 => paragraph.push('\t'),
                    b"br" | b"cr" if skip_depth == 0 => paragraph.push('\n'),
                    _ => {}
                }
            }
            Event::Text(e) if in_text && skip_depth == 0 => {
                paragraph.push_str(&e.decode().map_err(|_| damaged())?);
            }
            Event::GeneralRef(e) if in_text && skip_depth == 0 => {
                if let Ok(Some(c)) = e.resolve_char_ref() {
                    paragraph.push(c);
                } else if let Ok(name) = e.decode()
                    && let Some(s) = quick_xml::escape::resolve_predefined_entity(&name)
                {
                    paragraph.push_str(s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"delText" | b"instrText" => skip_depth = skip_depth.saturating_sub(1),
                b"p" => {
                    match level {
                        Some(level) if !cap(&paragraph).is_empty() => {
                            flush(&mut sections, &mut body, &path);
                            enter_heading(&mut path, level, cap(&paragraph));
                        }
                        _ => {
                            body.push_str(&paragraph);
                            body.push('\n');
                        }
                    }
                    paragraph.clear();
                    level = None;
                }
                b"tc" => body.push('\n'),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut sections, &mut body, &path);
    Ok(sections)
}

/// `w:outlineLvl w:val="0"` is a level-1 heading; 9 means body text.
fn outline_level(e: &BytesStart<'_>) -> Option<usize> {
    attr(e, b"val")?.parse::<usize>().ok().filter(|l| *l < 9).map(|l| l + 1)
}

fn style_level(id: &str, styles: &HashMap<String, usize>) -> Option<usize> {
    styles.get(id).copied().or_else(|| level_from_name(id))
}

fn flush(sections: &mut Vec<Section>, body: &mut String, path: &[(usize, String)]) {
    let text = normalize(body, false);
    body.clear();
    if !text.is_empty() {
        let heading_path = path.iter().map(|(_, h)| h.clone()).collect();
        sections.push(Section { text, locator: Locator { heading_path, ..Locator::default() } });
    }
}

/// `dc:title` from `docProps/core.xml`.
fn core_title(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut title = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == b"title" => inside = true,
            Event::End(e) if e.local_name().as_ref() == b"title" => break,
            Event::Text(e) if inside => title.push_str(&e.decode().ok()?),
            Event::GeneralRef(e) if inside => {
                if let Ok(Some(c)) = e.resolve_char_ref() {
                    title.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&e.decode().ok()?) {
                    title.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let title = cap(&title);
    (!title.is_empty()).then_some(title)
}

/// The value of the attribute with this local name (any namespace prefix).
fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}
