//! Thin serenity glue: reacts to slash commands and messages by calling the gateway.
//!
//! [`Handler`] holds the logic and needs only something that implements [`CacheHttp`]: the
//! serenity `Context` in production, a bare [`Http`](serenity::all::Http) pointed at a recording
//! double in tests. [`Events`] is the `EventHandler` that forwards gateway events to it. Decisions
//! about payloads live in [`convert`](crate::convert), rendering in [`reply`](crate::reply).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use footnote_adapter::reports;
use footnote_adapter::{Actor, Claim, Gateway, Ledger, Question, Scope};
use serenity::all::{
    Attachment, CacheHttp, Channel, ChannelId, ChannelType, Command as SlashCommand, CommandInteraction, Context,
    CreateThread, EventHandler, GetMessages, GuildId, Interaction, Message, MessageId, Ready, UserId,
};

use crate::config::Config;
use crate::convert::{self, Command, Inbound};
use crate::reply;
use crate::stream::{Sink, stream_answer};

/// What the handler needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Attachments above this size are refused before download.
    pub max_attachment_bytes: u64,
    /// The least time between two edits of a streamed answer.
    pub edit_interval: Duration,
    /// How many earlier thread messages go into a follow-up question.
    pub history_messages: u8,
    /// Guilds to register commands in; global registration when empty.
    pub guilds: Vec<GuildId>,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            max_attachment_bytes: config.max_attachment_bytes,
            edit_interval: config.edit_interval,
            history_messages: config.history_messages,
            guilds: config.guilds.iter().map(|&g| GuildId::new(g)).collect(),
        }
    }
}

/// The bot's behaviour: one method per kind of Discord event.
pub struct Handler {
    gateway: Arc<dyn Gateway>,
    settings: Settings,
    bot: OnceLock<UserId>,
    /// The shared progress of the bot when several instances take turns running it.
    ledger: Option<Arc<dyn Ledger>>,
}

impl Handler {
    /// A handler calling `gateway`.
    pub fn new(gateway: Arc<dyn Gateway>, settings: Settings) -> Self {
        Handler { ledger: gateway.ledger(), gateway, settings, bot: OnceLock::new() }
    }

