//! HTML pages: rendered to text with html2text (scripts, styles and `<head>` dropped), cut at
//! the headings it renders as `#`, `##`, … into sections with heading paths. The title comes
//! from `<title>`, else the first `<h1>`.

use footnote_adapter::{IngestError, Locator};

use super::normalize::{cap, decode, enter_heading, normalize};
use super::{Parsed, Section};

/// Width handed to html2text: wide enough that it never wraps a paragraph.
const RENDER_WIDTH: usize = 10_000;

/// An HTML file.
pub(super) fn extract(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let source = decode(bytes)?;
    if source.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    from_html(&source)
}

/// HTML already decoded (also used for HTML email bodies).
pub(super) fn from_html(source: &str) -> Result<Parsed, IngestError> {
    let rendered = render(source)?;
    let mut parsed = sections(&rendered);
    parsed.title = title_tag(source).or_else(|| parsed.title.take());
    Ok(parsed)
}

/// HTML as plain text, headings kept as lines of their own (for email bodies that are only
/// HTML).
pub(super) fn to_text(source: &str) -> Result<String, IngestError> {
    let rendered = render(source)?;
    let lines: Vec<String> = rendered
        .lines()
        .map(|line| heading_line(line).map_or_else(|| line.to_owned(), |(_, heading)| heading))
        .collect();
    Ok(lines.join("\n"))
}

fn render(source: &str) -> Result<String, IngestError> {
    html2text::config::plain_no_decorate()
        .allow_width_overflow()
        .string_from_read(source.as_bytes(), RENDER_WIDTH)
        .map_err(|error| {
            tracing::debug!(%error, "html2text failed");
            IngestError::Unreadable("the HTML could not be parsed".into())
        })
}

/// Cuts rendered text at heading lines (`# A`, `## B`); the first level-1 heading is the
/// fallback title.
fn sections(rendered: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    for line in rendered.lines() {
        let Some((level, heading)) = heading_line(line) else {
            body.push_str(line);
            body.push('\n');
            continue;
        };
        push(&mut parsed.sections, &body, &path);
        body.clear();
        if level == 1 && parsed.title.is_none() {
            parsed.title = Some(heading.clone());
        }
        enter_heading(&mut path, level, heading);
    }
    push(&mut parsed.sections, &body, &path);
    parsed
}

fn push(sections: &mut Vec<Section>, body: &str, path: &[(usize, String)]) {
    let text = normalize(body, false);
    if !text.is_empty() {
        let heading_path = path.iter().map(|(_, h)| h.clone()).collect();
        sections.push(Section { text, locator: Locator { heading_path, ..Locator::default() } });
    }
}

/// `## Title` as rendered by html2text for `<h2>Title</h2>`.
fn heading_line(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let text = cap(line[level..].strip_prefix(' ')?);
    (!text.is_empty()).then_some((level, text))
}

/// The text of the first `<title>` element, entities decoded.
fn title_tag(source: &str) -> Option<String> {
    let lower = source.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let content_start = open + lower[open..].find('>')? + 1;
    let content_end = content_start + lower[content_start..].find("</title")?;
    let raw = source.get(content_start..content_end)?;
    // Let html2text decode entities (`&amp;`, `&#8217;`) in the title text.
    let decoded = html2text::config::plain_no_decorate()
        .allow_width_overflow()
        .string_from_read(format!("<p>{raw}</p>").as_bytes(), RENDER_WIDTH)
        .ok()?;
    let title = cap(&decoded);
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_scripts_and_keeps_heading_paths() {
        let html = r#"<!DOCTYPE html><html><head><title>Fish &amp; Chips</title>
            <style>body { color: red }</style><script>var secret = "no";</script></head>
            <body><p>Intro <b>bold</b> and <a href="https://x.test">a link</a>.</p>
            <h1>Menu</h1><p>Fish.</p><h2>Sides</h2><p>Chips.</p><script>alert(1)</script>
            <h2>Drinks</h2><ul><li>Tea</li><li>Beer</li></ul><h1>Hours</h1><p>Always.</p></body></html>"#;
        let parsed = from_html(html).ok().unwrap_or_default();
        assert_eq!(parsed.title.as_deref(), Some("Fish & Chips"));
        let all: String = parsed.sections.iter().map(|s| s.text.as_str()).collect();
        assert!(!all.contains("secret") && !all.contains("alert") && !all.contains("color"), "{all}");
        let got: Vec<(Vec<String>, String)> =
            parsed.sections.iter().map(|s| (s.locator.heading_path.clone(), s.text.clone())).collect();
        assert_eq!(got[0].0, Vec::<String>::new());
        // Links keep their text (html2text brackets it: "[a link]").
        assert!(got[0].1.contains("Intro bold and") && got[0].1.contains("a link"), "{:?}", got[0]);
        assert_eq!(got[1], (vec!["Menu".to_string()], "Fish.".to_string()));
        assert_eq!(got[2], (vec!["Menu".to_string(), "Sides".into()], "Chips.".into()));
        assert_eq!(got[3].0, vec!["Menu".to_string(), "Drinks".into()]);
        assert!(got[3].1.contains("Tea") && got[3].1.contains("Beer"));
        assert_eq!(got[4], (vec!["Hours".to_string()], "Always.".into()));
    }

    #[test]
    fn title_falls_back_to_first_h1() {
        let parsed = from_html("<h2>Small</h2><p>x</p><h1>Big</h1><p>y</p>").ok().unwrap_or_default();
        assert_eq!(parsed.title.as_deref(), Some("Big"));
    }
}
