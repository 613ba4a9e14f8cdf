//! An answer as sentences with citation markers in place, and back to text.
//!
//! Markers are read the way [`crate::rag::citations`] reads them (`[1]`, `[1, 2]`, `[Source 3]`,
//! …); numbers that name no source are dropped. Each marker group is kept where the model wrote
//! it, as a placeholder character in the sentence; a group written just after the sentence's
//! full stop (`Cats purr. [1]`) moves before it (`Cats purr [1].`), so that every marker belongs
//! to the sentence it follows.

use footnote_adapter::{ATTRIBUTED_MARK, NOT_FOUND_TAG};

use crate::rag::citations::{parse_marker, tidy};

/// Stands for marker group `i` (in [`Parsed::groups`]) inside sentence text.
const PLACEHOLDER: char = '\u{E000}';
/// Longest bracket content still read as a marker.
const MAX_MARKER: usize = 24;

/// Who put a marker there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Model,
    Footnote,
}

/// One source a marker points at: its 0-based index among the answer's sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub source: usize,
    pub by: By,
}

/// One sentence: its text with placeholders where marker groups stand, its closing punctuation
/// and the white space after it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sentence {
    pub body: String,
    pub end: String,
    pub space: String,
    /// Marks Footnote adds at the end of the sentence.
    pub added: Vec<Mark>,
    /// Tag the sentence as not found in the sources.
    pub not_found: bool,
}

/// An answer split into sentences, with its marker groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// Leading white space before the first sentence.
    pub lead: String,
    pub sentences: Vec<Sentence>,
    /// Marker groups in order of appearance; a sentence's placeholders index into this.
    pub groups: Vec<Vec<Mark>>,
}

impl Sentence {
    /// The sentence's words without markers.
    pub fn claim(&self) -> String {
        let mut text = String::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(PLACEHOLDER) {
            text.push_str(&rest[..i]);
            let len = placeholder_len(&rest[i..]).unwrap_or(PLACEHOLDER.len_utf8());
            rest = &rest[i + len..];
        }
        text.push_str(rest);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Indexes of the marker groups in this sentence.
    pub fn groups(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(offset) = self.body[i..].find(PLACEHOLDER) {
            let at = i + offset;
            match placeholder_len(&self.body[at..]) {
                Some(len) => {
                    let digits = &self.body[at + PLACEHOLDER.len_utf8()..at + len - PLACEHOLDER.len_utf8()];
                    out.extend(digits.parse::<usize>().ok());
                    i = at + len;
                }
                None => i = at + PLACEHOLDER.len_utf8(),
            }
        }
        out
    }
}

/// Splits `raw` (the model's text) into sentences; marker numbers outside `1..=sources` are
/// dropped.
pub fn parse(raw: &str, sources: usize) -> Parsed {
    let mut flat = String::new();
    let mut groups: Vec<Vec<Mark>> = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find('[') {
        flat.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.char_indices().take(MAX_MARKER + 1).find(|(_, c)| *c == ']').map(|(i, _)| i);
        let marker = close.and_then(|c| parse_marker(&after[..c]).map(|n| (c, n)));
        match marker {
            Some((close, numbers)) => {
                let mut marks: Vec<Mark> = Vec::new();
                for n in numbers.into_iter().filter(|n| (1..=sources).contains(n)) {
                    if !marks.iter().any(|m| m.source == n - 1) {
                        marks.push(Mark { source: n - 1, by: By::Model });
                    }
                }
                // Placeholder, then the group's index in digits, so sentences can name it.
                flat.push(PLACEHOLDER);
                flat.push_str(&groups.len().to_string());
                flat.push(PLACEHOLDER);
                groups.push(marks);
                rest = &after[close + 1..];
            }
            None => {
                flat.push('[');
                rest = after;
            }
        }
    }
    flat.push_str(rest);
    let lead_len = flat.len() - flat.trim_start().len();
    let lead = flat[..lead_len].to_owned();
    Parsed { lead, sentences: split(&flat[lead_len..]), groups }
}

/// `PLACEHOLDER digits PLACEHOLDER` at the start of `s`: its length in bytes.
fn placeholder_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix(PLACEHOLDER)?;
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    rest[digits..].strip_prefix(PLACEHOLDER)?;
    Some(PLACEHOLDER.len_utf8() * 2 + digits)
}

