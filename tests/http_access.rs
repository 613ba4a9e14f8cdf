//! Who may use the HTTP API and the web page, checked with real HTTP requests that carry the
//! headers a browser sends: a page on another site cannot upload, forget or log in (cross-site
//! requests), a DNS-rebinding page cannot read anything (unknown `Host`), the session cookie is
//! good for the web page's routes only, logging out ends the session on the server, and the
//! cookie is `Secure` when `server.public_url` is https.

mod common;
mod service;

use common::*;
use reqwest::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use secrecy::SecretString;
use service::*;

const TOKEN: &str = "a-test-token-of-some-length";

fn penguins() -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(ZOO[0].1.as_bytes().to_vec()).file_name(ZOO[0].0))
}

async fn document_count(running: &footnote::serve::Running) -> usize {
    use footnote_adapter::Gateway;
    running.core.documents(&scope("default"), &footnote_adapter::Actor::operator()).await.unwrap().len()
}

#[tokio::test]
async fn a_page_on_another_site_cannot_change_anything_without_a_token_configured() {
    let env = TestEnv::new().await;
    let running = start(config(&env), Vec::new()).await;
    let http = client();
    let upload = url(&running, "/api/documents");

    // A form on evil.example posting to the loopback API, as Chromium sends it (no preflight).
    let reply = http
        .post(&upload)
        .header(ORIGIN, "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .multipart(penguins())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "cross_site", "{body}");
    // Another port of the same host is another origin (same site, still refused).
    let reply = http
        .post(&upload)
        .header(ORIGIN, "http://127.0.0.1:1")
        .header("sec-fetch-site", "same-site")
        .multipart(penguins())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    // An older browser that sends only Origin.
    let reply = http.post(&upload).header(ORIGIN, "null").multipart(penguins()).send().await.unwrap();
    assert_eq!(reply.status(), 403);
    assert_eq!(document_count(&running).await, 0, "nothing was stored");

    // The page itself (same origin) and programs without browser headers may.
    let own = format!("http://{}", running.addr);
    let reply = http
        .post(&upload)
        .header(ORIGIN, &own)
        .header("sec-fetch-site", "same-origin")
        .multipart(penguins())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let id = reply.json::<serde_json::Value>().await.unwrap()["document_id"].as_str().unwrap().to_owned();
    assert_eq!(
        http.post(url(&running, "/api/ask"))
            .json(&serde_json::json!({"question": "penguins?"}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Forgetting from another site: refused, the document stays.
    let forget = url(&running, &format!("/api/documents/{id}"));
    let reply = http.delete(&forget).header(ORIGIN, "https://evil.example").send().await.unwrap();
    assert_eq!(reply.status(), 403);
    let reply = http
        .delete(url(&running, &format!("/ui/documents/{id}")))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    assert_eq!(document_count(&running).await, 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_dns_rebinding_page_cannot_read_or_forget() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.server.public_url = "https://footnote.example.org".into();
    let running = start(cfg, Vec::new()).await;
    ingest(&running.core, "default", ZOO[0].0, ZOO[0].1).await;
    let http = client();
    let port = running.addr.port();

    // evil.example now resolves to 127.0.0.1: its page's requests are "same-origin" to the
    // browser, but they name evil.example.
    let rebound = format!("evil.example:{port}");
    for path in ["/api/documents", "/ui/documents", "/", "/api/status", "/metrics"] {
        let reply = http.get(url(&running, path)).header(HOST, &rebound).send().await.unwrap();
        assert_eq!(reply.status(), 403, "{path}");
        let body = reply.text().await.unwrap();
        assert!(body.contains("unknown_host") && !body.contains("Penguins"), "{path}: {body}");
    }
    let reply = http
        .post(url(&running, "/api/ask"))
        .header(HOST, &rebound)
        .header(ORIGIN, format!("http://{rebound}"))
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({"question": "penguins?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);

    // Loopback names, IP addresses and the public host are served; probes answer any name.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "footnote.example.org".to_owned()] {
        let reply = http.get(url(&running, "/api/documents")).header(HOST, &host).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{host}");
    }
    assert_eq!(http.get(url(&running, "/healthz")).header(HOST, &rebound).send().await.unwrap().status(), 200);
    running.stop().await.unwrap();
}

/// Logs in as a browser on the page's own origin would; returns the `Set-Cookie` value.
async fn log_in(running: &footnote::serve::Running) -> String {
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let reply = no_redirect
        .post(url(running, "/login"))
        .header(ORIGIN, format!("http://{}", running.addr))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 303);
    reply.headers()[SET_COOKIE].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_session_cookie_is_for_the_web_page_only_and_logging_out_ends_it() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.server.tokens = vec![SecretString::from(TOKEN)];
    let running = start(cfg, Vec::new()).await;
    ingest(&running.core, "default", ZOO[0].0, ZOO[0].1).await;
    let http = client();

    // Login CSRF: another site cannot log the browser in to a token of its choosing.
    let reply = http
        .post(url(&running, "/login"))
        .header(ORIGIN, "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);

    let set_cookie = log_in(&running).await;
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http public address: {set_cookie}");
    let session = set_cookie.split(';').next().unwrap().to_owned();
    let page = http.get(url(&running, "/ui/documents")).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Penguins"));
    // The API wants the token itself.
    assert_eq!(http.get(url(&running, "/api/documents")).header(COOKIE, &session).send().await.unwrap().status(), 401);
    assert_eq!(http.get(url(&running, "/metrics")).header(COOKIE, &session).send().await.unwrap().status(), 401);
    assert_eq!(http.get(url(&running, "/api/documents")).bearer_auth(TOKEN).send().await.unwrap().status(), 200);
    // A bearer-authenticated program may send any Origin (a page cannot attach the token).
    let reply = http
        .post(url(&running, "/api/documents"))
        .bearer_auth(TOKEN)
        .header(ORIGIN, "https://tool.example")
        .multipart(penguins())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    // A second browser's session is its own; logging out ends only the first, on the server.
    let other = log_in(&running).await.split(';').next().unwrap().to_owned();
    assert_ne!(other, session);
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(url(&running, "/logout"))
        .header(COOKIE, &session)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 303);
    assert!(reply.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    // The old cookie, replayed (copied before logging out), no longer works.
    assert_eq!(http.get(url(&running, "/ui/documents")).header(COOKIE, &session).send().await.unwrap().status(), 401);
    let page = http.get(url(&running, "/")).header(COOKIE, &session).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Access token"), "the login form again: {page}");
    assert_eq!(http.get(url(&running, "/ui/documents")).header(COOKIE, &other).send().await.unwrap().status(), 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_address_is_https() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.server.tokens = vec![SecretString::from(TOKEN)];
    cfg.server.public_url = "https://footnote.example.org/".into();
    let running = start(cfg, Vec::new()).await;
    let set_cookie = log_in(&running).await;
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn uploads_without_a_file_name_never_replace_each_other() {
    let env = TestEnv::new().await;
    let running = start(config(&env), Vec::new()).await;
    let http = client();
    let mut ids = Vec::new();
    for (_, text) in &ZOO[..2] {
        // A multipart field without a filename (as a script or a form's text field sends it).
        let form =
            reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(text.as_bytes().to_vec()));
        let reply = http.post(url(&running, "/api/documents")).multipart(form).send().await.unwrap();
        assert_eq!(reply.status(), 200);
        let receipt: footnote_adapter::IngestReceipt = reply.json().await.unwrap();
        assert_eq!(receipt.outcome, footnote_adapter::IngestOutcome::Added, "{receipt:?}");
        ids.push(receipt.document_id);
    }
    assert_eq!(document_count(&running).await, 2, "the second nameless upload replaced the first");
    running.stop().await.unwrap();
}
