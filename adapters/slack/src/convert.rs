//! Pure mapping from Slack's documented payloads to Footnote's plain data types.
//!
//! Events API bodies, Socket Mode envelopes (re-serialised from slack-morphism's typed events) and
//! slash-command form bodies all arrive here as JSON or form fields, so one code path, unit-tested
//! against Slack's documented shapes, decides what a payload means. Nothing here does I/O.

use std::collections::HashMap;

use footnote_adapter::render::rfc3339_utc;
use footnote_adapter::{Actor, Origin, Role, Scope, Turn, Upload};
use serde_json::Value;

/// The platform name reported in every [`Scope`].
pub const PLATFORM: &str = "slack";

/// What an event callback asks of the bot.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// A message addressed to the bot: a mention in a channel or a direct message.
    Message(Box<ChatMessage>),
    /// A `file_shared` notification. The message event carrying the same file says whether the
    /// bot was addressed, so this one is only logged.
    FileShared {
        /// Channel the file was shared in.
        channel: String,
        /// Slack's file id.
        file_id: String,
        /// Who shared it.
        user: String,
    },
    /// Nothing for the bot to do; the reason is for the debug log.
    Ignored(&'static str),
}

/// A mention or direct message, ready to be answered or ingested.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    /// Slack's `event_id` of the callback, used to drop retried deliveries.
    pub event_id: Option<String>,
    /// Where the answer is reported to the core: team, channel, thread.
    pub scope: Scope,
    /// Who asked.
    pub actor: Actor,
    /// Channel id the reply goes to.
    pub channel: String,
    /// The message's own `ts`.
    pub ts: String,
    /// The thread to answer in: the parent's `thread_ts`, or the message's `ts` to start one.
    pub reply_thread_ts: String,
    /// True when the message was written inside an existing thread (so it has history).
    pub in_thread: bool,
    /// The text with the bot's mention removed and Slack's HTML entities decoded.
    pub text: String,
    /// Files attached to the message.
    pub files: Vec<FileRef>,
}

impl ChatMessage {
    /// A key that names this message whichever event delivered it (mention or DM, retry or not).
    pub fn message_key(&self) -> String {
        format!("msg:{}:{}", self.channel, self.ts)
    }
}

/// A file attached to a Slack message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// Slack's file id (`F…`).
    pub id: String,
    /// The file name shown in Slack.
    pub name: String,
    /// The MIME type Slack reported.
    pub mime: Option<String>,
    /// The size in bytes Slack reported.
    pub size: Option<u64>,
    /// `url_private_download` (or `url_private`): needs the bot token as a bearer token.
    pub url: Option<String>,
}

impl FileRef {
    /// True when Slack reports the file as bigger than `max` bytes.
    pub fn too_large(&self, max: u64) -> bool {
        self.size.is_some_and(|size| size > max)
    }
}

/// What a slash command asks for. Files come with a mention, never with a command, so there is
/// no `ingest` to carry one.
pub type CommandAction = footnote_adapter::Command<std::convert::Infallible>;

/// A slash command invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct SlashCommand {
    /// What to do.
    pub action: CommandAction,
    /// Team and channel; slash commands carry no thread.
    pub scope: Scope,
    /// Who typed it.
    pub actor: Actor,
    /// Channel id the command was typed in.
    pub channel: String,
    /// Where delayed, ephemeral replies go (valid for 30 minutes).
    pub response_url: Option<String>,
}

