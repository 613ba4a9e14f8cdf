//! How a chat shows an answer while it is written: the [`Progress`] states with their texts, and
//! [`Follow`], the throttled loop that turns a gateway's [`AskEvent`] stream into the edits an
//! adapter makes to its reply (at most one per interval) and then the final answer.
//!
//! Every adapter drives its reply the same way:
//!
//! ```no_run
//! # async fn show(_: String) {}
//! # async fn example(events: futures::stream::BoxStream<'static, footnote_adapter::AskEvent>) {
//! use footnote_adapter::progress::{Follow, Step};
//! let mut follow = Follow::new(events, std::time::Duration::from_secs(1));
//! let outcome = loop {
//!     match follow.next().await {
//!         Step::Show(progress) => show(progress.text(2000)).await,
//!         Step::Done(outcome) => break outcome,
//!     }
//! };
//! # }
//! ```

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;

use crate::{Answer, AskError, AskEvent};

/// What a reply shows before the checked answer replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The question was taken; nothing heard from the core yet.
    Started,
    /// Waiting in the model queue; 1 means next.
    Queued(usize),
    /// The model is being loaded into memory.
    Loading,
    /// The text written so far (markers not yet checked).
    Writing(String),
}

/// The text of [`Progress::Started`].
pub const STARTED: &str = "Looking through your documents…";
/// The start of the text of [`Progress::Queued`], followed by the position.
pub const QUEUED: &str = "Waiting for the model: position ";
/// The text of [`Progress::Loading`].
pub const LOADING: &str = "Loading the model…";
/// The text of [`Progress::Writing`] before any text came.
pub const WRITING: &str = "Writing…";
/// What ends the text of an answer still being written.
pub const UNFINISHED: &str = " …";

impl Progress {
    /// The plain text to show, at most `limit` characters: the states as a sentence, a text being
    /// written as its last part (after `…` when it was cut) followed by ` …`.
    pub fn text(&self, limit: usize) -> String {
        match self {
            Progress::Started => STARTED.to_owned(),
            Progress::Queued(position) => format!("{QUEUED}{position}"),
            Progress::Loading => LOADING.to_owned(),
            Progress::Writing(text) if text.trim().is_empty() => WRITING.to_owned(),
            Progress::Writing(text) => {
                let text = text.trim();
                let room = limit.saturating_sub(UNFINISHED.chars().count());
                let count = text.chars().count();
                if count <= room {
                    return format!("{text}{UNFINISHED}");
                }
                let tail: String = text.chars().skip(count - room.saturating_sub(1)).collect();
                format!("…{}{UNFINISHED}", tail.trim_start())
            }
        }
    }

    /// True when `text` is what a reply shows for a state (not for a text being written): such a
    /// message is no turn of a conversation.
    pub fn is_state_text(text: &str) -> bool {
        let text = text.trim();
        text == STARTED || text == LOADING || text == WRITING || text.starts_with(QUEUED)
    }
}

/// What to do next with a reply, as [`Follow::next`] says.
#[derive(Debug)]
pub enum Step {
    /// Show this progress now (edit the reply).
    Show(Progress),
    /// The answer is complete or failed: show it in place of the progress.
    Done(Result<Answer, AskError>),
}

/// Follows an answer stream and says when to show what: a progress at most once per interval
/// (one that came too soon is shown when the interval is over, unless a later one replaced it),
/// then the outcome.
pub struct Follow {
    events: BoxStream<'static, AskEvent>,
    interval: Duration,
    shown_at: Option<Instant>,
    pending: Option<Progress>,
    written: String,
}

impl Follow {
    /// Follows `events`; the first progress is shown at once.
    pub fn new(events: BoxStream<'static, AskEvent>, interval: Duration) -> Self {
        Follow { events, interval, shown_at: None, pending: None, written: String::new() }
    }

    /// The same, for a reply whose placeholder was just shown: the first progress waits for the
    /// interval too.
    #[must_use]
    pub fn after_placeholder(mut self) -> Self {
        self.shown_at = Some(Instant::now());
        self
    }

    /// When the next progress may show: at once before the first.
    fn due(&self) -> Option<Instant> {
        self.shown_at.map(|at| at + self.interval)
    }

    /// The next thing to show. A [`Step::Show`] counts as shown when it is returned.
    pub async fn next(&mut self) -> Step {
        loop {
            if self.pending.is_some() && self.due().is_none_or(|due| Instant::now() >= due) {
                self.shown_at = Some(Instant::now());
                return Step::Show(self.pending.take().unwrap_or(Progress::Started));
            }
            let event = if let (Some(_), Some(due)) = (&self.pending, self.due()) {
                match tokio::time::timeout_at(due, self.events.next()).await {
                    Ok(event) => event,
                    Err(_) => continue,
                }
            } else {
                self.events.next().await
            };
            let Some(event) = event else {
                tracing::error!("The answer stream ended without an answer.");
                return Step::Done(Err(AskError::Internal));
            };
            self.pending = Some(match event {
                AskEvent::Queued { position } => Progress::Queued(position),
                AskEvent::LoadingModel => Progress::Loading,
                AskEvent::Token(token) => {
                    self.written.push_str(&token);
                    Progress::Writing(self.written.clone())
                }
                AskEvent::Done(answer) => return Step::Done(Ok(answer)),
                AskEvent::Failed(error) => return Step::Done(Err(error)),
            });
        }
    }

