//! Plain text and Markdown. Markdown is cut at its headings: every section carries the heading
//! path from the top of the document down (`["Install", "Linux"]`) and keeps its Markdown so
//! the chunker can split it along Markdown structure.

use footnote_adapter::{IngestError, Locator};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::normalize::{cap, decode, enter_heading, normalize};
use super::{Parsed, Section};

/// A plain UTF-8 (or BOM-marked UTF-16) text file: one section.
pub(super) fn plain(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let text = decode(bytes)?;
    let text = normalize(&text, false);
    if text.is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(Parsed { title: None, sections: vec![Section { text, locator: Locator::default() }], pages: None })
}

/// A Markdown file: one section per run of text between headings.
pub(super) fn markdown(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let source = decode(bytes)?;
    if source.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(markdown_sections(&source))
}

/// Heading-aware sections of Markdown source; the title comes from front matter or the first
/// level-1 heading.
fn markdown_sections(source: &str) -> Parsed {
    let parser = Parser::new_ext(source, Options::ENABLE_YAML_STYLE_METADATA_BLOCKS | Options::ENABLE_TABLES);
    let mut sections = Vec::new();
    let mut path: Vec<(HeadingLevel, String)> = Vec::new();
    let mut body_start = 0;
    let mut heading: Option<(HeadingLevel, usize, String)> = None;
    let mut in_metadata = false;
    let mut front_title = None;
    let mut first_h1 = None;

    for (event, range) in parser.into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                push_section(&mut sections, source.get(body_start..range.start).unwrap_or(""), &path);
                heading = Some((level, range.start, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, _, text)) = heading.take() {
                    let text = cap(&text);
                    if level == HeadingLevel::H1 && first_h1.is_none() && !text.is_empty() {
                        first_h1 = Some(text.clone());
                    }
                    if text.is_empty() {
                        while path.last().is_some_and(|(l, _)| *l >= level) {
                            path.pop();
                        }
                    } else {
                        enter_heading(&mut path, level, text);
                    }
                }
                body_start = range.end;
            }
            Event::Start(Tag::MetadataBlock(_)) => {
                push_section(&mut sections, source.get(body_start..range.start).unwrap_or(""), &path);
                in_metadata = true;
            }
            Event::End(TagEnd::MetadataBlock(_)) => {
                in_metadata = false;
                body_start = range.end;
            }
            Event::Text(text) if in_metadata => {
                front_title = front_title.or_else(|| front_matter_title(&text));
            }
            Event::Text(text) | Event::Code(text) => {
                // Only the start of a heading is kept (see `cap`): a huge one is not copied whole.
                if let Some((_, _, heading_text)) = heading.as_mut()
                    && heading_text.len() < 4 * super::normalize::MAX_LABEL_CHARS
                {
                    heading_text.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, heading_text)) = heading.as_mut() {
                    heading_text.push(' ');
                }
            }
            _ => {}
        }
    }
    push_section(&mut sections, source.get(body_start..).unwrap_or(""), &path);
    Parsed { title: front_title.or(first_h1), sections, pages: None }
}

fn push_section(sections: &mut Vec<Section>, raw: &str, path: &[(HeadingLevel, String)]) {
    let text = normalize(raw, true);
    if text.is_empty() {
        return;
    }
    let locator = Locator { heading_path: path.iter().map(|(_, t)| t.clone()).collect(), ..Locator::default() };
    sections.push(Section { text, locator });
}

/// `title: Something` from YAML front matter, quotes removed.
fn front_matter_title(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let value = line.strip_prefix("title:")?.trim();
        let value = cap(value.trim_matches(|c| c == '"' || c == '\''));
        (!value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(parsed: &Parsed) -> Vec<(Vec<String>, String)> {
        parsed.sections.iter().map(|s| (s.locator.heading_path.clone(), s.text.clone())).collect()
    }

    fn p(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn heading_paths_from_the_top_down() {
        let md = "Intro text.\n\n# Install\n\nGet it.\n\n## Linux\n\nUse apt.\n\n### Debian\n\nReally apt.\n\n## macOS\nUse brew.\n\n# Usage `cli`\n\nRun it.\n";
        let parsed = markdown_sections(md);
        assert_eq!(parsed.title.as_deref(), Some("Install"));
        assert_eq!(
            paths(&parsed),
            vec![
                (p(&[]), "Intro text.".into()),
                (p(&["Install"]), "Get it.".into()),
                (p(&["Install", "Linux"]), "Use apt.".into()),
                (p(&["Install", "Linux", "Debian"]), "Really apt.".into()),
                (p(&["Install", "macOS"]), "Use brew.".into()),
                (p(&["Usage cli"]), "Run it.".into()),
            ]
        );
    }

    #[test]
    fn setext_headings_code_fences_and_front_matter() {
        let md = "---\ntitle: \"The Guide\"\n---\n\nTop\n===\n\n```\n# not a heading\n```\n\nSub\n---\n\ntext\n";
        let parsed = markdown_sections(md);
        assert_eq!(parsed.title.as_deref(), Some("The Guide"));
        assert_eq!(
            paths(&parsed),
            vec![(p(&["Top"]), "```\n# not a heading\n```".into()), (p(&["Top", "Sub"]), "text".into())]
        );
    }

    #[test]
    fn plain_text_is_one_section() {
        let parsed = plain(b"one\r\n\r\n\r\ntwo  words").ok().unwrap_or_default();
        assert_eq!(paths(&parsed), vec![(p(&[]), "one\n\ntwo words".into())]);
        assert_eq!(plain(b" \n\t ").err(), Some(IngestError::Empty));
    }
}