/// Why a payload could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A field Slack always sends is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Maps an `event_callback` body (Events API, or the payload of a Socket Mode `events_api`
/// envelope). `bot_user_id` is the bot's own user id, used to strip its mention and to ignore
/// messages it wrote itself.
pub fn parse_event_callback(body: &Value, bot_user_id: Option<&str>) -> Inbound {
    let Some(event) = body.get("event") else {
        return Inbound::Ignored("no event in callback");
    };
    let event_id = str_field(body, "event_id").map(str::to_owned);
    let team = str_field(body, "team_id").or_else(|| str_field(event, "team")).map(str::to_owned);
    match str_field(event, "type") {
        Some("app_mention") => {
            message(event, event_id, team, bot_user_id).map_or_else(Inbound::Ignored, |m| Inbound::Message(Box::new(m)))
        }
        Some("message") => {
            if str_field(event, "channel_type") != Some("im") {
                return Inbound::Ignored("message outside a direct conversation");
            }
            match str_field(event, "subtype") {
                None | Some("file_share" | "thread_broadcast") => {}
                Some(_) => return Inbound::Ignored("message subtype the bot does not answer"),
            }
            if event.get("bot_id").is_some_and(|b| !b.is_null()) {
                return Inbound::Ignored("message from a bot");
            }
            message(event, event_id, team, bot_user_id).map_or_else(Inbound::Ignored, |m| Inbound::Message(Box::new(m)))
        }
        Some("file_shared") => {
            let file_id = str_field(event, "file_id")
                .or_else(|| event.get("file").and_then(|f| str_field(f, "id")))
                .unwrap_or_default();
            Inbound::FileShared {
                channel: str_field(event, "channel_id").unwrap_or_default().to_owned(),
                file_id: file_id.to_owned(),
                user: str_field(event, "user_id").unwrap_or_default().to_owned(),
            }
        }
        _ => Inbound::Ignored("event type the bot does not handle"),
    }
}

fn message(
    event: &Value,
    event_id: Option<String>,
    team: Option<String>,
    bot_user_id: Option<&str>,
) -> Result<ChatMessage, &'static str> {
    let user = str_field(event, "user").ok_or("message without a user")?;
    if bot_user_id == Some(user) {
        return Err("message from the bot itself");
    }
    let channel = str_field(event, "channel").ok_or("message without a channel")?;
    let ts = str_field(event, "ts").ok_or("message without a ts")?;
    let parent = str_field(event, "thread_ts");
    let in_thread = parent.is_some_and(|p| p != ts);
    let reply_thread_ts = parent.unwrap_or(ts).to_owned();
    let files = event.get("files").and_then(Value::as_array).map(|files| files.iter().filter_map(file_ref).collect());
    Ok(ChatMessage {
        event_id,
        scope: Scope {
            platform: PLATFORM.to_owned(),
            space: team,
            room: channel.to_owned(),
            thread: Some(reply_thread_ts.clone()),
        },
        actor: actor(user, None),
        channel: channel.to_owned(),
        ts: ts.to_owned(),
        reply_thread_ts,
        in_thread,
        text: clean_text(str_field(event, "text").unwrap_or_default(), bot_user_id),
        files: files.unwrap_or_default(),
    })
}

fn file_ref(file: &Value) -> Option<FileRef> {
    let id = str_field(file, "id")?;
    // A file Slack could not deliver (deleted, or hidden by the plan's limits) has no URL.
    let url = str_field(file, "url_private_download").or_else(|| str_field(file, "url_private"));
    Some(FileRef {
        id: id.to_owned(),
        name: str_field(file, "name").or_else(|| str_field(file, "title")).unwrap_or(id).to_owned(),
        mime: str_field(file, "mimetype").map(str::to_owned),
        size: file.get("size").and_then(Value::as_u64),
        url: url.map(str::to_owned),
    })
}

fn actor(user_id: &str, display_name: Option<&str>) -> Actor {
    Actor {
        user_id: user_id.to_owned(),
        display_name: display_name.map(str::to_owned),
        roles: Vec::new(),
        is_owner: false,
    }
}

