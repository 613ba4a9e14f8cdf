//! Pure mapping from Matrix events (ruma's types) to gateway calls.
//!
//! Nothing here performs I/O: the handler fetches what it needs (power levels, creators, the
//! replied-to event, thread history, file bytes) and these functions decide whether a message is
//! for the bot and what it asks, and the [`Scope`], [`Actor`], [`Question`] and [`Upload`] the
//! core sees. The tests feed them event JSON in the shapes of the client-server spec.

pub use footnote_adapter::render::human_bytes;
use footnote_adapter::render::rfc3339_utc;
use footnote_adapter::{Actor, Command, Origin, Role, Scope, Turn, Upload};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::events::room::message::{MessageType, OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, UserId};
use serde_json::Value;

/// The platform name the core sees in every [`Scope`].
pub const PLATFORM: &str = "matrix";
/// Power level from which a sender is reported with the `admin` role (Matrix's "Admin").
pub const ADMIN_LEVEL: i64 = 100;
/// Power level from which a sender is reported with the `moderator` role.
pub const MODERATOR_LEVEL: i64 = 50;

/// Who the bot is, and how it was addressed, for deciding whether a message is for it.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The bot's user id.
    pub bot: &'a UserId,
    /// The bot's display name in the room, if it has one (mention pills show it).
    pub bot_name: Option<&'a str>,
    /// The command prefix, such as `!`.
    pub prefix: &'a str,
    /// True in a direct-message room, where every message is for the bot.
    pub direct: bool,
}

/// A file carried by a message event, as its metadata describes it.
#[derive(Clone, Debug)]
pub struct FileRef {
    pub name: String,
    pub mime: Option<String>,
    /// The size the sender declared (`info.size`), checked before downloading.
    pub size: Option<u64>,
    /// Where to download it; an encrypted file carries its key here.
    pub source: MediaSource,
}

impl PartialEq for FileRef {
    fn eq(&self, other: &Self) -> bool {
        let source = |f: &FileRef| serde_json::to_value(&f.source).ok();
        self.name == other.name && self.mime == other.mime && self.size == other.size && source(self) == source(other)
    }
}

/// What `!ingest` should store.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestTarget {
    /// A file sent in this very event (a file sent to the bot in a DM).
    File(FileRef),
    /// The event the command replies to (a file, or a text snippet).
    RepliedTo(OwnedEventId),
    /// `!ingest` with nothing to ingest.
    Missing,
}

/// What a message asks the bot to do; `!ingest` names its [`IngestTarget`].
pub type Inbound = Command<IngestTarget>;

/// The file an event carries: `m.file`, `m.image`, `m.audio`, `m.video`.
pub fn file_ref(msgtype: &MessageType) -> Option<FileRef> {
    let size = |s: Option<matrix_sdk::ruma::UInt>| s.map(u64::from);
    match msgtype {
        MessageType::File(f) => Some(FileRef {
            name: f.filename.clone().unwrap_or_else(|| f.body.clone()),
            mime: f.info.as_ref().and_then(|i| i.mimetype.clone()),
            size: f.info.as_ref().and_then(|i| size(i.size)),
            source: f.source.clone(),
        }),
        MessageType::Image(f) => Some(FileRef {
            name: f.filename.clone().unwrap_or_else(|| f.body.clone()),
            mime: f.info.as_ref().and_then(|i| i.mimetype.clone()),
            size: f.info.as_ref().and_then(|i| size(i.size)),
            source: f.source.clone(),
        }),
        MessageType::Audio(f) => Some(FileRef {
            name: f.filename.clone().unwrap_or_else(|| f.body.clone()),
            mime: f.info.as_ref().and_then(|i| i.mimetype.clone()),
            size: f.info.as_ref().and_then(|i| size(i.size)),
            source: f.source.clone(),
        }),
        MessageType::Video(f) => Some(FileRef {
            name: f.filename.clone().unwrap_or_else(|| f.body.clone()),
            mime: f.info.as_ref().and_then(|i| i.mimetype.clone()),
            size: f.info.as_ref().and_then(|i| size(i.size)),
            source: f.source.clone(),
        }),
        _ => None,
    }
}

