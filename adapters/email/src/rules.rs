//! Who a mail is from and whether the bot may answer it: address matching (plus-addressing,
//! `Name <addr>` forms), the sender allowlist, DKIM/SPF results, and the signals of automatic mail
//! (RFC 3834) that must never be answered, so that the bot cannot take part in a mail loop.

use mail_parser::{Message, MimeHeaders};

/// The first header that marks a mail as automatic, named for the log (RFC 3834 §2 and §5).
pub fn automatic_signal(message: &Message<'_>, sender: &str) -> Option<String> {
    let raw = |name: &'static str| message.header_raw(name).map(str::trim);
    if let Some(value) = raw("Auto-Submitted") {
        let kind = value.split(';').next().unwrap_or_default().trim();
        if !kind.eq_ignore_ascii_case("no") {
            return Some(format!("Auto-Submitted: {kind}"));
        }
    }
    if let Some(value) = raw("Precedence")
        && ["bulk", "list", "junk"].iter().any(|p| value.eq_ignore_ascii_case(p))
    {
        return Some(format!("Precedence: {value}"));
    }
    for header in ["List-Id", "List-Unsubscribe", "List-Post", "X-Autoreply", "X-Autorespond"] {
        if raw(header).is_some() {
            return Some(header.to_owned());
        }
    }
    if raw("Return-Path")
        .is_some_and(|v| v.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace()).is_empty())
    {
        return Some("empty Return-Path".into());
    }
    if message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
    }) {
        return Some("delivery or read report".into());
    }
    let local = split_address(sender).map(|(l, _)| l.to_owned()).unwrap_or_default();
    let robot = ["mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply", "donotreply"];
    if robot.contains(&local.as_str()) || local.starts_with("owner-") || local.ends_with("-request") {
        return Some(format!("robot sender {local}@"));
    }
    None
}

/// True when `sender` is listed, or its domain is listed as `@domain`.
pub fn is_allowed(sender: &str, allowed: &[String]) -> bool {
    let Some((_, domain)) = split_address(sender) else {
        return false;
    };
    allowed.iter().any(|entry| match entry.trim().strip_prefix('@') {
        Some(d) => d.eq_ignore_ascii_case(domain),
        None => entry.trim().eq_ignore_ascii_case(sender),
    })
}

/// True when the topmost `Authentication-Results` (the one our own server added) shows
/// `dkim=pass` or `spf=pass`.
pub fn authenticated(message: &Message<'_>) -> bool {
    let Some(results) = message.header_raw("Authentication-Results") else {
        return false;
    };
    results
        .split([';', ' ', '\t', '\r', '\n'])
        .map(str::trim)
        .any(|token| token.eq_ignore_ascii_case("dkim=pass") || token.eq_ignore_ascii_case("spf=pass"))
}

/// Splits `local@domain` (also inside `Name <local@domain>`); `None` when it is not an address.
pub fn split_address(address: &str) -> Option<(&str, &str)> {
    let address = address.trim();
    let address = match (address.rfind('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => &address[open + 1..close],
        _ => address,
    };
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains(char::is_whitespace)).then_some((local, domain))
}

/// Whether recipient `address` reaches `configured`. A configured `bot+ingest@d` needs that exact
/// local part; a configured `bot@d` also matches `bot+anything@d`.
pub fn matches_address(address: &str, configured: &str) -> bool {
    let (Some((local, domain)), Some((want_local, want_domain))) = (split_address(address), split_address(configured))
    else {
        return false;
    };
    if !domain.eq_ignore_ascii_case(want_domain) {
        return false;
    }
    if want_local.contains('+') {
        local.eq_ignore_ascii_case(want_local)
    } else {
        local.split('+').next().is_some_and(|base| base.eq_ignore_ascii_case(want_local))
    }
}

/// True when both name the same mailbox, ignoring `+detail` and case.
pub fn same_mailbox(a: &str, b: &str) -> bool {
    let base = |s: &str| {
        split_address(s).map(|(l, d)| (l.split('+').next().unwrap_or(l).to_ascii_lowercase(), d.to_ascii_lowercase()))
    };
    matches!((base(a), base(b)), (Some(x), Some(y)) if x == y)
}
