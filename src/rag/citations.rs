//! Checking the model's citations: markers that point at no source are dropped, and the sources
//! are renumbered 1..n in the order the answer first uses them.
//!
//! [`CitationRewriter`] works on the token stream itself: renumbering by first use only depends on
//! what came before, so the text an adapter shows while the answer streams already carries the
//! final numbers. A marker split across tokens (`[`, `1`, `]`) is held back until it is complete.
//! Accepted forms: `[1]`, `[1, 2]`, `[1-3]`, `[Source 2]`, `[^1]`; anything else in brackets is
//! left as text, except `[n]`: the prompt's own "cite them as [n]" copied by a small model, which
//! cites nothing and is dropped like a marker that points at no source.

/// Longest bracket content still considered a marker.
const MAX_MARKER: usize = 24;

/// Rewrites citation markers in a streamed answer.
#[derive(Debug)]
pub struct CitationRewriter {
    sources: usize,
    /// Original source numbers (1-based) in order of first use.
    used: Vec<usize>,
    pending: String,
    dropped: bool,
}

impl CitationRewriter {
    /// A rewriter for an answer given `sources` numbered sources.
    pub fn new(sources: usize) -> Self {
        CitationRewriter { sources, used: Vec::new(), pending: String::new(), dropped: false }
    }

    /// Feeds a piece of the answer; returns the text that can be shown now.
    pub fn push(&mut self, token: &str) -> String {
        let mut out = String::new();
        for ch in token.chars() {
            if self.pending.is_empty() {
                if ch == '[' {
                    self.pending.push(ch);
                } else {
                    out.push(ch);
                }
                continue;
            }
            self.pending.push(ch);
            if ch == ']' {
                let marker = std::mem::take(&mut self.pending);
                out.push_str(&self.rewrite(&marker));
            } else if ch == '[' {
                // `[[1]`: the first bracket was text.
                let text: String = self.pending.drain(..self.pending.len() - 1).collect();
                out.push_str(&text);
            } else if self.pending.len() > MAX_MARKER + 1 || !could_be_marker(&self.pending[1..]) {
                out.push_str(&std::mem::take(&mut self.pending));
            }
        }
        out
    }

    /// Ends the stream; returns any held-back text.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Original (1-based) source numbers in the order the answer first cited them.
    pub fn used(&self) -> &[usize] {
        &self.used
    }

    /// True when some marker pointed at no source and was removed.
    pub fn dropped_any(&self) -> bool {
        self.dropped
    }

    fn rewrite(&mut self, marker: &str) -> String {
        let Some(numbers) = parse_marker(&marker[1..marker.len() - 1]) else {
            return marker.to_owned();
        };
        let mut out = String::new();
        for n in numbers {
            if n == 0 || n > self.sources {
                self.dropped = true;
                continue;
            }
            let new = match self.used.iter().position(|&u| u == n) {
                Some(i) => i + 1,
                None => {
                    self.used.push(n);
                    self.used.len()
                }
            };
            let text = format!("[{new}]");
            if !out.contains(&text) {
                out.push_str(&text);
            }
        }
        // A marker that cites nothing: out of range, or the placeholder.
        self.dropped |= out.is_empty();
        out
    }
}

/// True for `n` (or `N`), the placeholder of the prompt's instruction.
fn is_placeholder(inner: &str) -> bool {
    inner.trim().eq_ignore_ascii_case("n")
}

/// Could `inner` (the text after `[` so far) still become a marker?
fn could_be_marker(inner: &str) -> bool {
    if is_placeholder(inner) {
        return true;
    }
    let lower = inner.to_ascii_lowercase();
    let rest = strip_prefix_word(lower.trim_start());
    let word_in_progress = ["source", "sources", "doc", "document"].iter().any(|w| w.starts_with(lower.trim()));
    word_in_progress || rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ',' | ';' | ' ' | '-' | '–' | '^'))
}

fn strip_prefix_word(s: &str) -> &str {
    for word in ["sources", "source", "document", "doc", "^"] {
        if let Some(rest) = s.strip_prefix(word) {
            return rest.trim_start_matches([' ', ':', '#']);
        }
    }
    s
}

