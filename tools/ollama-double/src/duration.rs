//! `keep_alive` the way Ollama reads it: a JSON number is seconds (negative: forever), a JSON
//! string is a Go duration (`"30m"`, `"1h30m"`, `"0"`; negative: forever). A string that Go
//! cannot parse, such as `"-1"` or `"10"` without a unit, is an error, as it is in Ollama.

use std::time::Duration;

use serde_json::Value;

/// How long a model stays loaded after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Never unloaded.
    Forever,
    /// Unloaded this long after the request; zero unloads right away.
    For(Duration),
}

/// Ollama's default when a request carries no `keep_alive`.
pub const DEFAULT_KEEP_ALIVE: KeepAlive = KeepAlive::For(Duration::from_secs(300));

/// Reads a request's `keep_alive` (absent or `null`: the default).
pub fn keep_alive(value: Option<&Value>) -> Result<KeepAlive, String> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_KEEP_ALIVE),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0);
            if secs < 0.0 {
                Ok(KeepAlive::Forever)
            } else {
                // Ollama truncates to whole seconds.
                Ok(KeepAlive::For(Duration::from_secs(secs.trunc() as u64)))
            }
        }
        Some(Value::String(s)) => match parse_go_duration(s)? {
            (true, d) if !d.is_zero() => Ok(KeepAlive::Forever),
            (_, d) => Ok(KeepAlive::For(d)),
        },
        Some(other) => Err(format!("Unsupported type: '{}'", type_name(other))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        _ => "unknown",
    }
}

/// Parses Go's `time.ParseDuration` syntax: an optional sign, then one or more decimal numbers
/// each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). `"0"` needs no unit.
/// Returns (negative, magnitude).
pub fn parse_go_duration(s: &str) -> Result<(bool, Duration), String> {
    let err = |why: &str| format!("time: {why} in duration \"{s}\"");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(format!("time: invalid duration \"{s}\""));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("time: invalid duration \"{s}\""));
        }
        let value: f64 = number.parse().map_err(|_| format!("time: invalid duration \"{s}\""))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(err("missing unit")),
            other => {
                return Err(format!("time: unknown unit \"{other}\" in duration \"{s}\""));
            }
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    if total > u64::MAX as f64 {
        return Err(format!("time: invalid duration \"{s}\""));
    }
    Ok((negative, Duration::from_nanos(total as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30m"), Ok((false, Duration::from_secs(1800))));
        assert_eq!(parse_go_duration("1h30m"), Ok((false, Duration::from_secs(5400))));
        assert_eq!(parse_go_duration("1.5s"), Ok((false, Duration::from_millis(1500))));
        assert_eq!(parse_go_duration("0"), Ok((false, Duration::ZERO)));
        assert_eq!(parse_go_duration("-5m"), Ok((true, Duration::from_secs(300))));
        assert!(parse_go_duration("-1").unwrap_err().contains("missing unit"));
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn keep_alive_values() {
        let d = |s| KeepAlive::For(Duration::from_secs(s));
        assert_eq!(keep_alive(None), Ok(d(300)));
        assert_eq!(keep_alive(Some(&json!("30m"))), Ok(d(1800)));
        assert_eq!(keep_alive(Some(&json!("0"))), Ok(d(0)));
        assert_eq!(keep_alive(Some(&json!(0))), Ok(d(0)));
        assert_eq!(keep_alive(Some(&json!(-1))), Ok(KeepAlive::Forever));
        assert_eq!(keep_alive(Some(&json!("-1h"))), Ok(KeepAlive::Forever));
        assert_eq!(keep_alive(Some(&json!(90))), Ok(d(90)));
        assert!(keep_alive(Some(&json!("-1"))).is_err());
        assert!(keep_alive(Some(&json!(true))).is_err());
    }
}
