//! Text decoding (UTF-8, or UTF-8/UTF-16 with a byte-order mark), whitespace clean-up, and the
//! caps on titles, headings, subjects and attachment names shared by all extractors.

use footnote_adapter::IngestError;

/// Decodes text bytes: UTF-8, or UTF-8 / UTF-16 (LE or BE) when a byte-order mark says so.
/// Anything else is refused rather than guessed.
pub(super) fn decode(bytes: &[u8]) -> Result<String, IngestError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> Result<String, IngestError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| IngestError::Unreadable("it is not valid UTF-8 text".into()))
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, IngestError> {
    let bad = || IngestError::Unreadable("it is not valid UTF-16 text".into());
    if !bytes.len().is_multiple_of(2) {
        return Err(bad());
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| bad())
}

/// True when the first bytes look like a binary file rather than text: many control bytes.
/// Text with a byte-order mark is always text.
pub(super) fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xEF\xBB\xBF") || bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return false;
    }
    let sample = &bytes[..bytes.len().min(8192)];
    let controls = sample.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0C | 0x1B)).count();
    controls * 20 > sample.len()
}

/// Cleans extracted text: line endings become `\n`, NUL and other control characters go,
/// runs of spaces and tabs inside a line become one space, trailing spaces go, runs of blank
/// lines become one, and leading / trailing blank lines go.
///
/// With `keep_indent`, leading indentation is kept (Markdown lists and code need it).
pub(super) fn normalize(text: &str, keep_indent: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = true; // at the start, blank lines are dropped
    let text = text.replace("\r\n", "\n");
    for line in text.split(['\n', '\r', '\x0C', '\u{2028}', '\u{2029}', '\u{85}']) {
        let cleaned = clean_line(line, keep_indent);
        if cleaned.is_empty() {
            if !blank_run {
                out.push('\n');
                blank_run = true;
            }
            continue;
        }
        out.push_str(&cleaned);
        out.push('\n');
        blank_run = false;
    }
    out.truncate(out.trim_end().len());
    out
}

fn clean_line(line: &str, keep_indent: bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    if keep_indent {
        while let Some(&c) = chars.peek() {
            match c {
                ' ' => out.push(' '),
                '\t' => out.push_str("    "),
                _ => break,
            }
            chars.next();
        }
    }
    let indent = out.len();
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || is_invisible(c) {
            continue;
        } else {
            if pending_space && out.len() > indent {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    if out.len() == indent {
        out.clear();
    }
    out
}

/// Characters that carry nothing for search: byte-order mark, soft hyphen, zero-width space.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{FEFF}' | '\u{00AD}' | '\u{200B}')
}

/// Longest title, heading, subject or attachment name kept, in characters. Headings are copied
/// into the locator of every chunk below them, so an unbounded one would be copied thousands of
/// times.
pub(super) const MAX_LABEL_CHARS: usize = 200;
/// Deepest heading path kept: a heading below it replaces the deepest one kept.
pub(super) const MAX_HEADING_DEPTH: usize = 6;

/// A title, heading, subject or name on one clean line, cut to at most [`MAX_LABEL_CHARS`]
/// characters (the last one then `…`).
pub(super) fn cap(text: &str) -> String {
    let mut line = one_line(text);
    if line.chars().nth(MAX_LABEL_CHARS).is_some()
        && let Some((cut, _)) = line.char_indices().nth(MAX_LABEL_CHARS - 1)
    {
        line.truncate(cut);
        line.truncate(line.trim_end().len());
        line.push('…');
    }
    line
}

/// Enters a heading of `level` in a heading path: headings at its level or below end, and the
/// path never grows past [`MAX_HEADING_DEPTH`].
pub(super) fn enter_heading<L: PartialOrd>(path: &mut Vec<(L, String)>, level: L, heading: String) {
    while path.last().is_some_and(|(l, _)| *l >= level) {
        path.pop();
    }
    if path.len() >= MAX_HEADING_DEPTH {
        path.pop();
    }
    path.push((level, heading));
}

/// Squeezes a title or name onto one clean line.
pub(super) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|&c| !is_invisible(c)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_whitespace_controls_and_line_endings() {
        let raw = "\n\n  Hello \t  world\0!\r\n\r\n\r\n\r\nSecond\x07 line  \rthird\u{FEFF}\n\n";
        assert_eq!(normalize(raw, false), "Hello world!\n\nSecond line\nthird");
    }

    #[test]
    fn keeps_indentation_when_asked() {
        assert_eq!(normalize("- a\n    - b   c\n\tcode", true), "- a\n    - b c\n    code");
    }

    #[test]
    fn decodes_boms_and_refuses_bad_utf8() {
        assert_eq!(decode(b"\xEF\xBB\xBFhi").ok(), Some("hi".to_owned()));
        assert_eq!(decode(b"\xFF\xFEh\0i\0").ok(), Some("hi".to_owned()));
        assert_eq!(decode(b"\xFE\xFF\0h\0i").ok(), Some("hi".to_owned()));
        assert_eq!(decode(b"caf\xE9"), Err(IngestError::Unreadable("it is not valid UTF-8 text".into())));
        assert!(matches!(decode(b"\xFF\xFEh"), Err(IngestError::Unreadable(m)) if m.contains("UTF-16")));
    }

    #[test]
    fn labels_and_heading_paths_are_capped() {
        let long = "word ".repeat(10_000);
        let capped = cap(&long);
        assert!(capped.chars().count() <= MAX_LABEL_CHARS);
        assert!(capped.ends_with("word…") || capped.ends_with("wor…"), "{capped}");
        let exact = "x".repeat(MAX_LABEL_CHARS);
        assert_eq!(cap(&exact), exact);
        assert_eq!(cap(&format!("{exact}y")).chars().count(), MAX_LABEL_CHARS);
        assert_eq!(cap("  short\n title "), "short title");
        let mut path = Vec::new();
        for level in 1..=9 {
            enter_heading(&mut path, level, format!("H{level}"));
        }
        let names: Vec<&str> = path.iter().map(|(_, h)| h.as_str()).collect();
        assert_eq!(names, ["H1", "H2", "H3", "H4", "H5", "H9"]);
        enter_heading(&mut path, 2, "B".into());
        assert_eq!(path.len(), 2);
    }

    #[test]
    fn tells_binary_from_text() {
        assert!(looks_binary(&[0u8, 1, 2, 3, 4, 5, 0, 0, 0, 9]));
        assert!(!looks_binary("plain text\nwith lines\tand tabs".as_bytes()));
        assert!(!looks_binary(b"\xFF\xFEh\0i\0"));
    }
}