    /// Records that this instance handles event `id` (a message or an interaction), with where
    /// to tell the asker should it stop before finishing. False when it is not this instance's
    /// to handle (already done, or the ledger cannot be reached: the lease is then being lost).
    async fn claim(&self, id: &str, channel: ChannelId, message: Option<MessageId>, user: UserId) -> bool {
        let Some(ledger) = &self.ledger else { return true };
        let note = format!("{channel}/{}/{user}", message.map(|m| m.to_string()).unwrap_or_default());
        match ledger.claim(id, &note).await {
            Ok(Claim::Taken) => false,
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, event = id, "Could not claim an event; it is left to the next holder.");
                false
            }
        }
    }

    /// Records event `id` as handled.
    async fn finish(&self, id: &str) {
        if let Some(ledger) = &self.ledger
            && let Err(error) = ledger.finish(id).await
        {
            tracing::warn!(%error, event = id, "Could not record an event as handled.");
        }
    }

    /// After connecting: tells everyone whose question an instance that stopped was answering
    /// to ask again (Discord will not deliver it twice), in the channel they asked in.
    pub async fn tell_unfinished(&self, http: impl CacheHttp + Copy) {
        let Some(ledger) = &self.ledger else { return };
        let unfinished = match ledger.unfinished().await {
            Ok(unfinished) => unfinished,
            Err(error) => {
                tracing::warn!(%error, "Could not read what the previous instance left unfinished.");
                return;
            }
        };
        for (id, note) in unfinished {
            if !matches!(ledger.claim(&id, &note).await, Ok(Claim::Resumed { .. })) {
                continue;
            }
            let mut parts = note.split('/').map(|p| p.parse::<u64>().ok().filter(|v| *v != 0));
            let (channel, message, user) = (parts.next().flatten(), parts.next().flatten(), parts.next().flatten());
            if let Some(channel) = channel {
                tracing::info!(event = %id, "Telling an asker that their question was not finished.");
                let text = match (message, user) {
                    (None, Some(user)) => format!("<@{user}> {}", reply::RESTARTED),
                    _ => reply::RESTARTED.to_owned(),
                };
                Sink::channel(ChannelId::new(channel), message.map(MessageId::new)).say(http, &text).await;
            }
            self.finish(&id).await;
        }
    }

    /// Records the bot's own user id (from the Ready event), which mentions are matched against.
    pub fn set_bot_user(&self, id: UserId) {
        let _ = self.bot.set(id);
    }

    /// Registers the slash commands: in each configured guild, or globally.
    pub async fn register_commands(&self, http: impl CacheHttp) -> serenity::Result<()> {
        if self.settings.guilds.is_empty() {
            SlashCommand::set_global_commands(http.http(), convert::commands()).await?;
        } else {
            for guild in &self.settings.guilds {
                guild.set_commands(http.http(), convert::commands()).await?;
            }
        }
        Ok(())
    }

    /// Handles a slash command: acknowledges it at once (deferred), then completes the response.
    pub async fn handle_command(&self, http: impl CacheHttp + Copy, cmd: &CommandInteraction) {
        if let Err(error) = cmd.defer(http).await {
            tracing::warn!(error = %error, command = %cmd.data.name, "Could not acknowledge a command.");
            return;
        }
        let id = format!("interaction:{}", cmd.id);
        if !self.claim(&id, cmd.channel_id, None, cmd.user.id).await {
            return;
        }
        self.run_command(http, cmd).await;
        self.finish(&id).await;
    }

    async fn run_command(&self, http: impl CacheHttp + Copy, cmd: &CommandInteraction) {
        let scope = convert::command_scope(cmd);
        let owner = cmd.guild_id.and_then(|g| http.cache().and_then(|c| c.guild(g).map(|g| g.owner_id)));
        let actor = convert::command_actor(cmd, owner);
        let mut sink = Sink::Interaction(cmd);
        let text = match convert::parse_command(cmd) {
            Command::Ask(text) if text.is_empty() => reply::help_text().to_owned(),
            Command::Ask(text) => {
                let history = match &scope.thread {
                    Some(_) => self.thread_history(http, cmd.channel_id, None).await,
                    None => Vec::new(),
                };
                let question = convert::question(&text, history);
                let events = self.gateway.ask_stream(&scope, &actor, question).await;
                stream_answer(http, &mut sink, events, self.settings.edit_interval).await;
                return;
            }
            Command::Ingest(Some(attachment)) => {
                match convert::ingest_allowed_in(cmd.channel.as_ref().map(|c| c.kind)) {
                    Ok(()) => self.ingest_one(&scope, &actor, &attachment, convert::command_origin(cmd)).await,
                    Err(refusal) => refusal.to_owned(),
                }
            }
            Command::Ingest(None) => "Attach a file to `/ingest`.".to_owned(),
            Command::Warmup => match self.gateway.warmup(&scope, &actor).await {
                Ok(report) => reports::warmup_text(&report, reply::MARKUP),
                Err(error) => error.user_message(),
            },
            Command::Sources => match self.gateway.documents(&scope, &actor).await {
                Ok(documents) => reports::documents_text(&documents, reply::MARKUP, reply::NO_DOCUMENTS, usize::MAX),
                Err(error) => error.user_message(),
            },
            Command::Forget(id) if id.is_empty() => "Give the id of a document from `/sources`.".to_owned(),
            Command::Forget(id) => match self.gateway.forget(&scope, &actor, &id).await {
                Ok(receipt) => reports::forget_text(&receipt, reply::MARKUP),
                Err(error) => error.user_message(),
            },
            Command::Status => match self.gateway.status(&scope, &actor).await {
                Ok(status) => reports::status_text(&status, reply::MARKUP),
                Err(error) => error.user_message(),
            },
            Command::Help => reply::help_text().to_owned(),
            Command::Unknown(name) => {
                tracing::warn!(command = %name, "Unknown slash command; an old registration?");
                format!("I don't know `/{name}` any more. {}", reply::help_text())
            }
        };
        sink.say(http, &text).await;
    }

    /// Handles a message: a DM or a mention asks (in a new thread, or in the thread it was sent
    /// in, with that thread's history); a mention or DM with attachments ingests them.
    pub async fn handle_message(&self, http: impl CacheHttp + Copy, msg: &Message) {
        let bot = self.bot.get().copied().unwrap_or_default();
        let Some(inbound) = convert::inbound(msg, bot) else {
            return;
        };
        let id = format!("message:{}", msg.id);
        if !self.claim(&id, msg.channel_id, Some(msg.id), msg.author.id).await {
            return;
        }
        self.act(http, msg, inbound).await;
        self.finish(&id).await;
    }

    async fn act(&self, http: impl CacheHttp + Copy, msg: &Message, inbound: Inbound) {
        let thread = self.thread_of(http, msg).await;
        let thread_parent = thread.map(|(parent, _)| parent);
        let scope = convert::scope(msg.guild_id, msg.channel_id, thread_parent);
        let actor = convert::message_actor(msg, cached_admin(http, msg));
        match inbound {
            Inbound::Help => Sink::channel(msg.channel_id, Some(msg.id)).say(http, reply::help_text()).await,
            Inbound::Ingest(attachments) => {
                let mut lines = Vec::new();
                match convert::ingest_allowed_in(thread.map(|(_, kind)| kind)) {
                    Err(refusal) => lines.push(refusal.to_owned()),
                    Ok(()) => {
                        for attachment in &attachments {
                            let origin = convert::message_origin(msg);
                            lines.push(self.ingest_one(&scope, &actor, attachment, origin).await);
                        }
                    }
                }
                Sink::channel(msg.channel_id, Some(msg.id)).say(http, &lines.join("\n")).await;
            }
            Inbound::Ask(text) => {
                let (mut sink, history) = if thread_parent.is_some() {
                    (
                        Sink::channel(msg.channel_id, Some(msg.id)),
                        self.thread_history(http, msg.channel_id, Some(msg.id)).await,
                    )
                } else if msg.guild_id.is_some() {
                    (self.open_thread(http, msg, &text).await, Vec::new())
                } else {
                    (Sink::channel(msg.channel_id, Some(msg.id)), Vec::new())
                };
                let question = Question { text, history };
                let events = self.gateway.ask_stream(&scope, &actor, question).await;
                stream_answer(http, &mut sink, events, self.settings.edit_interval).await;
            }
        }
    }

    /// A new thread on the asking message; when that fails (missing permission), a reply in place.
    async fn open_thread(&self, http: impl CacheHttp + Copy, msg: &Message, text: &str) -> Sink<'static> {
        let builder = CreateThread::new(convert::thread_name(text));
        match msg.channel_id.create_thread_from_message(http, msg.id, builder).await {
            Ok(thread) => Sink::channel(thread.id, None),
            Err(error) => {
                tracing::warn!(error = %error, channel = %msg.channel_id, "Could not create a thread; answering in the channel.");
                Sink::channel(msg.channel_id, Some(msg.id))
            }
        }
    }

    /// The parent channel and the thread's kind when `msg` was sent in a thread (from the cache,
    /// else the REST API).
    async fn thread_of(&self, http: impl CacheHttp + Copy, msg: &Message) -> Option<(ChannelId, ChannelType)> {
        msg.guild_id?;
        match msg.channel_id.to_channel(http).await {
            Ok(Channel::Guild(channel)) if convert::is_thread(channel.kind) => {
                channel.parent_id.map(|parent| (parent, channel.kind))
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(error = %error, channel = %msg.channel_id, "Could not look up a channel.");
                None
            }
        }
    }

    /// The thread's recent messages as turns, oldest first (before `before`, when given).
    async fn thread_history(
        &self,
        http: impl CacheHttp + Copy,
        thread: ChannelId,
        before: Option<MessageId>,
    ) -> Vec<footnote_adapter::Turn> {
        if self.settings.history_messages == 0 {
            return Vec::new();
        }
        let mut query = GetMessages::new().limit(self.settings.history_messages);
        if let Some(before) = before {
            query = query.before(before);
        }
        match thread.messages(http, query).await {
            Ok(messages) => convert::history(&messages, self.bot.get().copied().unwrap_or_default()),
            Err(error) => {
                tracing::warn!(error = %error, thread = %thread, "Could not read the thread's history.");
                Vec::new()
            }
        }
    }

    /// Checks, downloads and ingests one attachment; returns the line to show for it.
    async fn ingest_one(
        &self,
        scope: &Scope,
        actor: &Actor,
        attachment: &Attachment,
        origin: footnote_adapter::Origin,
    ) -> String {
        if let Err(refusal) = convert::check_attachment(attachment, self.settings.max_attachment_bytes) {
            return refusal;
        }
        let bytes = match attachment.download().await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(error = %error, file = %attachment.filename, "Could not download an attachment.");
                return format!(
                    "I couldn't download “{}” from Discord; try again. Nothing was added.",
                    attachment.filename
                );
            }
        };
        let upload = convert::upload(attachment, bytes, origin);
        match self.gateway.ingest(scope, actor, upload).await {
            Ok(receipt) => receipt.summary(),
            Err(error) => format!("“{}”: {}", attachment.filename, error.user_message()),
        }
    }
}

