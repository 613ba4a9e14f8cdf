//! Shared rendering of answers: numbered sources as text, and splitting long text at a platform's
//! message limit without cutting a `[n]` marker, a word or a line in half where avoidable; and
//! the small texts every adapter shows: sizes, shortened titles, times.

use crate::{ATTRIBUTED_MARK, Answer, Citation, CitedBy, Support};

/// Says that the answer is incomplete.
pub const CUT_SHORT_NOTE: &str = "The answer was cut short: the model stopped before it finished.";
/// Explains the `[n†]` markers.
pub const ATTRIBUTED_NOTE: &str =
    "[n†]: a source Footnote matched to the sentence; the model cited no source or a wrong one there.";

/// Lines to show after the answer text: that it was cut short, and what `[n†]` means when the
/// text has such markers.
pub fn answer_notes(answer: &Answer) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if answer.cut_short {
        notes.push(CUT_SHORT_NOTE);
    }
    if answer.text.contains(&format!("{ATTRIBUTED_MARK}]")) {
        notes.push(ATTRIBUTED_NOTE);
    }
    notes
}

/// A short remark on how a source backs the answer, for its line in the sources: empty when the
/// model cited it and the check found it supported (or could not check).
pub fn support_remark(citation: &Citation) -> &'static str {
    match (citation.cited_by, citation.support) {
        (CitedBy::Footnote, _) => "matched by Footnote",
        (_, Support::Partial) => "partly supports the answer",
        _ => "",
    }
}

/// One source as a single line: `[1] Title — p. 3 · Intro: “snippet”`, with its
/// [`support_remark`] in parentheses when there is one.
pub fn source_line(citation: &Citation) -> String {
    let mut line = format!("[{}] {}", citation.n, citation.title);
    let remark = support_remark(citation);
    if !remark.is_empty() {
        line.push_str(&format!(" ({remark})"));
    }
    let locator = citation.locator.to_string();
    if !locator.is_empty() {
        line.push_str(" — ");
        line.push_str(&locator);
    }
    if !citation.snippet.is_empty() {
        line.push_str(&format!(": “{}”", citation.snippet));
    }
    line
}

/// The numbered sources as plain text, one per line.
pub fn sources_plain(citations: &[Citation]) -> String {
    citations.iter().map(source_line).collect::<Vec<_>>().join("\n")
}

/// The whole answer as plain text: notice, answer, notes, then the sources under a `Sources:`
/// line.
pub fn answer_plain(answer: &Answer) -> String {
    let mut out = String::new();
    if let Some(notice) = answer.notice {
        out.push_str(notice.user_message());
        out.push_str("\n\n");
    }
    if !answer.text.trim().is_empty() {
        out.push_str(answer.text.trim());
        out.push_str("\n\n");
    }
    let notes = answer_notes(answer);
    for note in &notes {
        out.push_str(&format!("({note})\n"));
    }
    if !notes.is_empty() {
        out.push('\n');
    }
    if !answer.citations.is_empty() {
        out.push_str("Sources:\n");
        out.push_str(&sources_plain(&answer.citations));
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// Splits `text` into pieces of at most `limit` characters (Unicode scalar values), preferring
/// paragraph breaks, then line breaks, then spaces, and never cutting inside a `[n]` marker.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    assert!(limit >= 16, "a message limit below 16 characters cannot hold a citation");
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        let hard = rest.char_indices().nth(limit).map(|(i, _)| i).unwrap_or(rest.len());
        let window = &rest[..hard];
        let cut = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).filter(|&i| i > 0).map(|i| (i, sep.len())))
            .map(|(i, _)| i)
            .unwrap_or_else(|| avoid_marker(window, hard));
        let cut = avoid_marker(rest, cut);
        let (head, tail) = rest.split_at(cut);
        pieces.push(head.trim_end().to_owned());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// Moves a cut at byte `at` back to before an unclosed `[digits` marker it would split.
fn avoid_marker(text: &str, at: usize) -> usize {
    let head = &text[..at];
    if let Some(open) = head.rfind('[') {
        let inside = &head[open + 1..];
        let marker_like = inside.chars().all(|c| c.is_ascii_digit() || c == ATTRIBUTED_MARK);
        if marker_like && !head[open..].contains(']') && open > 0 {
            return open;
        }
    }
    at
}

/// A size for people, in decimal units: `512 bytes`, `482.1 kB`, `5.0 MB`.
pub fn human_bytes(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.1} kB", value / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", value / 1e6),
        _ => format!("{:.1} GB", value / 1e9),
    }
}

/// `text` cut to at most `max` characters, ending in `…` when it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_owned();
    out.push('…');
    out
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time, such as `2000-02-29T00:00:00Z`.
pub fn rfc3339_utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // The civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_titles_and_times_read_well() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(482_133), "482.1 kB");
        assert_eq!(human_bytes(30 * 1024 * 1024), "31.5 MB");
        assert_eq!(truncate("héllo wörld", 7), "héllo…");
        assert_eq!(truncate("short", 7), "short");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn an_answer_without_the_model_says_why_once() {
        let passage = Citation {
            n: 1,
            document_id: "d1".into(),
            title: "Manual".into(),
            locator: crate::Locator::default(),
            snippet: "passage".into(),
            score: 1.0,
            support: Support::NotCited,
            support_score: None,
            cited_by: CitedBy::None,
        };
        let unreachable = Answer::model_unreachable(vec![passage], crate::Timings::default());
        for (answer, notice) in [
            (Answer::nothing_found(crate::Timings::default()), crate::Notice::NothingFound),
            (unreachable, crate::Notice::ModelUnreachable),
        ] {
            let plain = answer_plain(&answer);
            assert_eq!(plain.matches(notice.user_message()).count(), 1, "{plain}");
        }
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_message("hello [1]", 2000), vec!["hello [1]"]);
    }

    #[test]
    fn splits_at_paragraphs_first() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(split_message(&text, 40), vec!["a".repeat(30), "b".repeat(30)]);
    }

    #[test]
    fn never_cuts_a_marker() {
        let text = format!("{}[12] tail", "x".repeat(20));
        for piece in split_message(&text, 22) {
            assert!(!piece.ends_with("[1") && !piece.starts_with("2]"), "{piece:?}");
            assert!(piece.chars().count() <= 22);
        }
    }

    #[test]
    fn every_piece_respects_the_limit_with_multibyte_text() {
        let text = "é ".repeat(500) + &"字".repeat(300);
        let pieces = split_message(&text, 100);
        assert!(pieces.iter().all(|p| p.chars().count() <= 100));
        assert_eq!(pieces.concat().replace(' ', ""), text.replace(' ', ""));
    }
}