/// Removes mentions of the bot (`<@U123>` or `<@U123|name>`) and decodes `&amp; &lt; &gt;`.
/// Without a known bot id, only a leading mention is removed.
pub fn clean_text(text: &str, bot_user_id: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text.trim_start();
    let mut leading = true;
    while let Some(start) = rest.find("<@") {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        let id = inner.split('|').next().unwrap_or(inner);
        let is_bot = bot_user_id.map_or(leading && start == 0, |bot| bot == id);
        out.push_str(&rest[..start]);
        if !is_bot {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
        leading = false;
    }
    out.push_str(rest);
    let joined = out.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Maps a slash command's fields (the form body of the Events API request, or the Socket Mode
/// payload) to what it asks for.
pub fn parse_command(form: &HashMap<String, String>) -> Result<SlashCommand, ConvertError> {
    let get = |key: &'static str| form.get(key).map(String::as_str).filter(|s| !s.is_empty());
    let command = get("command").ok_or(ConvertError::Missing("command"))?;
    let channel = get("channel_id").ok_or(ConvertError::Missing("channel_id"))?;
    let user = get("user_id").ok_or(ConvertError::Missing("user_id"))?;
    let text = clean_text(get("text").unwrap_or_default(), None);
    let action = match command.trim_start_matches('/') {
        "ask" => footnote_adapter::Command::parse("ask", &text),
        "warmup" => footnote_adapter::Command::Warmup,
        _ => {
            let (sub, rest) = text.split_once(' ').map_or((text.as_str(), ""), |(s, r)| (s, r.trim()));
            footnote_adapter::Command::parse(sub, rest)
        }
    };
    let action = match action.without_files() {
        CommandAction::Forget(id) if id.is_empty() => CommandAction::Help,
        other => other,
    };
    Ok(SlashCommand {
        action,
        scope: Scope {
            platform: PLATFORM.to_owned(),
            space: get("team_id").map(str::to_owned),
            room: channel.to_owned(),
            thread: None,
        },
        actor: actor(user, get("user_name")),
        channel: channel.to_owned(),
        response_url: get("response_url").map(str::to_owned),
    })
}

/// Turns string-valued JSON fields (a Socket Mode slash-command payload) into form fields.
pub fn form_from_json(value: &Value) -> HashMap<String, String> {
    value
        .as_object()
        .map(|object| object.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default()
}

/// The earlier turns of a thread from a `conversations.replies` page (oldest first), leaving out
/// the message being answered (`current_ts`) and anything after it. Messages written by the bot
/// (its user id or bot id) become assistant turns.
pub fn history_turns(
    messages: &[Value],
    bot_user_id: Option<&str>,
    bot_id: Option<&str>,
    current_ts: &str,
) -> Vec<Turn> {
    let current = ts_key(current_ts);
    messages
        .iter()
        .filter(|m| str_field(m, "ts").is_some_and(|ts| ts_key(ts) < current))
        .filter_map(|m| {
            let from_bot = (bot_user_id.is_some() && str_field(m, "user") == bot_user_id)
                || (bot_id.is_some() && str_field(m, "bot_id") == bot_id);
            let text = clean_text(str_field(m, "text").unwrap_or_default(), bot_user_id);
            (!text.is_empty()).then_some(Turn { role: if from_bot { Role::Assistant } else { Role::User }, text })
        })
        .collect()
}

/// Orders Slack timestamps (`"1515449522.000016"`) numerically without floating point.
fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    (secs.parse().unwrap_or(0), micros.parse().unwrap_or(0))
}

/// Builds the upload of a downloaded file, with a link back to the message it came from.
pub fn upload(file: &FileRef, bytes: Vec<u8>, message: &ChatMessage, permalink: Option<String>) -> Upload {
    Upload {
        file_name: file.name.clone(),
        mime: file.mime.clone(),
        bytes,
        origin: Origin {
            link: permalink,
            sender: Some(message.actor.user_id.clone()),
            sent_at: ts_to_rfc3339(&message.ts),
        },
    }
}

/// Converts a Slack `ts` (Unix seconds with a fraction) to an RFC 3339 UTC time.
pub fn ts_to_rfc3339(ts: &str) -> Option<String> {
    let secs: i64 = ts.split('.').next()?.parse().ok()?;
    Some(rfc3339_utc(secs))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
