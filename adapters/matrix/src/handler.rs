//! The bot's behaviour: one method per kind of Matrix event, calling the gateway.
//!
//! [`Handler::on_invite`] joins or declines invites; [`Handler::on_message`] decides (through
//! [`convert`](crate::convert)) whether a message is for the bot, fetches what the core needs
//! (power level, creators, parent space, thread history, file bytes) and replies in the thread of
//! the message (through [`stream`](crate::stream)). Every message the bot accepts gets a reply,
//! errors included.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use footnote_adapter::reports;
use footnote_adapter::{Actor, Claim, Gateway, Ledger, Origin, Question, Scope, Upload};
use futures::StreamExt;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::room::{ParentSpace, RelationsOptions};
use matrix_sdk::ruma::api::Direction;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{
    AddMentions, MessageType, OriginalSyncRoomMessageEvent, ReplyMetadata, ReplyWithinThread,
};
use matrix_sdk::ruma::events::room::power_levels::UserPowerLevel;
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, SyncMessageLikeEvent};
use matrix_sdk::ruma::{EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, UInt, UserId};
use matrix_sdk::{Room, RoomState};

use crate::config::Config;
use crate::convert::{self, Context, FileRef, Inbound, IngestTarget};
use crate::download::{self, DownloadError};
use crate::reply;
use crate::stream::{Reply, notice, stream_answer};

/// Once the bot has caught up, events stamped this long before it started still count as new
/// (clock skew between the homeserver and the bot). While it catches up, nothing stamped before
/// its start counts: that is what it missed while it was down, history it never answers.
const CLOCK_SKEW_MS: u64 = 5_000;

/// What the handler needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub prefix: String,
    pub max_file_bytes: u64,
    pub edit_interval: Duration,
    pub history_messages: u8,
    pub allowed_inviters: Vec<String>,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            prefix: config.command_prefix.clone(),
            max_file_bytes: config.max_file_bytes,
            edit_interval: config.edit_interval,
            history_messages: config.history_messages,
            allowed_inviters: config.allowed_inviters.clone(),
        }
    }
}

/// The bot's behaviour.
pub struct Handler {
    gateway: Arc<dyn Gateway>,
    /// The shared progress of the bot when several instances take turns running it.
    ledger: Option<Arc<dyn Ledger>>,
    settings: Settings,
    bot: OwnedUserId,
    started: MilliSecondsSinceUnixEpoch,
    /// Direct-message rooms joined in this run (before the homeserver echoes `m.direct` back).
    direct: Mutex<HashSet<OwnedRoomId>>,
    /// Rooms whose invite was answered in this run (an invite can arrive twice at start).
    invites: Mutex<HashSet<OwnedRoomId>>,
    /// True during the first sync after the start.
    catching_up: AtomicBool,
}

impl Handler {
    /// A handler for the bot `bot` that started at `started`.
    pub fn new(
        gateway: Arc<dyn Gateway>,
        settings: Settings,
        bot: OwnedUserId,
        started: MilliSecondsSinceUnixEpoch,
    ) -> Self {
        Handler {
            ledger: gateway.ledger(),
            gateway,
            settings,
            bot,
            started,
            direct: Mutex::new(HashSet::new()),
            invites: Mutex::new(HashSet::new()),
            catching_up: AtomicBool::new(true),
        }
    }

    /// Marks the end of the first sync: from now on, events are live.
    pub fn caught_up(&self) {
        self.catching_up.store(false, Ordering::Relaxed);
    }

    /// An invite event: acts on the bot's own pending invites.
    pub async fn on_invite(&self, event: StrippedRoomMemberEvent, room: Room) {
        if event.state_key != self.bot || event.content.membership != MembershipState::Invite {
            return;
        }
        if room.state() != RoomState::Invited {
            return;
        }
        self.answer_invite(&room, &event.sender, event.content.is_direct.unwrap_or(false)).await;
    }

