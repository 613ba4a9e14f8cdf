//! Downloading the file a message carries, never more than the bot's limit.
//!
//! `info.size` is only the sender's word (and often missing), so the bytes are streamed from the
//! homeserver's media repository and the download stops as soon as it passes the limit, instead
//! of reading the whole file into memory first. An encrypted file is decrypted once it is in
//! (AES-CTR keeps the size, so the limit holds for the plain text too).

use std::io::Read;
use std::time::Duration;

use futures::{Stream, StreamExt};
use matrix_sdk::Client;
use matrix_sdk::reqwest::StatusCode;
use matrix_sdk::ruma::MxcUri;
use matrix_sdk::ruma::events::room::MediaSource;

/// Longest time one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a file was not downloaded.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// It is larger than the limit; the download was stopped there.
    #[error("larger than the limit")]
    TooLarge,
    /// The homeserver did not deliver it, or it could not be decrypted (the text is for logs).
    #[error("{0}")]
    Failed(String),
}

/// Reads `chunks` to the end, or stops with [`DownloadError::TooLarge`] as soon as more than
/// `max` bytes came (or `declared`, a `Content-Length`, says more will): no chunk after that is
/// read.
pub async fn read_capped<S, B, E>(chunks: S, declared: Option<u64>, max: u64) -> Result<Vec<u8>, DownloadError>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    if declared.is_some_and(|len| len > max) {
        return Err(DownloadError::TooLarge);
    }
    let mut chunks = std::pin::pin!(chunks);
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| DownloadError::Failed(e.to_string()))?;
        if (out.len() + chunk.as_ref().len()) as u64 > max {
            return Err(DownloadError::TooLarge);
        }
        out.extend_from_slice(chunk.as_ref());
    }
    Ok(out)
}

/// Downloads (and decrypts) the file at `source`, at most `max` bytes of it.
pub async fn download(client: &Client, source: &MediaSource, max: u64) -> Result<Vec<u8>, DownloadError> {
    let fetch = async {
        match source {
            MediaSource::Plain(uri) => fetch(client, uri, max).await,
            MediaSource::Encrypted(file) => {
                let cipher = fetch(client, &file.url, max).await?;
                let mut cursor = std::io::Cursor::new(cipher);
                let info = file.as_ref().clone().into();
                let mut reader = matrix_sdk_crypto::AttachmentDecryptor::new(&mut cursor, info)
                    .map_err(|e| DownloadError::Failed(format!("cannot decrypt: {e}")))?;
                let mut plain = Vec::new();
                reader.read_to_end(&mut plain).map_err(|e| DownloadError::Failed(format!("cannot decrypt: {e}")))?;
                Ok(plain)
            }
        }
    };
    tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
        .await
        .unwrap_or_else(|_| Err(DownloadError::Failed("timed out".into())))
}

/// Streams the media at `uri` from the homeserver: the authenticated endpoint (client-server
/// API v1.11), or the older unauthenticated one when the homeserver does not know it.
async fn fetch(client: &Client, uri: &MxcUri, max: u64) -> Result<Vec<u8>, DownloadError> {
    let (server, media_id) = uri.parts().map_err(|e| DownloadError::Failed(format!("bad media URI {uri}: {e}")))?;
    let base = client.homeserver().to_string();
    let base = base.trim_end_matches('/').to_owned();
    let token = client.access_token().unwrap_or_default();
    let get = |path: &str| {
        let request = client.http_client().get(format!("{base}/{path}/{server}/{media_id}")).bearer_auth(&token);
        async move { request.send().await.map_err(|e| DownloadError::Failed(format!("cannot fetch {uri}: {e}"))) }
    };
    let mut response = get("_matrix/client/v1/media/download").await?;
    if matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let code = body["errcode"].as_str().unwrap_or_default().to_owned();
        if status == StatusCode::NOT_FOUND && code != "M_UNRECOGNIZED" {
            return Err(DownloadError::Failed(format!("HTTP {status} ({code}) for {uri}")));
        }
        response = get("_matrix/media/v3/download").await?;
    }
    if !response.status().is_success() {
        return Err(DownloadError::Failed(format!("HTTP {} for {uri}", response.status())));
    }
    let declared = response.content_length();
    let chunks = futures::stream::unfold(response, |mut response| async move {
        response.chunk().await.transpose().map(|chunk| (chunk, response))
    });
    read_capped(chunks, declared, max).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A stream of `n` chunks of `size` bytes that counts how many were read.
    fn chunks(n: usize, size: usize, read: Arc<AtomicUsize>) -> impl Stream<Item = Result<Vec<u8>, String>> {
        futures::stream::iter(0..n).map(move |_| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok(vec![b'a'; size])
        })
    }

    #[tokio::test]
    async fn a_file_over_the_limit_is_not_read_past_it() {
        let read = Arc::new(AtomicUsize::new(0));
        // 1,000 chunks of 1 kB (1 MB) against a 4 kB limit, with no declared size.
        let result = read_capped(chunks(1000, 1000, read.clone()), None, 4_000).await;
        assert!(matches!(result, Err(DownloadError::TooLarge)), "{result:?}");
        assert_eq!(read.load(Ordering::SeqCst), 5, "stopped at the chunk that passed the limit");

        let read = Arc::new(AtomicUsize::new(0));
        let declared = read_capped(chunks(1000, 1000, read.clone()), Some(1_000_000), 4_000).await;
        assert!(matches!(declared, Err(DownloadError::TooLarge)));
        assert_eq!(read.load(Ordering::SeqCst), 0, "a Content-Length over the limit: nothing read");
    }

    #[tokio::test]
    async fn a_file_within_the_limit_is_read_whole() {
        let read = Arc::new(AtomicUsize::new(0));
        let bytes = read_capped(chunks(4, 1000, read.clone()), None, 4_000).await.unwrap();
        assert_eq!(bytes.len(), 4_000);
        let failed = read_capped(futures::stream::iter([Ok(vec![1u8]), Err("reset".to_owned())]), None, 10).await;
        assert!(matches!(failed, Err(DownloadError::Failed(e)) if e == "reset"));
    }
}
