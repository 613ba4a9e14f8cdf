//! Who a mail is from and whether the bot may answer it: address matching (plus-addressing,
//! `Name <addr>` forms), the sender allowlist, the DMARC/DKIM/SPF results the operator's own mail
//! server stamped (aligned with `From:`), and the signals of automatic mail
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

/// True when the operator's own mail server vouches for the sender: an
/// `Authentication-Results` header stamped with `authserv_id` (the name the operator's server
/// writes first in the header; headers of any other name were written by someone else, maybe the
/// sender) reports `dmarc=pass`, `dkim=pass` or `spf=pass` for a domain aligned with the `From:`
/// domain of `sender`, as DMARC's relaxed alignment puts it: the same domain, or one a subdomain
/// of the other.
///
/// The operator's server must remove headers that claim its `authserv_id` from incoming mail
/// (RFC 8601, section 5); common filters (OpenDKIM, OpenDMARC, rspamd) do.
pub fn authenticated(message: &Message<'_>, authserv_id: &str, sender: &str) -> bool {
    let Some((_, from_domain)) = split_address(sender) else {
        return false;
    };
    let from_domain = from_domain.to_ascii_lowercase();
    message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|(_, value)| parse_results(value))
        .filter(|(id, _)| id.eq_ignore_ascii_case(authserv_id.trim()))
        .flat_map(|(_, results)| results)
        .any(|result| result.passes_for(&from_domain))
}

/// One `method=result` of an `Authentication-Results` header, with its properties.
#[derive(Debug, Default, PartialEq, Eq)]
struct MethodResult {
    method: String,
    result: String,
    /// `ptype.property` (lower-case) → value.
    properties: Vec<(String, String)>,
}

impl MethodResult {
    fn property(&self, name: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A pass whose domain aligns with `from_domain`.
    fn passes_for(&self, from_domain: &str) -> bool {
        if self.result != "pass" {
            return false;
        }
        let domain = match self.method.as_str() {
            "dmarc" => self.property("header.from"),
            "dkim" => self.property("header.d").or_else(|| self.property("header.i")),
            "spf" => self.property("smtp.mailfrom"),
            _ => None,
        };
        let domain =
            domain.map(|d| d.rsplit_once('@').map_or(d, |(_, d)| d).trim_end_matches('.').to_ascii_lowercase());
        domain.is_some_and(|d| aligned(&d, from_domain))
    }
}

/// Relaxed alignment: equal, or one a subdomain of the other (never a bare top-level domain).
fn aligned(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.contains('.') && long.ends_with(&format!(".{short}")))
}

/// Removes `(comments)`, nested ones included.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The authserv-id and the results of one `Authentication-Results` value (RFC 8601).
fn parse_results(value: &str) -> Option<(String, Vec<MethodResult>)> {
    let clean = strip_comments(value);
    let mut parts = clean.split(';');
    let authserv_id = parts.next()?.split_whitespace().next()?.to_owned();
    let results = parts
        .filter_map(|part| {
            // Whitespace is allowed around `=`: glue every pair together first.
            let glued = part.split('=').map(str::trim).collect::<Vec<_>>().join("=");
            let mut pairs = glued.split_whitespace().filter_map(|t| t.split_once('='));
            let (method, result) = pairs.next()?;
            let method = method.split('/').next().unwrap_or(method).to_ascii_lowercase();
            let properties = pairs.map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_owned())).collect();
            Some(MethodResult { method, result: result.to_ascii_lowercase(), properties })
        })
        .collect();
    Some((authserv_id, results))
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