    /// Joins when `inviter` (or their server) is allowed, else declines.
    pub async fn answer_invite(&self, room: &Room, inviter: &UserId, is_direct: bool) {
        if !self.invites.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(room.room_id().to_owned()) {
            return;
        }
        if !convert::invite_allowed(inviter, &self.settings.allowed_inviters) {
            tracing::info!(room = %room.room_id(), inviter = %inviter, "Declining an invite from someone not allowed.");
            if let Err(error) = room.leave().await {
                tracing::warn!(error = %error, room = %room.room_id(), "Could not decline an invite.");
            }
            return;
        }
        // Synapse can refuse a join that comes right after the invite; try a few times.
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=5 {
            match room.join().await {
                Ok(()) => break,
                Err(error) if attempt == 5 => {
                    tracing::warn!(error = %error, room = %room.room_id(), "Could not join a room after an invite.");
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        tracing::info!(room = %room.room_id(), inviter = %inviter, "Joined a room.");
        if is_direct {
            self.direct.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(room.room_id().to_owned());
            if let Err(error) = room.set_is_direct(true).await {
                tracing::warn!(error = %error, room = %room.room_id(), "Could not mark a room as direct.");
            }
        }
    }

    async fn is_direct(&self, room: &Room) -> bool {
        let joined_as_direct =
            self.direct.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(room.room_id());
        joined_as_direct || room.is_direct().await.unwrap_or(false)
    }

    /// Whether an event stamped `ts` is new: decide it when the sync delivers the event (the
    /// answer itself runs later, in a task of its own).
    pub fn is_new(&self, ts: MilliSecondsSinceUnixEpoch) -> bool {
        let skew = if self.catching_up.load(Ordering::Relaxed) { 0 } else { CLOCK_SKEW_MS };
        convert::is_fresh(ts, self.started, skew)
    }

    /// A message event (already found [new](Self::is_new)): answers it when it is for the bot.
    pub async fn on_message(&self, event: OriginalSyncRoomMessageEvent, room: Room) {
        if room.state() != RoomState::Joined || event.sender == self.bot {
            return;
        }
        let direct = self.is_direct(&room).await;
        let bot_member = room.get_member_no_sync(&self.bot).await.ok().flatten();
        let bot_name = bot_member.as_ref().and_then(|m| m.display_name()).map(str::to_owned);
        let cx = Context { bot: &self.bot, bot_name: bot_name.as_deref(), prefix: &self.settings.prefix, direct };
        let Some(inbound) = convert::inbound(&event, &cx) else { return };
        let Some(earlier_reply) = self.claim(&event.event_id).await else { return };
        let thread = convert::thread_root(&event);
        let scope =
            convert::scope(room.room_id().as_str(), space_of(&room).await, thread.as_ref().map(ToString::to_string));
        let actor = actor_of(&room, &event.sender).await;
        let prefix = &self.settings.prefix;
        let mut out = Reply::new(&room, &event).noted_in(self.ledger.clone()).continuing(earlier_reply);
        let text = match inbound {
            Inbound::Help => reply::help_text(prefix),
            Inbound::Ask(text) => {
                let history = match &thread {
                    Some(root) => self.thread_history(&room, root, &event, &cx).await,
                    None => Vec::new(),
                };
                let events = self.gateway.ask_stream(&scope, &actor, Question { text, history }).await;
                stream_answer(&mut out, events, self.settings.edit_interval).await;
                self.finish(&event.event_id).await;
                return;
            }
            Inbound::Ingest(target) => self.ingest(&room, &scope, &actor, &event, target).await,
            Inbound::Warmup => match self.gateway.warmup(&scope, &actor).await {
                Ok(report) => reports::warmup_text(&report, reports::PLAIN),
                Err(error) => error.user_message(),
            },
            Inbound::Sources => match self.gateway.documents(&scope, &actor).await {
                Ok(documents) => {
                    reports::documents_text(&documents, reports::PLAIN, &reply::no_documents(prefix), usize::MAX)
                }
                Err(error) => error.user_message(),
            },
            Inbound::Forget(id) if id.is_empty() => format!("Give the id of a document from {prefix}sources."),
            Inbound::Forget(id) => match self.gateway.forget(&scope, &actor, &id).await {
                Ok(receipt) => reports::forget_text(&receipt, reports::PLAIN),
                Err(error) => error.user_message(),
            },
            Inbound::Status => match self.gateway.status(&scope, &actor).await {
                Ok(status) => reports::status_text(&status, reports::PLAIN),
                Err(error) => error.user_message(),
            },
            Inbound::Unknown(word) => format!("I don't know {prefix}{word}. {}", reply::help_text(prefix)),
        };
        out.say(&text).await;
        self.finish(&event.event_id).await;
    }

    /// Takes charge of a message for the bot. `None`: not this instance's to handle (finished
    /// already, or the shared ledger cannot be reached: then the lease is about to be lost and
    /// the next holder handles it). Otherwise the reply an earlier holder started, if any.
    async fn claim(&self, id: &EventId) -> Option<Option<OwnedEventId>> {
        let Some(ledger) = &self.ledger else { return Some(None) };
        match ledger.claim(id.as_str(), "").await {
            Ok(Claim::New) => Some(None),
            Ok(Claim::Resumed { note }) => {
                tracing::info!(event = %id, "Taking over a message another instance did not finish.");
                Some(OwnedEventId::try_from(note).ok())
            }
            Ok(Claim::Taken) => None,
            Err(error) => {
                tracing::warn!(error = %error, event = %id, "Could not claim a message; it is left to the next holder.");
                None
            }
        }
    }

    /// Records a claimed message as answered.
    async fn finish(&self, id: &EventId) {
        if let Some(ledger) = &self.ledger
            && let Err(error) = ledger.finish(id.as_str()).await
        {
            tracing::warn!(error = %error, event = %id, "Could not record a message as answered.");
        }
    }

    /// A message the bot could not decrypt (its key never reached the bot's device). In a DM it
    /// was surely meant for the bot, so the sender is told; elsewhere it is only logged.
    pub async fn on_undecryptable(&self, event: OriginalSyncRoomEncryptedEvent, room: Room) {
        if room.state() != RoomState::Joined || event.sender == self.bot {
            return;
        }
        tracing::warn!(room = %room.room_id(), event = %event.event_id, sender = %event.sender, "Could not decrypt a message.");
        if !self.is_direct(&room).await {
            return;
        }
        // An instance taking the bot over has a device of its own, which cannot decrypt what was
        // sent before it existed: only what nobody answered gets this reply.
        if self.claim(&event.event_id).await.is_none() {
            return;
        }
        let body = reply::text_bodies(reply::UNDECRYPTABLE).swap_remove(0);
        let metadata = ReplyMetadata::new(&event.event_id, &event.sender, None);
        let content = notice(&body).make_for_thread(metadata, ReplyWithinThread::No, AddMentions::No);
        if let Err(error) = room.send(content).await {
            tracing::warn!(error = %error, room = %room.room_id(), "Could not send a reply to Matrix.");
        }
        self.finish(&event.event_id).await;
    }

    /// Ingests what `!ingest` (or a file sent in a DM) points at; returns the line to show.
    async fn ingest(
        &self,
        room: &Room,
        scope: &Scope,
        actor: &Actor,
        event: &OriginalSyncRoomMessageEvent,
        target: IngestTarget,
    ) -> String {
        let prefix = &self.settings.prefix;
        match target {
            IngestTarget::Missing => {
                format!("Reply to a file (or a text message) with {prefix}ingest to add it to this room's documents.")
            }
            IngestTarget::File(file) => {
                let origin = convert::origin(
                    room.room_id().as_str(),
                    event.event_id.as_str(),
                    &event.sender,
                    event.origin_server_ts,
                );
                self.ingest_file(room, scope, actor, &file, origin).await
            }
            IngestTarget::RepliedTo(id) => {
                let target = match room.event(&id, None).await {
                    Ok(target) => target,
                    Err(error) => {
                        tracing::warn!(error = %error, event = %id, "Could not fetch the event to ingest.");
                        return "I couldn't fetch the message you replied to; try again. Nothing was added.".into();
                    }
                };
                if matches!(target.kind, TimelineEventKind::UnableToDecrypt { .. }) {
                    return "I couldn't decrypt the message you replied to (I may have joined after it was sent). \
                            Send the file again. Nothing was added."
                        .into();
                }
                let Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(
                    SyncMessageLikeEvent::Original(original),
                ))) = target.raw().deserialize()
                else {
                    return format!("The message you replied to has no file or text to add. {}", ingest_hint(prefix));
                };
                let origin = convert::origin(
                    room.room_id().as_str(),
                    original.event_id.as_str(),
                    &original.sender,
                    original.origin_server_ts,
                );
                if let Some(file) = convert::file_ref(&original.content.msgtype) {
                    return self.ingest_file(room, scope, actor, &file, origin).await;
                }
                match &original.content.msgtype {
                    MessageType::Text(text) if !convert::strip_reply_fallback(&text.body).trim().is_empty() => {
                        let body = convert::strip_reply_fallback(&text.body).trim().to_owned();
                        let upload = convert::snippet_upload(&body, original.event_id.as_str(), origin);
                        self.send_upload(scope, actor, upload).await
                    }
                    _ => format!("The message you replied to has no file or text to add. {}", ingest_hint(prefix)),
                }
            }
        }
    }

    /// Checks, downloads (decrypting an encrypted file) and ingests one file.
    async fn ingest_file(&self, room: &Room, scope: &Scope, actor: &Actor, file: &FileRef, origin: Origin) -> String {
        if let Err(refusal) = convert::check_size(file, self.settings.max_file_bytes) {
            return refusal;
        }
        // The declared size may be missing or false: the download itself stops at the limit.
        let bytes = match download::download(&room.client(), &file.source, self.settings.max_file_bytes).await {
            Ok(bytes) => bytes,
            Err(DownloadError::TooLarge) => return convert::over_limit(&file.name, self.settings.max_file_bytes),
            Err(DownloadError::Failed(error)) => {
                tracing::warn!(error = %error, file = %file.name, "Could not download a file.");
                return format!(
                    "I couldn't download (or decrypt) “{}”; try sending it again. Nothing was added.",
                    file.name
                );
            }
        };
        self.send_upload(scope, actor, convert::upload(file, bytes, origin)).await
    }

    async fn send_upload(&self, scope: &Scope, actor: &Actor, upload: Upload) -> String {
        let name = upload.file_name.clone();
        match self.gateway.ingest(scope, actor, upload).await {
            Ok(receipt) => receipt.summary(),
            Err(error) => format!("“{name}”: {}", error.user_message()),
        }
    }

    /// The thread's earlier messages as turns, oldest first: its root and the thread's events
    /// (with the edits of the bot's streamed answers), decrypted.
    async fn thread_history(
        &self,
        room: &Room,
        root: &OwnedEventId,
        event: &OriginalSyncRoomMessageEvent,
        cx: &Context<'_>,
    ) -> Vec<footnote_adapter::Turn> {
        if self.settings.history_messages == 0 {
            return Vec::new();
        }
        let mut raw = Vec::new();
        match room.event(root, None).await {
            Ok(root) => raw.push(root.into_raw()),
            Err(error) => tracing::warn!(error = %error, thread = %root, "Could not fetch a thread's root."),
        }
        let options =
            RelationsOptions { dir: Direction::Backward, limit: UInt::new(100), recurse: true, ..Default::default() };
        match room.relations(root.clone(), options).await {
            Ok(relations) => raw.extend(relations.chunk.into_iter().map(|e| e.into_raw())),
            Err(error) => tracing::warn!(error = %error, thread = %root, "Could not read a thread's messages."),
        }
        let values: Vec<serde_json::Value> =
            raw.iter().filter_map(|r| serde_json::from_str(r.json().get()).ok()).collect();
        let prefix = self.settings.prefix.clone();
        let text_of = |body: &str| {
            let text = convert::strip_mention(body, cx);
            match convert::parse_command(&text, &prefix) {
                Some((word, args)) if word == "ask" && !args.is_empty() => Some(args),
                Some(_) => None,
                None => (!text.is_empty()).then_some(text),
            }
        };
        convert::thread_history(
            &values,
            &self.bot,
            event.event_id.as_str(),
            usize::from(self.settings.history_messages),
            text_of,
        )
    }
}

fn ingest_hint(prefix: &str) -> String {
    format!("Reply with {prefix}ingest to a file, or to a text message.")
}

/// The space a room belongs to: a parent space that lists the room back, or whose `m.space.parent`
/// event was sent by someone with the power to; a room's bare claim is not enough.
pub async fn space_of(room: &Room) -> Option<String> {
    let parents = match room.parent_spaces().await {
        Ok(parents) => parents,
        Err(error) => {
            tracing::debug!(error = %error, room = %room.room_id(), "Could not read the room's parent spaces.");
            return None;
        }
    };
    let mut parents = std::pin::pin!(parents);
    while let Some(parent) = parents.next().await {
        match parent {
            Ok(ParentSpace::Reciprocal(space) | ParentSpace::WithPowerlevel(space)) => {
                return Some(space.room_id().to_string());
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(error = %error, "Could not check a parent space."),
        }
    }
    None
}

/// The sender as the core sees them: power level, creator (owner), display name.
pub async fn actor_of(room: &Room, sender: &UserId) -> Actor {
    let power = match room.get_user_power_level(sender).await {
        Ok(UserPowerLevel::Infinite) => None,
        Ok(UserPowerLevel::Int(level)) => Some(i64::from(level)),
        Ok(_) => Some(0),
        Err(error) => {
            tracing::debug!(error = %error, "Could not read the power levels.");
            Some(0)
        }
    };
    let is_creator = room.creators().unwrap_or_default().iter().any(|c| c == sender);
    let display =
        room.get_member_no_sync(sender).await.ok().flatten().and_then(|m| m.display_name().map(str::to_owned));
    convert::actor(sender, display, power, is_creator)
}