/// The event a message replies to (a plain reply, or a reply inside a thread that is not just
/// the thread fallback).
pub fn replied_to(event: &OriginalSyncRoomMessageEvent) -> Option<OwnedEventId> {
    match event.content.relates_to.as_ref()? {
        Relation::Reply(reply) => Some(reply.in_reply_to.event_id.clone()),
        Relation::Thread(thread) if !thread.is_falling_back => thread.in_reply_to.as_ref().map(|r| r.event_id.clone()),
        _ => None,
    }
}

/// The root of the thread a message was sent in, if any.
pub fn thread_root(event: &OriginalSyncRoomMessageEvent) -> Option<OwnedEventId> {
    match event.content.relates_to.as_ref()? {
        Relation::Thread(thread) => Some(thread.event_id.clone()),
        _ => None,
    }
}

/// Drops the legacy reply fallback (leading `> ` lines and the blank line after them).
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n').filter(|_| rest.starts_with("> ")) {
        rest = &rest[line_end + 1..];
    }
    if rest.starts_with("> ") { "" } else { rest.trim_start_matches('\n') }
}

/// True when the event mentions the bot: intentional mentions (`m.mentions`), or for older
/// clients the user id or display name in the body.
pub fn mentions_bot(event: &OriginalSyncRoomMessageEvent, cx: &Context<'_>) -> bool {
    if let Some(mentions) = &event.content.mentions {
        return mentions.user_ids.iter().any(|u| u == cx.bot);
    }
    let body = strip_reply_fallback(event.content.body());
    body.contains(cx.bot.as_str()) || cx.bot_name.is_some_and(|n| !n.is_empty() && body.starts_with(n))
}

/// Removes the bot's user id and a leading `Name:` / `Name,` pill text, and trims the rest.
pub fn strip_mention(text: &str, cx: &Context<'_>) -> String {
    let mut text = text.replace(cx.bot.as_str(), " ");
    if let Some(name) = cx.bot_name.filter(|n| !n.is_empty()) {
        let trimmed = text.trim_start();
        if let Some(rest) = trimmed.strip_prefix(name) {
            text = rest.to_owned();
        }
    }
    text.trim().trim_start_matches([':', ',']).trim().to_owned()
}

/// Reads a `!command args` line; `None` when `text` does not start with the prefix.
pub fn parse_command(text: &str, prefix: &str) -> Option<(String, String)> {
    let rest = text.trim_start().strip_prefix(prefix)?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if word.is_empty() {
        return None;
    }
    Some((word.to_lowercase(), args.trim().to_owned()))
}

/// Decides whether a message is for the bot and what it asks. The bot's own messages, edits,
/// notices and other bots' replies are ignored. `!ask`, a mention or any message in a DM asks;
/// `!ingest` ingests the replied-to event (or a file sent along in a DM); a file sent to the bot in
/// a DM is ingested without a command.
pub fn inbound(event: &OriginalSyncRoomMessageEvent, cx: &Context<'_>) -> Option<Inbound> {
    if event.sender == cx.bot || matches!(event.content.relates_to, Some(Relation::Replacement(_))) {
        return None;
    }
    let text = match &event.content.msgtype {
        MessageType::Text(t) => strip_reply_fallback(&t.body).to_owned(),
        MessageType::Emote(e) => strip_reply_fallback(&e.body).to_owned(),
        other => {
            let file = file_ref(other)?;
            return cx.direct.then_some(Inbound::Ingest(IngestTarget::File(file)));
        }
    };
    let mentioned = mentions_bot(event, cx);
    let text = if mentioned { strip_mention(&text, cx) } else { text.trim().to_owned() };
    if let Some((word, args)) = parse_command(&text, cx.prefix) {
        let command = Command::parse(&word, &args);
        if matches!(command, Command::Unknown(_)) && !(mentioned || cx.direct) {
            // Another bot's command in a shared room: not ours to answer.
            return None;
        }
        return Some(command.with_file(|| replied_to(event).map_or(IngestTarget::Missing, IngestTarget::RepliedTo)));
    }
    if !(mentioned || cx.direct) {
        return None;
    }
    Some(if text.is_empty() { Inbound::Help } else { Inbound::Ask(text) })
}