/// Splits flattened text into sentences at `.`, `!`, `?` (followed by space, a marker or the
/// end, then not by a lower-case letter) and at line breaks.
fn split(flat: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let bytes_len = flat.len();
    while i < bytes_len {
        let c = flat[i..].chars().next().unwrap_or(' ');
        if let Some(len) = placeholder_len(&flat[i..]) {
            i += len;
            continue;
        }
        if c == '\n' {
            let body = flat[start..i].to_owned();
            let ws_end = i + flat[i..].len() - flat[i..].trim_start().len();
            out.push(Sentence { body, space: flat[i..ws_end].to_owned(), ..Sentence::default() });
            i = ws_end;
            start = i;
            continue;
        }
        if matches!(c, '.' | '!' | '?') {
            let term_end = i + flat[i..].chars().take_while(|c| matches!(c, '.' | '!' | '?')).count();
            // Markers after the full stop, possibly after spaces, belong to this sentence.
            let mut j = term_end;
            let mut markers = String::new();
            loop {
                let spaces = flat[j..].len() - flat[j..].trim_start_matches([' ', '\t']).len();
                match placeholder_len(&flat[j + spaces..]) {
                    Some(len) => {
                        markers.push_str(&flat[j + spaces..j + spaces + len]);
                        j += spaces + len;
                    }
                    None => break,
                }
            }
            let next = flat[j..].chars().next();
            let boundary = match next {
                None => true,
                Some(n) if n.is_whitespace() => {
                    let following = flat[j..].trim_start().chars().next();
                    following.is_none_or(|f| !f.is_lowercase())
                }
                Some(_) => !markers.is_empty(),
            };
            if boundary {
                let mut body = flat[start..i].to_owned();
                if !markers.is_empty() {
                    body = format!("{} {markers}", body.trim_end());
                }
                let ws_end = j + flat[j..].len() - flat[j..].trim_start().len();
                out.push(Sentence {
                    body,
                    end: flat[i..term_end].to_owned(),
                    space: flat[j..ws_end].to_owned(),
                    ..Sentence::default()
                });
                i = ws_end;
                start = i;
                continue;
            }
            i = term_end;
            continue;
        }
        i += c.len_utf8();
    }
    if start < bytes_len {
        out.push(Sentence { body: flat[start..].to_owned(), ..Sentence::default() });
    }
    out.retain(|s| !s.body.trim().is_empty() || !s.end.is_empty());
    out
}

/// The checked answer as text, with markers renumbered from 1 in order of first use. Returns
/// the text and the 0-based source indexes in that order.
pub fn render(parsed: &Parsed) -> (String, Vec<usize>) {
    let mut order: Vec<usize> = Vec::new();
    let mut number = |source: usize| match order.iter().position(|&s| s == source) {
        Some(i) => i + 1,
        None => {
            order.push(source);
            order.len()
        }
    };
    let mut group_text = |marks: &[Mark]| {
        let mut text = String::new();
        for mark in marks {
            let n = number(mark.source);
            let piece = match mark.by {
                By::Model => format!("[{n}]"),
                By::Footnote => format!("[{n}{ATTRIBUTED_MARK}]"),
            };
            if !text.contains(&piece) {
                text.push_str(&piece);
            }
        }
        text
    };
    let mut out = parsed.lead.clone();
    for sentence in &parsed.sentences {
        let mut body = String::new();
        let mut rest = sentence.body.as_str();
        while let Some(i) = rest.find(PLACEHOLDER) {
            body.push_str(&rest[..i]);
            let len = placeholder_len(&rest[i..]).unwrap_or(PLACEHOLDER.len_utf8());
            let digits = rest.get(i + PLACEHOLDER.len_utf8()..i + len - PLACEHOLDER.len_utf8()).unwrap_or_default();
            let index: usize = digits.parse().unwrap_or(usize::MAX);
            if let Some(marks) = parsed.groups.get(index) {
                body.push_str(&group_text(marks));
            }
            rest = &rest[i + len..];
        }
        body.push_str(rest);
        let mut body = body.trim_end().to_owned();
        let added = group_text(&sentence.added);
        if !added.is_empty() {
            body.push(' ');
            body.push_str(&added);
        }
        if sentence.not_found {
            body.push(' ');
            body.push_str(NOT_FOUND_TAG);
        }
        out.push_str(&body);
        out.push_str(&sentence.end);
        out.push_str(&sentence.space);
    }
    (tidy(&out).trim().to_owned(), order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(p: &Parsed) -> Vec<String> {
        p.sentences.iter().map(Sentence::claim).collect()
    }

    #[test]
    fn sentences_keep_their_markers() {
        let p = parse("Cats purr [2]. Dogs bark.[1] Fish swim [9].\nBirds [1, 2] sing", 2);
        assert_eq!(claims(&p), vec!["Cats purr", "Dogs bark", "Fish swim", "Birds sing"]);
        let groups: Vec<Vec<usize>> = p
            .sentences
            .iter()
            .map(|s| s.groups().iter().flat_map(|&g| p.groups[g].iter().map(|m| m.source + 1)).collect())
            .collect();
        assert_eq!(groups, vec![vec![2], vec![1], vec![], vec![1, 2]]);
        assert_eq!(render(&p).0, "Cats purr [1]. Dogs bark [2]. Fish swim.\nBirds [2][1] sing");
    }

    #[test]
    fn the_prompts_placeholder_cites_nothing_and_is_not_shown() {
        let p = parse("The password is Tulip-42 [n]. It rotates [N] monthly [1].", 1);
        assert_eq!(claims(&p), vec!["The password is Tulip-42", "It rotates monthly"]);
        assert_eq!(render(&p).0, "The password is Tulip-42. It rotates monthly [1].");
    }

    #[test]
    fn decimals_abbreviations_and_other_brackets_do_not_split() {
        let p = parse("It is 2.5 m long, e.g. in arr[i] form [1]. Next one.", 1);
        assert_eq!(claims(&p), vec!["It is 2.5 m long, e.g. in arr[i] form", "Next one"]);
    }

    #[test]
    fn additions_and_tags_render_before_the_full_stop() {
        let mut p = parse("Cats purr. The moon is cheese!", 3);
        p.sentences[0].added.push(Mark { source: 2, by: By::Footnote });
        p.sentences[1].not_found = true;
        let (text, order) = render(&p);
        assert_eq!(text, format!("Cats purr [1{ATTRIBUTED_MARK}]. The moon is cheese {NOT_FOUND_TAG}!"));
        assert_eq!(order, vec![2]);
    }
}
