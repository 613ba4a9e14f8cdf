//! Where a reply goes, and how a streamed answer is shown there.
//!
//! A [`Reply`] posts into the thread of the message it answers (an `m.thread` relation with the
//! reply fallback, continuing the thread when the message was already in one), then edits its
//! first event with `m.replace`. [`stream_answer`] drives a gateway answer stream into it: a
//! typing notification while the model works, queue position and model loading as edits, the
//! text as it is written (edited at most once per interval), and finally the checked answer with
//! its numbered sources, continued in further thread events when it is longer than one event.

use std::sync::Arc;
use std::time::Duration;

use footnote_adapter::progress::{Follow, Step};
use footnote_adapter::{AskEvent, Ledger};
use futures::stream::BoxStream;
use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, OriginalSyncRoomMessageEvent, ReplacementMetadata, ReplyWithinThread, RoomMessageEventContent,
};

use crate::reply::{Body, answer_bodies, progress_text, text_bodies};

/// The content of one of the bot's messages: a notice (bots' convention, so other bots do not
/// answer it) with an HTML body.
pub fn notice(body: &Body) -> RoomMessageEventContent {
    RoomMessageEventContent::notice_html(body.plain.clone(), body.html.clone())
}

/// `content` as a message in the thread of `to` (a new thread on it, or the thread it is in).
pub fn in_thread(content: RoomMessageEventContent, to: &OriginalSyncRoomMessageEvent) -> RoomMessageEventContent {
    content.make_for_thread(to, ReplyWithinThread::No, AddMentions::No)
}

/// `content` as an edit (`m.replace`) of the bot's event `of`.
pub fn replacement(content: RoomMessageEventContent, of: OwnedEventId) -> RoomMessageEventContent {
    content.make_replacement(ReplacementMetadata::new(of, None))
}

/// A reply in the thread of one message: posted once, then edited.
pub struct Reply<'a> {
    room: &'a Room,
    to: &'a OriginalSyncRoomMessageEvent,
    posted: Option<OwnedEventId>,
    /// Where the posted event's id is noted for an instance that takes the answer over.
    ledger: Option<Arc<dyn Ledger>>,
}

impl<'a> Reply<'a> {
    /// A reply to `to` in `room`, not yet posted.
    pub fn new(room: &'a Room, to: &'a OriginalSyncRoomMessageEvent) -> Self {
        Reply { room, to, posted: None, ledger: None }
    }

    /// The same reply, noting its event in `ledger` once posted (several instances share the
    /// bot: the one that takes over an unfinished answer edits this event instead of posting
    /// a second reply).
    #[must_use]
    pub fn noted_in(mut self, ledger: Option<Arc<dyn Ledger>>) -> Self {
        self.ledger = ledger;
        self
    }

    /// The same reply, continuing the event `posted` that an earlier holder of the bot posted.
    #[must_use]
    pub fn continuing(mut self, posted: Option<OwnedEventId>) -> Self {
        if posted.is_some() {
            self.posted = posted;
        }
        self
    }

    /// The bot's event, once posted.
    pub fn posted(&self) -> Option<&OwnedEventId> {
        self.posted.as_ref()
    }

    /// Shows `body` as the main reply: posts it in the thread, or edits the posted event.
    pub async fn show(&mut self, body: &Body) -> matrix_sdk::Result<()> {
        match &self.posted {
            Some(id) => self.room.send(replacement(notice(body), id.clone())).await.map(drop),
            None => {
                let response = self.room.send(in_thread(notice(body), self.to)).await?;
                let posted = response.response.event_id;
                if let Some(ledger) = &self.ledger
                    && let Err(error) = ledger.note(self.to.event_id.as_str(), posted.as_str()).await
                {
                    tracing::warn!(error = %error, "Could not note the reply in the shared ledger.");
                }
                self.posted = Some(posted);
                Ok(())
            }
        }
    }

    /// Adds `body` after the main reply, as another event in the thread.
    pub async fn follow(&mut self, body: &Body) -> matrix_sdk::Result<()> {
        self.room.send(in_thread(notice(body), self.to)).await.map(drop)
    }

    /// Shows the first body and follows with the rest; a failed send is logged and the rest is
    /// still tried.
    pub async fn deliver(&mut self, bodies: &[Body]) {
        for (i, body) in bodies.iter().enumerate() {
            let sent = if i == 0 { self.show(body).await } else { self.follow(body).await };
            if let Err(error) = sent {
                tracing::warn!(error = %error, part = i, room = %self.room.room_id(), "Could not send a reply to Matrix.");
            }
        }
    }

    /// Shows a short text (a receipt, an error's user message).
    pub async fn say(&mut self, text: &str) {
        self.deliver(&text_bodies(text)).await;
    }
}

/// Shows an answer stream in `reply`: a typing notification until the answer is complete,
/// progress and text edits at most once per `interval` (the first always shows), then the checked
/// answer, which replaces what was streamed.
pub async fn stream_answer(reply: &mut Reply<'_>, events: BoxStream<'static, AskEvent>, interval: Duration) {
    let room = reply.room;
    let typing = |on: bool| async move {
        if let Err(error) = room.typing_notice(on).await {
            tracing::debug!(error = %error, "Could not send a typing notification.");
        }
    };
    typing(true).await;
    if let Err(error) = reply.show(&text_bodies(crate::reply::PLACEHOLDER)[0]).await {
        tracing::warn!(error = %error, room = %room.room_id(), "Could not post the answer placeholder.");
    }
    let mut follow = Follow::new(events, interval).after_placeholder();
    loop {
        match follow.next().await {
            Step::Show(progress) => {
                let body = text_bodies(&progress_text(&progress)).swap_remove(0);
                if let Err(error) = reply.show(&body).await {
                    tracing::warn!(error = %error, "Could not show answer progress on Matrix.");
                }
                typing(true).await;
            }
            Step::Done(outcome) => {
                match outcome {
                    Ok(answer) => reply.deliver(&answer_bodies(&answer)).await,
                    Err(error) => reply.say(&error.user_message()).await,
                }
                typing(false).await;
                return;
            }
        }
    }
}
