//! What a chunk is about beyond its own words: the document's title and the headings above the
//! chunk. A chunk cut from the middle of a manual ("Hold the button for ten seconds.") says
//! nothing of the router it is about; its title and heading path do.
//!
//! Both retrievers see this context: the embedding input of a chunk is [`embedding_input`] (the
//! stored chunk text stays as it was, for citations), and the BM25 index has the title and
//! [`headings`] as fields of their own, weighted into the chunk's score.

use footnote_adapter::Locator;

/// Longest title or heading kept in the context, in characters: the context must not crowd out
/// the chunk in an embedding model's window.
const LONGEST_PART: usize = 160;
/// Most headings kept (the nearest ones: the innermost headings say most about the chunk).
const MOST_HEADINGS: usize = 4;

/// Bump when [`embedding_input`] changes: stored vectors made from another input are noted as
/// such (see [`crate::rag`]) and re-made by `footnote reindex --embeddings`.
pub const EMBEDDING_INPUT_VERSION: &str = "title-headings-v1";

fn clip(text: &str) -> &str {
    match text.char_indices().nth(LONGEST_PART) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The headings above a chunk, outermost first: its heading path without a repeat of the
/// document title, then for emails the subject of the forwarded message it came from (when that
/// is not the title) and the attachment's name.
pub fn headings<'a>(title: &str, locator: &'a Locator) -> Vec<&'a str> {
    let same = |h: &str| h.trim().eq_ignore_ascii_case(title.trim());
    let mut out: Vec<&str> =
        locator.heading_path.iter().map(|h| h.trim()).filter(|h| !h.is_empty() && !same(h)).collect();
    if let Some(subject) = locator.subject.as_deref().map(str::trim).filter(|s| !s.is_empty() && !same(s)) {
        out.push(subject);
    }
    if let Some(attachment) = locator.attachment.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        out.push(attachment);
    }
    let skip = out.len().saturating_sub(MOST_HEADINGS);
    out.into_iter().skip(skip).map(clip).collect()
}

/// The text embedded for a chunk: the title, the headings joined by ` > `, a blank line, then
/// the chunk's text.
pub fn embedding_input(title: &str, locator: &Locator, text: &str) -> String {
    let title = clip(title.trim());
    let headings = headings(title, locator).join(" > ");
    match (title.is_empty(), headings.is_empty()) {
        (true, true) => text.to_owned(),
        (false, true) => format!("{title}\n\n{text}"),
        (true, false) => format!("{headings}\n\n{text}"),
        (false, false) => format!("{title}\n{headings}\n\n{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &[&str]) -> Locator {
        Locator { heading_path: path.iter().map(|s| (*s).to_owned()).collect(), ..Locator::default() }
    }

    #[test]
    fn the_title_is_not_repeated_by_the_first_heading() {
        let input = embedding_input("Router Guide", &at(&["Router guide", "Reset", "Factory reset"]), "Hold it.");
        assert_eq!(input, "Router Guide\nReset > Factory reset\n\nHold it.");
        assert_eq!(embedding_input("Abstract title", &at(&["Abstract title"]), "Text."), "Abstract title\n\nText.");
        assert_eq!(embedding_input("", &Locator::default(), "Only text."), "Only text.");
    }

    #[test]
    fn emails_add_the_forwarded_subject_and_the_attachment() {
        let locator = Locator {
            subject: Some("Icon font for the dashboard".into()),
            attachment: Some("icon-font.eml".into()),
            ..Locator::default()
        };
        assert_eq!(headings("Fwd: Icon font", &locator), ["Icon font for the dashboard", "icon-font.eml"]);
        // The subject of the mail itself is its title already.
        let own = Locator { subject: Some("Fwd: Icon font".into()), ..Locator::default() };
        assert!(headings("Fwd: Icon font", &own).is_empty());
    }

    #[test]
    fn long_contexts_are_clipped() {
        let deep: Vec<String> = (1..=9).map(|n| format!("Level {n}")).collect();
        let deep: Vec<&str> = deep.iter().map(String::as_str).collect();
        assert_eq!(headings("T", &at(&deep)), ["Level 6", "Level 7", "Level 8", "Level 9"]);
        let long = "é".repeat(500);
        let input = embedding_input(&long, &Locator::default(), "x");
        assert_eq!(input.chars().count(), LONGEST_PART + 3);
    }
}
