//! Slack's Web API as the adapter uses it: posting and editing messages, reading a thread,
//! permalinks, file downloads with the bot token, and `response_url` replies.
//!
//! Every call honours HTTP 429 by waiting for `Retry-After` and trying again a few times. The
//! bot token is only ever sent to Slack's own hosts (or to the configured API host, for tests).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::OnceCell;
use url::Url;

use crate::config::Config;

/// The slack-morphism connector type the adapter uses.
pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// How many times a rate-limited call is retried.
const MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` the adapter is willing to sleep for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Most thread messages read for history.
const HISTORY_LIMIT: u16 = 200;

/// Why a Web API call failed; for the log, never for chat users.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Slack answered with an error, or the request could not be made.
    #[error("{method}: {detail}")]
    Api {
        /// The Web API method.
        method: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The download is bigger than the configured limit.
    #[error("file over {0} bytes")]
    TooLarge(u64),
    /// The URL is not one the bot token may be sent to.
    #[error("refusing to send the bot token to {0}")]
    ForeignHost(String),
    /// The file server answered with an unexpected status.
    #[error("download failed with HTTP {0}")]
    Status(u16),
    /// The connection failed.
    #[error("transport: {0}")]
    Transport(String),
}

impl WebError {
    fn api(method: &'static str, error: impl std::fmt::Display) -> Self {
        WebError::Api { method, detail: error.to_string() }
    }

    /// True when Slack said the bot is not a member of the channel.
    pub fn not_in_channel(&self) -> bool {
        matches!(self, WebError::Api { detail, .. } if detail.contains("not_in_channel") || detail.contains("channel_not_found"))
    }
}

/// Who the bot is, from `auth.test`.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The bot's user id (`U…`).
    pub user_id: String,
    /// The bot id (`B…`) its messages carry.
    pub bot_id: Option<String>,
}

/// Slack's Web API with the bot token.
pub struct SlackWeb {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    bearer: SecretString,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    api_host: Option<String>,
    allow_http: bool,
    identity: OnceCell<Identity>,
}

fn https_connector(allow_http: bool) -> Result<HttpsConnector<HttpConnector>, std::io::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        // Without system roots only plain HTTP (a test double) can work.
        Err(_) if allow_http => HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(std::io::Error::other)?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
        Err(error) => return Err(error),
    };
    let builder = if allow_http { builder.https_or_http() } else { builder.https_only() };
    Ok(builder.enable_http1().enable_http2().build())
}

impl SlackWeb {
    /// Builds the client from the configuration (no network traffic yet).
    pub fn new(config: &Config) -> Result<Self, std::io::Error> {
        let allow_http = config.api_base.starts_with("http://");
        let connector = https_connector(allow_http)?;
        let slack = SlackClientHyperConnector::with_connector(connector.clone())
            .with_slack_api_url(config.api_base.trim_end_matches('/'));
        Ok(SlackWeb {
            client: Arc::new(SlackClient::new(slack)),
            token: SlackApiToken::new(SlackApiTokenValue::new(config.bot_token.expose_secret().to_owned())),
            bearer: config.bot_token.clone(),
            http: Client::builder(TokioExecutor::new()).build(connector),
            api_host: Url::parse(&config.api_base).ok().and_then(|u| u.host_str().map(str::to_owned)),
            allow_http,
            identity: OnceCell::new(),
        })
    }

    /// The slack-morphism client, for the Socket Mode listener.
    pub fn client(&self) -> Arc<SlackClient<Connector>> {
        self.client.clone()
    }

    async fn retrying<T, F, Fut>(&self, method: &'static str, mut call: F) -> Result<T, WebError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(SlackClientError::RateLimitError(limit)) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    let wait = limit.retry_after.unwrap_or(Duration::from_secs(1)).min(MAX_RETRY_AFTER);
                    tracing::warn!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "Slack rate limit; waiting as Retry-After asks."
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return Err(WebError::api(method, error)),
            }
        }
    }

    /// The bot's identity, asked once from `auth.test` and then remembered.
    pub async fn identity(&self) -> Result<&Identity, WebError> {
        self.identity
            .get_or_try_init(|| async {
                let session = self.client.open_session(&self.token);
                let me = self.retrying("auth.test", || session.auth_test()).await?;
                Ok(Identity { user_id: me.user_id.to_string(), bot_id: me.bot_id.map(|b| b.to_string()) })
            })
            .await
    }

    /// Posts a message (in a thread when `thread_ts` is given) and returns its `ts`.
    pub async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: String,
        blocks: Option<Vec<SlackBlock>>,
    ) -> Result<String, WebError> {
        let content = SlackMessageContent::new().with_text(text).opt_blocks(blocks);
        let request =
            SlackApiChatPostMessageRequest::new(channel.into(), content).opt_thread_ts(thread_ts.map(Into::into));
        let session = self.client.open_session(&self.token);
        let posted = self.retrying("chat.postMessage", || session.chat_post_message(&request)).await?;
        Ok(posted.ts.to_string())
    }

    /// Replaces the text and blocks of a message the bot posted.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: String,
        blocks: Option<Vec<SlackBlock>>,
    ) -> Result<(), WebError> {
        // An empty block list removes blocks left by an earlier edit.
        let content = SlackMessageContent::new().with_text(text).with_blocks(blocks.unwrap_or_default());
        let request = SlackApiChatUpdateRequest::new(channel.into(), content, ts.into());
        let session = self.client.open_session(&self.token);
        self.retrying("chat.update", || session.chat_update(&request)).await.map(|_| ())
    }

    /// The messages of a thread, oldest first, as Slack's JSON.
    pub async fn replies(&self, channel: &str, thread_ts: &str) -> Result<Vec<Value>, WebError> {
        let request =
            SlackApiConversationsRepliesRequest::new(channel.into(), thread_ts.into()).with_limit(HISTORY_LIMIT);
        let session = self.client.open_session(&self.token);
        let page = self.retrying("conversations.replies", || session.conversations_replies(&request)).await?;
        Ok(page.messages.iter().filter_map(|m| serde_json::to_value(m).ok()).collect())
    }

    /// A permanent link to a message, if Slack gives one.
    pub async fn permalink(&self, channel: &str, ts: &str) -> Option<String> {
        let request = SlackApiChatGetPermalinkRequest::new(channel.into(), ts.into());
        let session = self.client.open_session(&self.token);
        match self.retrying("chat.getPermalink", || session.chat_get_permalink(&request)).await {
            Ok(link) => Some(link.permalink.to_string()),
            Err(error) => {
                tracing::warn!(%error, "Could not get a message permalink.");
                None
            }
        }
    }

    fn check_url(&self, url: &str, slack_hosts: &[&str]) -> Result<Url, WebError> {
        let parsed = Url::parse(url).map_err(|_| WebError::ForeignHost("an unparseable URL".into()))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let slack = slack_hosts.iter().any(|h| host == *h || host.ends_with(&format!(".{h}")));
        let ok_scheme = parsed.scheme() == "https" || (self.allow_http && parsed.scheme() == "http");
        if ok_scheme && (slack || self.api_host.as_deref() == Some(host.as_str())) {
            Ok(parsed)
        } else {
            Err(WebError::ForeignHost(host))
        }
    }

    /// Downloads a private file with `Authorization: Bearer <bot token>`, reading at most `max`
    /// bytes.
    pub async fn download(&self, url: &str, max: u64) -> Result<Vec<u8>, WebError> {
        let url = self.check_url(url, &["slack.com", "slack-files.com"])?;
        for attempt in 0..=MAX_RETRIES {
            let request = hyper::Request::get(url.as_str())
                .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.bearer.expose_secret()))
                .body(Full::new(Bytes::new()))
                .map_err(|e| WebError::Transport(e.to_string()))?;
            let response = self.http.request(request).await.map_err(|e| WebError::Transport(e.to_string()))?;
            let status = response.status();
            if status == hyper::StatusCode::TOO_MANY_REQUESTS && attempt < MAX_RETRIES {
                tokio::time::sleep(retry_after(response.headers())).await;
                continue;
            }
            if !status.is_success() {
                return Err(WebError::Status(status.as_u16()));
            }
            let declared = response
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max) {
                return Err(WebError::TooLarge(max));
            }
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            let body = Limited::new(response.into_body(), limit).collect().await.map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    WebError::TooLarge(max)
                } else {
                    WebError::Transport(error.to_string())
                }
            })?;
            return Ok(body.to_bytes().to_vec());
        }
        Err(WebError::Status(429))
    }

    /// Sends an ephemeral reply to a slash command's `response_url` (no token needed).
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), WebError> {
        let url = self.check_url(response_url, &["slack.com"])?;
        let body = serde_json::json!({"response_type": "ephemeral", "text": text});
        let request = hyper::Request::post(url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| WebError::Transport(e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| WebError::Transport(e.to_string()))?;
        let status = response.status();
        // Drain the body so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() { Ok(()) } else { Err(WebError::Status(status.as_u16())) }
    }
}

fn retry_after(headers: &hyper::HeaderMap) -> Duration {
    headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(api_base: &str) -> SlackWeb {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = Config::new("xoxb-1-2");
        config.api_base = api_base.into();
        SlackWeb::new(&config).expect("TLS set-up")
    }

    /// The bot token goes only to Slack's own hosts (and the configured API host), over HTTPS.
    #[test]
    fn only_slack_hosts_over_https_are_trusted_with_the_token() {
        let slack = web("https://slack.com/api");
        let files = ["slack.com", "slack-files.com"];
        for url in ["https://files.slack.com/files-pri/T1-F1/a.pdf", "https://slack.com/x", "https://slack-files.com/x"]
        {
            assert!(slack.check_url(url, &files).is_ok(), "{url} refused");
        }
        for url in [
            "https://evilslack.com/x",
            "https://slack.com.evil.example/x",
            "https://example.org/files.slack.com",
            "http://files.slack.com/x",
            "ftp://files.slack.com/x",
            "not a url",
        ] {
            assert!(matches!(slack.check_url(url, &files), Err(WebError::ForeignHost(_))), "{url} trusted");
        }
        // A response URL must be slack.com's; the files host is not enough.
        assert!(slack.check_url("https://slack-files.com/x", &["slack.com"]).is_err());
    }

    #[test]
    fn a_plain_http_api_base_trusts_its_own_host_only() {
        let double = web("http://127.0.0.1:9/api");
        assert!(double.check_url("http://127.0.0.1:9/files/a.pdf", &["slack.com"]).is_ok());
        assert!(double.check_url("http://127.0.0.2:9/files/a.pdf", &["slack.com"]).is_err());
        assert!(double.check_url("http://files.slack.com/a.pdf", &["slack.com"]).is_ok(), "http is allowed here");
    }
}