/// True when the event was sent after the bot started (with `slack` milliseconds of clock skew
/// allowed): older events are history and never answered.
pub fn is_fresh(ts: MilliSecondsSinceUnixEpoch, started: MilliSecondsSinceUnixEpoch, slack_ms: u64) -> bool {
    u64::from(ts.0) + slack_ms >= u64::from(started.0)
}

/// The scope of a room: `space` is the space the room belongs to (when it has a parent space),
/// `thread` the thread root the message was sent in.
pub fn scope(room: &str, space: Option<String>, thread: Option<String>) -> Scope {
    Scope { platform: PLATFORM.to_owned(), space, room: room.to_owned(), thread }
}

/// The actor of a message. `power` is the sender's power level (`None`: a creator in a room
/// version 12 room, which has unlimited power and is not listed in `m.room.power_levels`);
/// `is_creator` comes from `m.room.create`. Creators count as owners; power levels map to the
/// roles `admin` (100) and `moderator` (50), plus `power:N`.
pub fn actor(sender: &UserId, display_name: Option<String>, power: Option<i64>, is_creator: bool) -> Actor {
    let mut roles = Vec::new();
    match power {
        None => roles.push("admin".to_owned()),
        Some(level) => {
            if level >= ADMIN_LEVEL {
                roles.push("admin".to_owned());
            } else if level >= MODERATOR_LEVEL {
                roles.push("moderator".to_owned());
            }
            roles.push(format!("power:{level}"));
        }
    }
    Actor { user_id: sender.to_string(), display_name, roles, is_owner: is_creator || power.is_none() }
}

/// Whether an invite from `inviter` may be accepted: `allowed` lists user ids and server names.
pub fn invite_allowed(inviter: &UserId, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| entry == inviter.as_str() || entry == inviter.server_name().as_str())
}

/// A `matrix.to` link to an event, kept as a file's origin.
pub fn event_link(room: &str, event: &str) -> String {
    format!("https://matrix.to/#/{room}/{event}")
}