/// Whether the author of a guild message owns the guild or has an ADMINISTRATOR role, as far as
/// the cache knows (false without a cache).
fn cached_admin(http: impl CacheHttp, msg: &Message) -> bool {
    let (Some(cache), Some(guild_id), Some(member)) = (http.cache(), msg.guild_id, msg.member.as_deref()) else {
        return false;
    };
    let Some(guild) = cache.guild(guild_id) else {
        return false;
    };
    let everyone = guild_id.everyone_role();
    let roles = member.roles.iter().chain(std::iter::once(&everyone));
    convert::is_admin(msg.author.id, guild.owner_id, roles.filter_map(|r| guild.roles.get(r).map(|r| r.permissions)))
}

/// The serenity event handler: forwards events to the [`Handler`].
pub struct Events(pub Arc<Handler>);

#[async_trait]
impl EventHandler for Events {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.0.set_bot_user(ready.user.id);
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "Connected to Discord.");
        if let Err(error) = self.0.register_commands(&ctx).await {
            tracing::error!(error = %error, "Could not register the slash commands.");
        }
        self.0.tell_unfinished(&ctx).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Command(cmd) = interaction {
            self.0.handle_command(&ctx, &cmd).await;
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        self.0.handle_message(&ctx, &msg).await;
    }
}