    /// Once the answer is done: waits until the interval since the last shown progress is over
    /// (for platforms that limit how often a message may be edited).
    pub async fn pause(self) {
        if let Some(at) = self.shown_at {
            tokio::time::sleep_until(at + self.interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timings;

    fn answer() -> Answer {
        Answer::nothing_found(Timings::default())
    }

    fn events(events: Vec<AskEvent>) -> BoxStream<'static, AskEvent> {
        Box::pin(futures::stream::iter(events))
    }

    async fn steps(mut follow: Follow) -> Vec<String> {
        let mut shown = Vec::new();
        loop {
            match follow.next().await {
                Step::Show(progress) => shown.push(progress.text(100)),
                Step::Done(outcome) => {
                    shown.push(format!("done: {:?}", outcome.map(|a| a.notice)));
                    return shown;
                }
            }
        }
    }

    #[test]
    fn state_texts_and_the_tail_of_a_long_text() {
        assert_eq!(Progress::Queued(2).text(100), "Waiting for the model: position 2");
        assert_eq!(Progress::Loading.text(100), "Loading the model…");
        assert_eq!(Progress::Writing("  ".into()).text(100), "Writing…");
        assert_eq!(Progress::Writing("Hold the [1] ".into()).text(100), "Hold the [1] …");
        let long = Progress::Writing("a".repeat(500) + " end").text(100);
        assert!(long.chars().count() <= 100 && long.starts_with('…') && long.ends_with("end …"), "{long}");
        for state in [Progress::Started, Progress::Queued(3), Progress::Loading, Progress::Writing(String::new())] {
            assert!(Progress::is_state_text(&state.text(100)), "{state:?}");
        }
        assert!(!Progress::is_state_text("Hold the [1] …"));
    }

    #[tokio::test]
    async fn without_an_interval_every_event_shows() {
        let script = vec![
            AskEvent::Queued { position: 2 },
            AskEvent::LoadingModel,
            AskEvent::Token("Hold ".into()),
            AskEvent::Token("on".into()),
            AskEvent::Done(answer()),
        ];
        let shown = steps(Follow::new(events(script), Duration::ZERO)).await;
        assert_eq!(
            shown,
            [
                "Waiting for the model: position 2",
                "Loading the model…",
                "Hold …",
                "Hold on …",
                "done: Ok(Some(NothingFound))"
            ]
        );
    }

    #[tokio::test]
    async fn the_first_progress_shows_at_once_and_the_rest_waits_for_the_interval() {
        let script = vec![AskEvent::Queued { position: 2 }, AskEvent::LoadingModel, AskEvent::Done(answer())];
        let shown = steps(Follow::new(events(script.clone()), Duration::from_secs(3600))).await;
        assert_eq!(shown, ["Waiting for the model: position 2", "done: Ok(Some(NothingFound))"]);
        let shown = steps(Follow::new(events(script), Duration::from_secs(3600)).after_placeholder()).await;
        assert_eq!(shown, ["done: Ok(Some(NothingFound))"], "after a placeholder even the first one waits");
    }

    #[tokio::test]
    async fn a_progress_held_back_shows_when_the_interval_is_over() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        tx.unbounded_send(AskEvent::Queued { position: 1 }).unwrap();
        tx.unbounded_send(AskEvent::Token("Hello".into())).unwrap();
        let mut follow = Follow::new(Box::pin(rx), Duration::from_millis(200));
        let started = Instant::now();
        assert!(matches!(follow.next().await, Step::Show(Progress::Queued(1))));
        assert!(matches!(follow.next().await, Step::Show(Progress::Writing(ref t)) if t == "Hello"));
        assert!(started.elapsed() >= Duration::from_millis(200), "the second edit waited for the interval");
        tx.unbounded_send(AskEvent::Failed(AskError::Denied)).unwrap();
        assert!(matches!(follow.next().await, Step::Done(Err(AskError::Denied))));
        drop(tx);
    }

    #[tokio::test]
    async fn a_stream_that_ends_without_an_answer_fails() {
        let shown = steps(Follow::new(events(vec![AskEvent::LoadingModel]), Duration::ZERO)).await;
        assert_eq!(shown, ["Loading the model…", "done: Err(Internal)"]);
    }
}
