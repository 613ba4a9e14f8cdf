//! The framed protocol between the service and an extraction worker, over the worker's stdin and
//! stdout. Every message is a frame: a 4-byte little-endian length, then that many bytes.
//!
//! 1. worker → service, once, when it is ready for work: a [`Hello`] (JSON);
//! 2. service → worker, per file: a [`Job`] (JSON), then a frame with the file's bytes;
//! 3. worker → service: the [`Reply`] (JSON): the chunks, or why the file was refused.
//!
//! The worker then waits for the next job; the end of its input ends it. It writes nothing else
//! to stdout (its log goes to stderr).

use std::io::{self, Read, Write};

use footnote_adapter::IngestError;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Chunked, Limits};

/// Names this protocol in the [`Hello`]; a worker speaking another one is not used.
pub const PROTOCOL: &str = "footnote-extract/1";

/// Largest [`Job`] or [`Hello`] frame.
pub const MAX_HEADER: usize = 64 * 1024;

/// The worker's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL`].
    pub protocol: String,
    /// The worker binary's version, which must be the service's own.
    pub version: String,
}

impl Hello {
    /// The hello of this build.
    pub fn current() -> Hello {
        Hello { protocol: PROTOCOL.into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// One file to read; its bytes follow in the next frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub file_name: String,
    pub mime: Option<String>,
    pub limits: Limits,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
}

/// The worker's answer to a [`Job`].
pub type Reply = Result<Chunked, IngestError>;

/// Reads one frame of at most `max` bytes; `None` at the end of the input before a frame.
pub fn read_frame(reader: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes (at most {max})")));
    }
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Writes one frame and flushes it.
pub fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    writer.write_all(&frame_len(payload)?)?;
    writer.write_all(payload)?;
    writer.flush()
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame_async(reader: &mut (impl AsyncRead + Unpin), max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes (at most {max})")));
    }
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Writes one frame and flushes it.
pub async fn write_frame_async(writer: &mut (impl AsyncWrite + Unpin), payload: &[u8]) -> io::Result<()> {
    writer.write_all(&frame_len(payload)?).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

fn frame_len(payload: &[u8]) -> io::Result<[u8; 4]> {
    u32::try_from(payload.len())
        .map(u32::to_le_bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame over 4 GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversize_frames_are_refused() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        write_frame(&mut wire, b"").unwrap();
        let mut reader = &wire[..];
        assert_eq!(read_frame(&mut reader, 16).unwrap(), Some(b"hello".to_vec()));
        assert_eq!(read_frame(&mut reader, 16).unwrap(), Some(Vec::new()));
        assert_eq!(read_frame(&mut reader, 16).unwrap(), None);
        let mut reader = &wire[..];
        assert_eq!(read_frame(&mut reader, 4).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let reply: Reply = Err(IngestError::Empty);
        let json = serde_json::to_vec(&reply).unwrap();
        assert_eq!(serde_json::from_slice::<Reply>(&json).unwrap(), reply);
    }
}
