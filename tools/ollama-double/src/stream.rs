//! NDJSON answer streams for `/api/chat` and `/api/generate`: a few words per line with
//! `created_at` timestamps, a final `done: true` line with stats, and the failure modes a test
//! can ask for (a cut connection, an `{"error": …}` line).

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};

/// Pause before a cut, so the chunks before it reach the client.
const FLUSH_PAUSE: Duration = Duration::from_millis(20);
/// Pause between the two halves of a streamed line, so they reach the client in two reads.
const SPLIT_PAUSE: Duration = Duration::from_millis(2);

/// Which endpoint's line shape to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `{"message": {"role": "assistant", "content": …}}`
    Chat,
    /// `{"response": …}`
    Generate,
}

/// Everything needed to write one answer.
pub struct Answer {
    pub endpoint: Endpoint,
    /// The model name as the request spelled it (Ollama echoes it).
    pub model: String,
    pub chunks: Vec<String>,
    pub done_reason: &'static str,
    pub started: Instant,
    pub load: Duration,
    pub prompt_eval_count: usize,
    pub token_delay: Duration,
    /// Close the connection after this many chunks, without a done line.
    pub cut_after: Option<usize>,
    /// Send this many chunks, then an `{"error": …}` line, then end.
    pub error_after: Option<(usize, String)>,
}

/// RFC 3339 with nanoseconds in UTC, the way Ollama writes `created_at`.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Answer {
    /// One line carrying `content` (not done).
    pub fn chunk_line(&self, content: &str) -> Value {
        let mut line = Map::new();
        line.insert("model".into(), json!(self.model));
        line.insert("created_at".into(), json!(now_rfc3339()));
        match self.endpoint {
            Endpoint::Chat => {
                line.insert("message".into(), json!({"role": "assistant", "content": content}));
            }
            Endpoint::Generate => {
                line.insert("response".into(), json!(content));
            }
        }
        line.insert("done".into(), json!(false));
        Value::Object(line)
    }

    /// The closing line with stats; `content` is the whole answer when not streaming.
    pub fn final_line(&self, content: &str, eval_started: Instant) -> Value {
        let mut line = self.chunk_line(content);
        if let Value::Object(map) = &mut line {
            map.insert("done".into(), json!(true));
            map.insert("done_reason".into(), json!(self.done_reason));
            map.insert("total_duration".into(), json!(nanos(self.started.elapsed()).max(1)));
            if !self.load.is_zero() {
                map.insert("load_duration".into(), json!(nanos(self.load)));
            }
            map.insert("prompt_eval_count".into(), json!(self.prompt_eval_count));
            map.insert("prompt_eval_duration".into(), json!(self.prompt_eval_count as u64 * 40_000 + 1));
            map.insert("eval_count".into(), json!(self.chunks.len()));
            map.insert("eval_duration".into(), json!(nanos(eval_started.elapsed()).max(1)));
        }
        line
    }

    /// The answer as one JSON object (`stream: false`), after waiting as long as streaming
    /// would have taken.
    pub async fn whole(self) -> Value {
        let eval_started = Instant::now();
        let limit = self.cut_after.map_or(self.chunks.len(), |n| n.min(self.chunks.len()));
        for _ in 0..limit {
            tokio::time::sleep(self.token_delay).await;
        }
        self.final_line(&self.chunks.concat(), eval_started)
    }

    /// The answer as NDJSON lines, each written in two parts a moment apart (as a real server's
    /// writes may arrive), so that a client must put a line back together across reads. A cut
    /// ends the body with an I/O error, which makes the server drop the connection without
    /// finishing the chunked body.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        self.lines().flat_map(|line| match line {
            Ok(line) if line.len() > 1 => {
                let mut middle = line.len() / 2;
                while std::str::from_utf8(&line[..middle]).is_err() {
                    middle -= 1;
                }
                let (head, tail) = (line.slice(..middle), line.slice(middle..));
                let tail = futures::stream::once(async move {
                    tokio::time::sleep(SPLIT_PAUSE).await;
                    Ok(tail)
                });
                futures::stream::once(async move { Ok(head) }).chain(tail).boxed()
            }
            other => futures::stream::once(async move { other }).boxed(),
        })
    }

    fn lines(self) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        let state = Progress { answer: self, next: 0, eval_started: Instant::now(), over: false };
        futures::stream::unfold(state, |mut s| async move {
            if s.over {
                return None;
            }
            let i = s.next;
            s.next += 1;
            let total = s.answer.chunks.len();
            if let Some((n, message)) = &s.answer.error_after
                && i == (*n).min(total)
            {
                s.over = true;
                return Some((Ok(ndjson(&json!({ "error": message }))), s));
            }
            if let Some(n) = s.answer.cut_after
                && i == n.min(total)
            {
                s.over = true;
                // Let the server flush the chunks already written before the connection drops.
                tokio::time::sleep(FLUSH_PAUSE).await;
                return Some((Err(io::Error::other("stream cut on purpose")), s));
            }
            if i < total {
                tokio::time::sleep(s.answer.token_delay).await;
                let line = s.answer.chunk_line(&s.answer.chunks[i]);
                return Some((Ok(ndjson(&line)), s));
            }
            s.over = true;
            let line = s.answer.final_line("", s.eval_started);
            Some((Ok(ndjson(&line)), s))
        })
    }
}

struct Progress {
    answer: Answer,
    next: usize,
    eval_started: Instant,
    over: bool,
}

/// One NDJSON line.
pub fn ndjson(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}
