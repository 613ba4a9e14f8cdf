//! The glue between Slack and the gateway: what to do with a mention, a direct message or a
//! slash command once [`crate::convert`] has said what it means.
//!
//! Both transports (Socket Mode and the Events API) hand their payloads to [`SlackState`], which
//! drops retried deliveries, acknowledges at once and does the work in a background task.

use std::collections::HashMap;
use std::sync::Arc;

use footnote_adapter::progress::{Follow, Progress, Step};
use footnote_adapter::reports;
use footnote_adapter::{AdapterError, Claim, Gateway, Ledger, Question};
use serde_json::Value;

use crate::blocks;
use crate::config::Config;
use crate::convert::{self, ChatMessage, CommandAction, Inbound, SlashCommand};
use crate::dedupe::Dedupe;
use crate::web::SlackWeb;

/// Told, by the instance that took the bot over, to someone whose question an instance that
/// stopped (crashed, or lost its database) was answering.
pub const RESTARTED: &str = "I was restarted before I could finish answering this. Please ask again.";

/// Everything the handlers share: the gateway, the Web API client, limits and the dedupe set.
/// Cheap to clone.
#[derive(Clone)]
pub struct SlackState {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Arc<dyn Gateway>,
    /// The shared progress of the bot when several instances take turns running it.
    ledger: Option<Arc<dyn Ledger>>,
    web: SlackWeb,
    config: Config,
    dedupe: Dedupe,
}

impl SlackState {
    /// Builds the shared state; makes no network call yet.
    pub fn new(config: Config, gateway: Arc<dyn Gateway>) -> Result<Self, AdapterError> {
        let web = SlackWeb::new(&config).map_err(|e| AdapterError::Config(format!("TLS set-up: {e}")))?;
        let ledger = gateway.ledger();
        Ok(SlackState { inner: Arc::new(Inner { gateway, ledger, web, config, dedupe: Dedupe::default() }) })
    }

