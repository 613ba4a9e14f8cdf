//! `OLLAMA_HOST` read the way Ollama's own CLI reads it: an optional scheme (default `http`), a
//! host (default `127.0.0.1`), a port (default 11434, or 80/443 when the scheme is given), and an
//! optional path. A server bind address such as `0.0.0.0` is reached on loopback.

/// Turns an `OLLAMA_HOST` value into the base URL a client connects to.
pub fn ollama_host_url(raw: &str) -> String {
    let s = raw.trim().trim_matches(|c| c == '"' || c == '\'');
    let (scheme, rest, default_port) = match s.split_once("://") {
        Some(("https", rest)) => ("https", rest, "443"),
        Some(("http", rest)) => ("http", rest, "80"),
        Some((other, rest)) => (other, rest, "11434"),
        None => ("http", s, "11434"),
    };
    let (hostport, path) = match rest.split_once('/') {
        Some((hp, path)) => (hp, format!("/{path}")),
        None => (rest, String::new()),
    };
    let (host, port) = split_host_port(hostport).unwrap_or_else(|| {
        let bare = hostport.trim_matches(|c| c == '[' || c == ']');
        let host = if bare.is_empty() { "127.0.0.1".to_owned() } else { bare.to_owned() };
        (host, default_port.to_owned())
    });
    let port = match port.parse::<u16>() {
        Ok(_) => port,
        Err(_) => default_port.to_owned(),
    };
    let host = match host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "::1".to_owned(),
        _ => host,
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    format!("{scheme}://{host}:{port}{}", path.trim_end_matches('/'))
}

/// `host:port`, `[v6]:port` or `:port`; `None` when there is no port part.
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host.to_owned(), port.to_owned()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address
    }
    Some((host.to_owned(), port.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::ollama_host_url as u;

    #[test]
    fn reads_ollama_host_like_the_ollama_cli() {
        assert_eq!(u(""), "http://127.0.0.1:11434");
        assert_eq!(u("0.0.0.0"), "http://127.0.0.1:11434");
        assert_eq!(u("0.0.0.0:12345"), "http://127.0.0.1:12345");
        assert_eq!(u(":11435"), "http://127.0.0.1:11435");
        assert_eq!(u("gpu-box"), "http://gpu-box:11434");
        assert_eq!(u("gpu-box:8080"), "http://gpu-box:8080");
        assert_eq!(u("http://gpu-box"), "http://gpu-box:80");
        assert_eq!(u("https://ollama.example.com"), "https://ollama.example.com:443");
        assert_eq!(u("https://ollama.example.com/ollama/"), "https://ollama.example.com:443/ollama");
        assert_eq!(u("\"10.0.0.5:9000\""), "http://10.0.0.5:9000");
        assert_eq!(u("[::1]:11434"), "http://[::1]:11434");
        assert_eq!(u("::1"), "http://[::1]:11434");
        assert_eq!(u("example.com:notaport"), "http://example.com:11434");
    }
}
