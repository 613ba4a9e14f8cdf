//! Where a reply goes, and how a streamed answer is shown there.
//!
//! A [`Sink`] is either a slash command's (deferred) original response, completed with edits and
//! follow-ups, or a message the bot posts in a channel or thread and then edits. [`stream_answer`]
//! drives a gateway answer stream into a sink: progress first (queue position, model loading),
//! then the text as it is written, edited at most once per interval, and finally the checked
//! answer with its sources embeds.

use std::time::Duration;

use footnote_adapter::AskEvent;
use footnote_adapter::progress::{Follow, Step};
use futures::stream::BoxStream;
use serenity::all::{
    CacheHttp, ChannelId, CommandInteraction, CreateAllowedMentions, CreateInteractionResponseFollowup, CreateMessage,
    EditInteractionResponse, EditMessage, MessageId,
};

use crate::reply::{Outgoing, answer_messages, progress_text, text_messages};

/// Where a reply is shown.
#[derive(Debug)]
pub enum Sink<'a> {
    /// The deferred response of a slash command: edited, then completed with follow-ups.
    Interaction(&'a CommandInteraction),
    /// A message the bot posts in `channel` (replying to `reply_to`), then edits.
    Channel {
        /// The channel or thread to post in.
        channel: ChannelId,
        /// The message to reply to, if any.
        reply_to: Option<MessageId>,
        /// The bot's message once posted.
        posted: Option<MessageId>,
    },
}

impl Sink<'_> {
    /// A sink that posts a new message in `channel`, as a reply to `reply_to` when given.
    pub fn channel(channel: ChannelId, reply_to: Option<MessageId>) -> Self {
        Sink::Channel { channel, reply_to, posted: None }
    }

    /// Shows `out` as the main reply: edits the response or the posted message (posting it first).
    pub async fn show(&mut self, http: impl CacheHttp, out: &Outgoing) -> serenity::Result<()> {
        let embeds = out.embeds.iter().map(crate::reply::EmbedSpec::to_builder).collect::<Vec<_>>();
        match self {
            Sink::Interaction(cmd) => {
                let edit = EditInteractionResponse::new()
                    .content(&out.content)
                    .embeds(embeds)
                    .allowed_mentions(CreateAllowedMentions::new());
                cmd.edit_response(http, edit).await.map(drop)
            }
            Sink::Channel { channel, posted: Some(id), .. } => {
                let edit = EditMessage::new()
                    .content(&out.content)
                    .embeds(embeds)
                    .allowed_mentions(CreateAllowedMentions::new());
                channel.edit_message(http, *id, edit).await.map(drop)
            }
            Sink::Channel { channel, reply_to, posted } => {
                let mut create = CreateMessage::new()
                    .content(&out.content)
                    .embeds(embeds)
                    .allowed_mentions(CreateAllowedMentions::new());
                if let Some(to) = reply_to {
                    create = create.reference_message((*channel, *to));
                }
                *posted = Some(channel.send_message(http, create).await?.id);
                Ok(())
            }
        }
    }

    /// Adds `out` after the main reply: a follow-up, or another message in the channel.
    pub async fn follow(&mut self, http: impl CacheHttp, out: &Outgoing) -> serenity::Result<()> {
        let embeds = out.embeds.iter().map(crate::reply::EmbedSpec::to_builder).collect::<Vec<_>>();
        match self {
            Sink::Interaction(cmd) => {
                let followup = CreateInteractionResponseFollowup::new()
                    .content(&out.content)
                    .embeds(embeds)
                    .allowed_mentions(CreateAllowedMentions::new());
                cmd.create_followup(http, followup).await.map(drop)
            }
            Sink::Channel { channel, .. } => {
                let create = CreateMessage::new()
                    .content(&out.content)
                    .embeds(embeds)
                    .allowed_mentions(CreateAllowedMentions::new());
                channel.send_message(http, create).await.map(drop)
            }
        }
    }

    /// Shows the first message and follows with the rest; a failed send is logged and the rest
    /// is still tried.
    pub async fn deliver(&mut self, http: impl CacheHttp + Copy, messages: &[Outgoing]) {
        for (i, out) in messages.iter().enumerate() {
            let sent = if i == 0 { self.show(http, out).await } else { self.follow(http, out).await };
            if let Err(error) = sent {
                tracing::warn!(error = %error, part = i, "Could not send a reply to Discord.");
            }
        }
    }

    /// Shows a short text (a receipt, an error's user message), split at the limit.
    pub async fn say(&mut self, http: impl CacheHttp + Copy, text: &str) {
        self.deliver(http, &text_messages(text)).await;
    }
}

/// Shows an answer stream in `sink`: progress and text edits at most once per `interval` (the
/// first always shows), then the checked answer, which replaces what was streamed.
pub async fn stream_answer(
    http: impl CacheHttp + Copy,
    sink: &mut Sink<'_>,
    events: BoxStream<'static, AskEvent>,
    interval: Duration,
) {
    let mut follow = Follow::new(events, interval);
    loop {
        match follow.next().await {
            Step::Show(progress) => {
                let out = Outgoing { content: progress_text(&progress), embeds: Vec::new() };
                if let Err(error) = sink.show(http, &out).await {
                    tracing::warn!(error = %error, "Could not show answer progress on Discord.");
                }
            }
            Step::Done(Ok(answer)) => return sink.deliver(http, &answer_messages(&answer)).await,
            Step::Done(Err(error)) => return sink.say(http, &error.user_message()).await,
        }
    }
}
