//! Where a request comes from, checked before it is authenticated: the `Host` it names (against
//! DNS rebinding) and, for requests that change something, whether a browser sent it from
//! another site (cross-site request forgery).
//!
//! - **Host**: a page on `evil.example` whose name the attacker re-points at 127.0.0.1 talks to
//!   Footnote as its own origin, so browsers let it read the replies. Its requests still name
//!   `evil.example` in `Host`, so only loopback names (`localhost`, `*.localhost`), IP
//!   addresses (which cannot be re-pointed) and the host of `server.public_url` are served.
//! - **Cross-site**: a form on any page may POST to `http://127.0.0.1:8080/api/documents`
//!   without a preflight. Browsers say where such a request comes from in `Sec-Fetch-Site`
//!   (all current ones) or `Origin`; a request that changes state must come from the same
//!   origin. A request with neither header is not from a browser (curl, scripts) and passes;
//!   one with a valid bearer token passes too, since a page cannot attach one without a CORS
//!   preflight, which Footnote never grants.

use std::net::IpAddr;

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, Uri};

use crate::config::ServerConfig;

/// The header in which browsers say whether a request comes from the page's own origin.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// The host names a request may name, and the public origin.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    /// `server.public_url`'s host, lower-case.
    public_host: Option<String>,
    /// `server.public_url`'s origin (`https://footnote.example.org`), lower-case.
    public_origin: Option<String>,
}

impl Guard {
    /// The allowed names from the server settings.
    pub fn new(server: &ServerConfig) -> Guard {
        let public_origin = reqwest::Url::parse(server.public_url.trim())
            .ok()
            .filter(|_| server.public_host().is_some())
            .map(|u| u.origin().ascii_serialization().to_ascii_lowercase());
        Guard { public_host: server.public_host(), public_origin }
    }

    /// Whether the host a request names may be served. A request naming none (HTTP/1.0) cannot
    /// come from a browser page and passes.
    pub fn host_allowed(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let Some(authority) = authority(headers, uri) else {
            return true;
        };
        let host = host_of(&authority);
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.public_host.as_deref() == Some(host.as_str())
    }

    /// Whether a browser sent this request from another site (or from an opaque origin). Safe
    /// methods (GET, HEAD, OPTIONS) are never cross-site requests that matter.
    pub fn is_cross_site(&self, method: &Method, headers: &HeaderMap, uri: &Uri) -> bool {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return false;
        }
        if let Some(site) = headers.get(SEC_FETCH_SITE) {
            // "none": the user typed or bookmarked it; "same-origin": the page itself.
            return !matches!(site.to_str().map(str::trim), Ok("same-origin" | "none"));
        }
        let Some(origin) = headers.get(ORIGIN) else {
            return false; // not a browser
        };
        let Ok(origin) = origin.to_str().map(|o| o.trim().to_ascii_lowercase()) else {
            return true;
        };
        if self.public_origin.as_deref() == Some(origin.as_str()) {
            return false;
        }
        let Some(origin_authority) = origin.split_once("://").map(|(_, rest)| rest) else {
            return true; // "null" and the like
        };
        authority(headers, uri).is_none_or(|a| a.to_ascii_lowercase() != origin_authority)
    }
}

/// The `host[:port]` a request names: its `Host` header, else the URI's authority (HTTP/2).
fn authority(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
}

/// The host of `host[:port]` (brackets of an IPv6 literal removed), lower-case, without a
/// trailing dot.
fn host_of(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| if port.chars().all(|c| c.is_ascii_digit()) { host } else { authority }),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    fn guard(public_url: &str) -> Guard {
        Guard::new(&ServerConfig { public_url: public_url.into(), ..ServerConfig::default() })
    }

    #[test]
    fn hosts() {
        let g = guard("https://Footnote.Example.org/");
        let uri = Uri::from_static("/api/documents");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost",
            "[::1]:8080",
            "10.0.0.5",
            "footnote.example.org",
            "footnote.example.org.:443",
        ] {
            assert!(g.host_allowed(&headers(&[("host", ok)]), &uri), "{ok}");
        }
        for bad in ["evil.example:8080", "footnote.example.org.evil.example", "localhost.evil.example", "example.org"] {
            assert!(!g.host_allowed(&headers(&[("host", bad)]), &uri), "{bad}");
        }
        assert!(g.host_allowed(&HeaderMap::new(), &uri), "no Host at all: not a browser");
        assert!(!guard("").host_allowed(&headers(&[("host", "footnote.example.org")]), &uri));
    }

    #[test]
    fn cross_site_requests() {
        let g = guard("https://footnote.example.org");
        let uri = Uri::from_static("/api/documents");
        let post = Method::POST;
        let host = ("host", "127.0.0.1:8080");
        assert!(!g.is_cross_site(&post, &headers(&[host]), &uri), "no browser headers");
        assert!(!g.is_cross_site(&post, &headers(&[host, ("sec-fetch-site", "same-origin")]), &uri));
        assert!(g.is_cross_site(&post, &headers(&[host, ("sec-fetch-site", "cross-site")]), &uri));
        assert!(g.is_cross_site(&post, &headers(&[host, ("sec-fetch-site", "same-site")]), &uri));
        assert!(!g.is_cross_site(&Method::GET, &headers(&[host, ("sec-fetch-site", "cross-site")]), &uri));
        assert!(!g.is_cross_site(&post, &headers(&[host, ("origin", "http://127.0.0.1:8080")]), &uri));
        assert!(g.is_cross_site(&post, &headers(&[host, ("origin", "http://127.0.0.1:3000")]), &uri));
        assert!(g.is_cross_site(&post, &headers(&[host, ("origin", "null")]), &uri));
        assert!(g.is_cross_site(&Method::DELETE, &headers(&[host, ("origin", "https://evil.example")]), &uri));
        // Behind a TLS proxy the Host may be the backend's, the Origin the public one.
        assert!(!g.is_cross_site(&post, &headers(&[host, ("origin", "https://footnote.example.org")]), &uri));
    }
}