/// The source numbers a bracket's content names (none for the placeholder `[n]`), or `None` if
/// it is not a citation.
pub(crate) fn parse_marker(inner: &str) -> Option<Vec<usize>> {
    if is_placeholder(inner) {
        return Some(Vec::new());
    }
    let lower = inner.trim().to_ascii_lowercase();
    let body = strip_prefix_word(&lower);
    if body.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for part in body.split([',', ';']).map(str::trim) {
        let part = strip_prefix_word(part);
        if let Some((a, b)) = part.split_once(['-', '–']) {
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a || b - a > 20 {
                return None;
            }
            out.extend(a..=b);
        } else {
            for n in part.split_whitespace() {
                out.push(n.parse().ok()?);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Checks a complete answer: returns the rewritten text and the original source numbers in order
/// of first use.
pub fn check(text: &str, sources: usize) -> (String, Vec<usize>) {
    let mut rewriter = CitationRewriter::new(sources);
    let mut out = rewriter.push(text);
    out.push_str(&rewriter.finish());
    let out = if rewriter.dropped_any() { tidy(&out) } else { out };
    (out.trim().to_owned(), rewriter.used().to_vec())
}

/// Tidies the gaps a removed marker leaves (`word .` → `word.`, double spaces).
pub fn tidy(text: &str) -> String {
    let mut out = text.to_owned();
    for (from, to) in [(" .", "."), (" ,", ","), (" ;", ";"), (" :", ":"), ("  ", " ")] {
        while out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out
}

/// The part of `text` (at most `max_chars`) that best matches `query`: the sentence sharing the
/// most words with it, extended with its neighbours, cut at word boundaries.
pub fn snippet(text: &str, query: &str, max_chars: usize) -> String {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase).collect()
    };
    let wanted = words(query);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentences: Vec<&str> = flat.split_inclusive(['.', '!', '?', '\n']).filter(|s| !s.trim().is_empty()).collect();
    let best = sentences
        .iter()
        .enumerate()
        .max_by_key(|(i, s)| (words(s).iter().filter(|w| wanted.contains(w)).count(), usize::MAX - i))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut chosen = sentences.get(best).map(|s| s.trim().to_owned()).unwrap_or_default();
    for next in sentences.iter().skip(best + 1) {
        if chosen.chars().count() + next.chars().count() > max_chars {
            break;
        }
        chosen.push(' ');
        chosen.push_str(next.trim());
    }
    shorten(&chosen, max_chars)
}

/// Cuts `s` to at most `max` characters at a word boundary, adding `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbers_by_first_use_and_drops_unknown_markers() {
        let (text, used) = check("Cats purr [3]. Dogs bark [1][3]. Fish swim [7].", 3);
        assert_eq!(text, "Cats purr [1]. Dogs bark [2][1]. Fish swim.");
        assert_eq!(used, vec![3, 1]);
    }

    #[test]
    fn the_prompts_placeholder_copied_by_the_model_is_dropped() {
        let (text, used) = check("The permit costs 45 euros [n]. See [N] and [1].", 1);
        assert_eq!(text, "The permit costs 45 euros. See and [1].");
        assert_eq!(used, vec![1]);
        let mut streamed = CitationRewriter::new(1);
        let shown: String = ["It is 45 euros [", "n", "]. [", "nope]"].iter().map(|t| streamed.push(t)).collect();
        assert_eq!(shown, "It is 45 euros . [nope]");
        assert!(streamed.dropped_any());
    }

    #[test]
    fn understands_lists_ranges_and_words() {
        let (text, used) = check("A [2, 1]. B [Source 3]. C [1-2]. D [^2].", 3);
        assert_eq!(text, "A [1][2]. B [3]. C [2][1]. D [1].");
        assert_eq!(used, vec![2, 1, 3]);
    }

    #[test]
    fn leaves_other_brackets_alone() {
        let (text, used) = check("Use arr[i] or [see below] or [].", 2);
        assert_eq!(text, "Use arr[i] or [see below] or [].");
        assert!(used.is_empty());
    }

    #[test]
    fn streaming_gives_the_same_text_as_checking_the_whole() {
        let answer = "The limit is 5 GB [2]. Uploads over it fail [1, 2] and [9] is wrong [[3]].";
        let whole = check(answer, 3).0;
        for split in 1..6 {
            let mut rewriter = CitationRewriter::new(3);
            let mut streamed = String::new();
            let chars: Vec<char> = answer.chars().collect();
            for piece in chars.chunks(split) {
                streamed.push_str(&rewriter.push(&piece.iter().collect::<String>()));
            }
            streamed.push_str(&rewriter.finish());
            assert_eq!(tidy(&streamed).trim(), whole, "split every {split} chars");
        }
    }

    #[test]
    fn an_unclosed_bracket_is_released_at_the_end() {
        let mut rewriter = CitationRewriter::new(2);
        assert_eq!(rewriter.push("see [1"), "see ");
        assert_eq!(rewriter.finish(), "[1");
    }

    #[test]
    fn snippet_picks_the_matching_sentence() {
        let text = "Intro text here. The warranty lasts two years from purchase. Other details follow.";
        let s = snippet(text, "how long is the warranty?", 60);
        assert!(s.starts_with("The warranty lasts two years"), "{s}");
        assert!(s.chars().count() <= 60);
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("alpha beta gamma delta", 15), "alpha beta…");
        assert_eq!(shorten("short", 15), "short");
    }
}