    /// The configuration the state was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn web(&self) -> &SlackWeb {
        &self.inner.web
    }

    /// Takes an `event_callback` body. Returns false (and does nothing) for a delivery already
    /// seen; otherwise handles it in the background and returns true at once.
    pub fn accept_event(&self, body: Value) -> bool {
        if let Some(id) = body.get("event_id").and_then(Value::as_str)
            && !self.inner.dedupe.first_seen(&format!("event:{id}"))
        {
            tracing::debug!(event_id = id, "Dropped a repeated Slack event.");
            return false;
        }
        let state = self.clone();
        tokio::spawn(async move { state.handle_event(body).await });
        true
    }

    async fn handle_event(&self, body: Value) {
        let identity = match self.inner.web.identity().await {
            Ok(identity) => Some(identity.clone()),
            Err(error) => {
                tracing::warn!(%error, "Could not learn the bot's own id; answering anyway.");
                None
            }
        };
        let bot_user = identity.as_ref().map(|i| i.user_id.as_str());
        match convert::parse_event_callback(&body, bot_user) {
            Inbound::Message(message) => {
                if self.inner.dedupe.first_seen(&message.message_key()) {
                    self.on_message(*message, identity.as_ref().and_then(|i| i.bot_id.as_deref())).await;
                }
            }
            Inbound::FileShared { file_id, .. } => {
                tracing::debug!(file_id, "File shared; handled with the message that carries it.");
            }
            Inbound::Ignored(why) => tracing::debug!(why, "Ignored a Slack event."),
        }
    }

    async fn on_message(&self, message: ChatMessage, bot_id: Option<&str>) {
        let web = &self.inner.web;
        if !message.files.is_empty() {
            let receipts = self.ingest_files(&message).await;
            if let Err(error) = web.post(&message.channel, Some(&message.reply_thread_ts), receipts, None).await {
                tracing::warn!(%error, "Could not post ingest receipts.");
            }
        }
        if message.text.is_empty() {
            if message.files.is_empty() {
                let hint = "Ask me a question about this channel's documents, or share a file with me to add it.";
                if let Err(error) = web.post(&message.channel, Some(&message.reply_thread_ts), hint.into(), None).await
                {
                    tracing::warn!(%error, "Could not post a hint.");
                }
            }
            return;
        }
        let mut question = Question::new(message.text.clone());
        if message.in_thread {
            match web.replies(&message.channel, &message.reply_thread_ts).await {
                Ok(replies) => {
                    let bot_user = web.identity().await.ok().map(|i| i.user_id.clone());
                    question.history = convert::history_turns(&replies, bot_user.as_deref(), bot_id, &message.ts);
                }
                Err(error) => {
                    tracing::warn!(%error, "Could not read the thread; answering without its history.");
                }
            }
        }
        let (channel, thread) = (message.channel.clone(), message.reply_thread_ts.clone());
        let key = message.message_key();
        self.answer(&key, &message.scope, &message.actor, question, &channel, &thread).await;
    }

    async fn ingest_files(&self, message: &ChatMessage) -> String {
        let (web, max) = (&self.inner.web, self.inner.config.max_file_bytes);
        let permalink = web.permalink(&message.channel, &message.ts).await;
        let mut lines = Vec::new();
        for file in &message.files {
            let name = blocks::escape(&file.name);
            let too_large = || format!("“{name}” is over the {max}-byte limit for files. Nothing was added.");
            let Some(url) = file.url.as_deref() else {
                lines.push(format!("Slack gave me no way to download “{name}”. Nothing was added."));
                continue;
            };
            if file.too_large(max) {
                lines.push(too_large());
                continue;
            }
            let bytes = match web.download(url, max).await {
                Ok(bytes) => bytes,
                Err(crate::web::WebError::TooLarge(_)) => {
                    lines.push(too_large());
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, file_id = file.id, "Could not download a Slack file.");
                    lines.push(format!("I couldn't download “{name}”. Nothing was added."));
                    continue;
                }
            };
            let upload = convert::upload(file, bytes, message, permalink.clone());
            let line = match self.inner.gateway.ingest(&message.scope, &message.actor, upload).await {
                Ok(receipt) => receipt.summary(),
                Err(error) => error.user_message(),
            };
            lines.push(blocks::escape(&line));
        }
        lines.join("\n")
    }

    /// Streams the answer to the question `key` (claimed in the ledger, when instances share the
    /// bot) into a new message in `thread_ts`, editing it at most once per `update_interval`,
    /// and finishes with the checked answer and its sources.
    async fn answer(
        &self,
        key: &str,
        scope: &footnote_adapter::Scope,
        actor: &footnote_adapter::Actor,
        question: Question,
        channel: &str,
        thread_ts: &str,
    ) {
        let note = format!("{channel}\t{thread_ts}\t{}", actor.user_id);
        if !self.claim(key, &note).await {
            return;
        }
        self.stream_answer(scope, actor, question, channel, thread_ts).await;
        if let Some(ledger) = &self.inner.ledger
            && let Err(error) = ledger.finish(key).await
        {
            tracing::warn!(%error, key, "Could not record a question as answered.");
        }
    }

    /// Records that this instance answers `key`. False when it is not this instance's to answer
    /// (already done, or the ledger cannot be reached: the lease is then being lost).
    async fn claim(&self, key: &str, note: &str) -> bool {
        let Some(ledger) = &self.inner.ledger else { return true };
        match ledger.claim(key, note).await {
            Ok(Claim::Taken) => false,
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, key, "Could not claim a question; it is left to the next holder.");
                false
            }
        }
    }

    /// After connecting: tells everyone whose question an instance that stopped was answering
    /// to ask again (Slack will not deliver it twice), in the thread they asked in.
    pub async fn tell_unfinished(&self) {
        let Some(ledger) = &self.inner.ledger else { return };
        let unfinished = match ledger.unfinished().await {
            Ok(unfinished) => unfinished,
            Err(error) => {
                tracing::warn!(%error, "Could not read what the previous instance left unfinished.");
                return;
            }
        };
        for (key, note) in unfinished {
            if !matches!(ledger.claim(&key, &note).await, Ok(Claim::Resumed { .. })) {
                continue;
            }
            let mut parts = note.split('\t');
            if let (Some(channel), Some(thread), user) = (parts.next(), parts.next(), parts.next()) {
                tracing::info!(key, "Telling an asker that their question was not finished.");
                let text = match user.filter(|u| !u.is_empty()) {
                    Some(user) => format!("<@{user}> {RESTARTED}"),
                    None => RESTARTED.to_owned(),
                };
                if let Err(error) = self.inner.web.post(channel, Some(thread), text, None).await {
                    tracing::warn!(%error, "Could not tell an asker to ask again.");
                }
            }
            if let Err(error) = ledger.finish(&key).await {
                tracing::warn!(%error, key, "Could not record a question as handled.");
            }
        }
    }

    async fn stream_answer(
        &self,
        scope: &footnote_adapter::Scope,
        actor: &footnote_adapter::Actor,
        question: Question,
        channel: &str,
        thread_ts: &str,
    ) {
        let web = &self.inner.web;
        let interval = self.inner.config.update_interval;
        let ts = match web.post(channel, Some(thread_ts), blocks::progress_text(&Progress::Started), None).await {
            Ok(ts) => ts,
            Err(error) => {
                tracing::warn!(%error, channel, "Could not post the answer placeholder.");
                return;
            }
        };
        let events = self.inner.gateway.ask_stream(scope, actor, question).await;
        let mut follow = Follow::new(events, interval).after_placeholder();
        let finish = loop {
            match follow.next().await {
                Step::Show(progress) => {
                    if let Err(error) = web.update(channel, &ts, blocks::progress_text(&progress), None).await {
                        tracing::warn!(%error, "Could not edit the streaming answer.");
                    }
                }
                Step::Done(outcome) => break outcome,
            }
        };
        follow.pause().await;
        match finish {
            Ok(answer) => {
                let text = blocks::fallback_text(&answer);
                let mut messages = blocks::answer_messages(&answer).into_iter();
                if let Err(error) = web.update(channel, &ts, text.clone(), messages.next()).await {
                    tracing::warn!(%error, "Could not post the final answer.");
                }
                for more in messages {
                    if let Err(error) = web.post(channel, Some(thread_ts), text.clone(), Some(more)).await {
                        tracing::warn!(%error, "Could not post the rest of a long answer.");
                    }
                }
            }
            Err(error) => {
                let text = blocks::escape(&error.user_message());
                if let Err(error) = web.update(channel, &ts, text, None).await {
                    tracing::warn!(%error, "Could not report a failed answer.");
                }
            }
        }
    }

    /// Takes a slash command's fields and returns the immediate (ephemeral) acknowledgement;
    /// slow work continues in the background and reports through `response_url`.
    pub fn accept_command(&self, form: &HashMap<String, String>) -> String {
        let command = match convert::parse_command(form) {
            Ok(command) => command,
            Err(error) => {
                tracing::warn!(%error, "Unusable slash command payload.");
                return "Slack sent that command without the fields I need; please try again.".into();
            }
        };
        let ack = match &command.action {
            CommandAction::Ingest(never) => match *never {},
            CommandAction::Help => return blocks::help_text(),
            CommandAction::Unknown(what) => {
                return format!("I don't know `{}`.\n{}", blocks::escape(what), blocks::help_text());
            }
            CommandAction::Ask(_) => "Looking into it; the answer will appear in a thread in this channel.",
            CommandAction::Warmup => "Loading the models…",
            CommandAction::Sources | CommandAction::Status | CommandAction::Forget(_) => "Working on it…",
        };
        let state = self.clone();
        tokio::spawn(async move { state.run_command(command).await });
        ack.to_owned()
    }

    async fn run_command(&self, command: SlashCommand) {
        let (gateway, web) = (&self.inner.gateway, &self.inner.web);
        let (scope, actor) = (&command.scope, &command.actor);
        let reply = match &command.action {
            CommandAction::Ask(text) => {
                let root = format!("<@{}> asked: {}", actor.user_id, blocks::escape(text));
                match web.post(&command.channel, None, root, None).await {
                    Ok(ts) => {
                        let scope = footnote_adapter::Scope { thread: Some(ts.clone()), ..scope.clone() };
                        let key = format!("command:{}:{ts}", command.channel);
                        self.answer(&key, &scope, actor, Question::new(text.clone()), &command.channel, &ts).await;
                        return;
                    }
                    Err(error) if error.not_in_channel() => {
                        "I am not in this channel yet: invite me with `/invite @Footnote`, then ask again.".to_owned()
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Could not post the question.");
                        "I couldn't post in this channel; the administrator can find the details in the log.".to_owned()
                    }
                }
            }
            CommandAction::Warmup => match gateway.warmup(scope, actor).await {
                Ok(report) => reports::warmup_text(&report, blocks::MARKUP),
                Err(error) => blocks::escape(&error.user_message()),
            },
            CommandAction::Sources => match gateway.documents(scope, actor).await {
                Ok(documents) => blocks::documents_text(&documents),
                Err(error) => blocks::escape(&error.user_message()),
            },
            CommandAction::Status => match gateway.status(scope, actor).await {
                Ok(status) => reports::status_text(&status, blocks::MARKUP),
                Err(error) => blocks::escape(&error.user_message()),
            },
            CommandAction::Forget(id) => match gateway.forget(scope, actor, id).await {
                Ok(receipt) => reports::forget_text(&receipt, blocks::MARKUP),
                Err(error) => blocks::escape(&error.user_message()),
            },
            CommandAction::Ingest(never) => match *never {},
            CommandAction::Help | CommandAction::Unknown(_) => return,
        };
        let Some(url) = command.response_url.as_deref() else {
            tracing::warn!("Slash command without a response_url; the reply is lost.");
            return;
        };
        if let Err(error) = web.respond(url, &reply).await {
            tracing::warn!(%error, "Could not reply to a slash command.");
        }
    }
}
