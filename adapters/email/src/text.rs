//! Small pure text helpers for mail: subject prefixes, quoted-reply stripping, forward
//! detection, HTML escaping, file names and a stable hash.

/// Markers that mail clients put above an inline-forwarded message.
const FORWARD_MARKERS: [&str; 5] = [
    "---------- forwarded message ---------",
    "-------- original message --------",
    "-----original message-----",
    "begin forwarded message:",
    "-------- forwarded message --------",
];

/// Subject prefixes of replies and forwards in common languages.
const REPLY_PREFIXES: [&str; 8] = ["re:", "aw:", "sv:", "antw:", "fwd:", "fw:", "wg:", "tr:"];

/// 64-bit FNV-1a: a stable hash for made-up ids and file names (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The subject without any leading `Re:`, `Fwd:` and similar prefixes.
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject.trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        match REPLY_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
            Some(p) => rest = rest[p.len()..].trim_start(),
            None => return rest,
        }
    }
}

/// The subject after `prefix` (case-insensitive, after reply prefixes), if it starts with it.
pub fn strip_prefix<'a>(subject: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = strip_reply_prefixes(subject);
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return None;
    }
    let head = rest.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| rest[prefix.len()..].trim_start())
}

/// True for a forward written into the body: a `Fwd:`-style subject or a client's marker line.
pub fn is_inline_forward(subject: &str, body: &str) -> bool {
    let lower = subject.trim_start().to_ascii_lowercase();
    ["fwd:", "fw:", "wg:", "tr:"].iter().any(|p| lower.starts_with(p))
        || body.lines().any(|line| {
            let line = line.trim().to_ascii_lowercase();
            FORWARD_MARKERS.iter().any(|m| line.starts_with(m))
        })
}

/// The new text of a reply: cuts at the first quote header (`On … wrote:`), quoted `>` lines, an
/// `-----Original Message-----` block, or a `-- ` signature.
pub fn strip_quoted(body: &str) -> String {
    let mut kept = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim_end();
        let lower = trimmed.trim_start().to_ascii_lowercase();
        if trimmed == "--"
            || trimmed == "-- "
            || line == "-- "
            || lower.starts_with("-----original message-----")
            || (lower.starts_with("on ") && lower.ends_with("wrote:"))
        {
            break;
        }
        if trimmed.trim_start().starts_with('>') {
            continue;
        }
        kept.push(trimmed);
    }
    kept.join("\n").trim().to_owned()
}

/// A safe file-name stem from a subject: no path separators or control characters, ≤ 80 chars.
pub fn file_stem(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| if c.is_alphanumeric() || " -_.,()&'".contains(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .filter(|word| !word.chars().all(|c| c == '.'))
        .collect::<Vec<_>>()
        .join(" ");
    let stem: String = cleaned.trim_matches('.').chars().take(80).collect();
    if stem.is_empty() { "message".into() } else { stem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_prefixes_in_any_case_and_order() {
        assert_eq!(strip_reply_prefixes("RE: Fwd: re:  Budget"), "Budget");
        assert_eq!(strip_prefix("Re: [ask] what is up", "[ASK]"), Some("what is up"));
        assert_eq!(strip_prefix("what is up", "[ask]"), None);
    }

    #[test]
    fn quoted_text_and_signature_are_cut() {
        let body = "And in 2024?\n\nOn Mon, 1 Jan 2024, Bot <bot@x> wrote:\n> old answer [1]\n";
        assert_eq!(strip_quoted(body), "And in 2024?");
        assert_eq!(strip_quoted("Hi\n> quoted\nthere\n-- \nAnn"), "Hi\nthere");
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("../../etc/passwd"), "etc passwd");
        assert_eq!(file_stem(""), "message");
        assert_eq!(file_stem(&"x".repeat(200)).len(), 80);
    }
}