/// Where a file came from: the link to its event, its sender and its time (RFC 3339).
pub fn origin(room: &str, event: &str, sender: &UserId, ts: MilliSecondsSinceUnixEpoch) -> Origin {
    Origin { link: Some(event_link(room, event)), sender: Some(sender.to_string()), sent_at: rfc3339(ts) }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
pub fn rfc3339(ts: MilliSecondsSinceUnixEpoch) -> Option<String> {
    Some(rfc3339_utc(i64::try_from(u64::from(ts.0) / 1000).ok()?))
}

/// The upload of a downloaded file.
pub fn upload(file: &FileRef, bytes: Vec<u8>, origin: Origin) -> Upload {
    Upload { file_name: file.name.clone(), mime: file.mime.clone(), bytes, origin }
}

/// The upload of a text message (`!ingest` replying to a snippet): a `.txt` named after its
/// first words and its event, so that two snippets that start alike never share a name (a
/// document of the same name would be replaced).
pub fn snippet_upload(text: &str, event_id: &str, origin: Origin) -> Upload {
    let words: Vec<&str> = text.split_whitespace().take(6).collect();
    let stem: String = words.join(" ").chars().filter(|c| c.is_alphanumeric() || *c == ' ').take(60).collect();
    let tag: String = event_id.trim_start_matches('$').chars().filter(char::is_ascii_alphanumeric).take(10).collect();
    let stem = if stem.trim().is_empty() { "snippet".to_owned() } else { stem.trim().to_owned() };
    Upload {
        file_name: format!("{stem} ({tag}).txt"),
        mime: Some("text/plain".into()),
        bytes: text.as_bytes().to_vec(),
        origin,
    }
}

/// Refuses a file before downloading it when its declared size is over `max_bytes`. The text is
/// safe to show in the room.
pub fn check_size(file: &FileRef, max_bytes: u64) -> Result<(), String> {
    match file.size {
        Some(size) if size > max_bytes => Err(format!(
            "“{}” is {}, over this bot's limit of {}. Nothing was added.",
            file.name,
            human_bytes(size),
            human_bytes(max_bytes)
        )),
        _ => Ok(()),
    }
}

/// The reply to a file whose download passed `max_bytes` (its size was not declared, or was
/// declared smaller): the download was stopped. Safe to show in the room.
pub fn over_limit(name: &str, max_bytes: u64) -> String {
    format!(
        "“{name}” is over this bot's limit of {}, so I stopped downloading it. Nothing was added.",
        human_bytes(max_bytes)
    )
}

/// Turns the raw events of a thread (the root and what `/relations` returned, in any order,
/// decrypted, as JSON) into turns, oldest first: the bot's messages show their latest edit and
/// are the assistant's turns; edits themselves, the bot's progress placeholders, state and
/// non-message events, `skip` (the message being answered) and messages that are neither the
/// bot's nor addressed to it in a way `text_of` accepts are left out; the bot's answers lose their
/// sources list. At most `limit` turns, the
/// most recent ones.
pub fn thread_history(
    events: &[Value],
    bot: &UserId,
    skip: &str,
    limit: usize,
    text_of: impl Fn(&str) -> Option<String>,
) -> Vec<Turn> {
    let field =
        |e: &Value, path: &[&str]| path.iter().try_fold(e, |v, k| v.get(k)).and_then(Value::as_str).map(str::to_owned);
    // The latest edit of each event by its own sender.
    let mut edits: std::collections::HashMap<String, (u64, String)> = std::collections::HashMap::new();
    for e in events {
        if field(e, &["content", "m.relates_to", "rel_type"]).as_deref() != Some("m.replace") {
            continue;
        }
        let (Some(target), Some(body)) =
            (field(e, &["content", "m.relates_to", "event_id"]), field(e, &["content", "m.new_content", "body"]))
        else {
            continue;
        };
        let ts = e.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
        let sender = field(e, &["sender"]);
        let original = events.iter().find(|o| field(o, &["event_id"]).as_deref() == Some(&target));
        if original.is_some_and(|o| field(o, &["sender"]) != sender) {
            continue;
        }
        if edits.get(&target).is_none_or(|(at, _)| *at <= ts) {
            edits.insert(target, (ts, body));
        }
    }
    let mut turns: Vec<(u64, Turn)> = events
        .iter()
        .filter(|e| field(e, &["type"]).as_deref() == Some("m.room.message"))
        .filter(|e| field(e, &["content", "m.relates_to", "rel_type"]).as_deref() != Some("m.replace"))
        .filter_map(|e| {
            let id = field(e, &["event_id"])?;
            if id == skip {
                return None;
            }
            let ts = e.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
            let body = edits.get(&id).map(|(_, b)| b.clone()).or_else(|| field(e, &["content", "body"]))?;
            if field(e, &["sender"]).as_deref() == Some(bot.as_str()) {
                // The answer without its sources list: the next prompt numbers its own sources.
                let body = crate::reply::strip_progress(&body)?;
                let text = body.split("\n\nSources:\n").next().unwrap_or(&body).trim().to_owned();
                Some((ts, Turn { role: Role::Assistant, text }))
            } else {
                let text = text_of(strip_reply_fallback(&body))?;
                Some((ts, Turn { role: Role::User, text }))
            }
        })
        .collect();
    turns.sort_by_key(|(ts, _)| *ts);
    let skip_n = turns.len().saturating_sub(limit);
    turns.into_iter().skip(skip_n).map(|(_, t)| t).collect()
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
