//! The answers a plugin has not acknowledged yet: kept (at most [`MAX_KEPT`], for at most
//! [`MAX_AGE`]) and resent on each new connection, so that a plugin that disconnects or restarts
//! while a question is answered still posts the answer where it was asked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use footnote_adapter::wire::Finished;

/// Unacknowledged answers kept per plugin; past it the oldest is dropped (and logged).
pub const MAX_KEPT: usize = 256;
/// How long an unacknowledged answer is kept.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// A plugin's unacknowledged answers, oldest first.
#[derive(Default)]
pub struct Outbox {
    kept: VecDeque<(Instant, Finished)>,
}

impl Outbox {
    /// Keeps `finished` until it is acknowledged.
    pub fn push(&mut self, plugin: &str, finished: Finished) {
        self.expire(plugin);
        if self.kept.len() >= MAX_KEPT
            && let Some((_, dropped)) = self.kept.pop_front()
        {
            tracing::warn!(plugin, id = %dropped.id, room = %dropped.scope.room, "A plugin's outbox is full: dropped its oldest unacknowledged answer.");
        }
        self.kept.push_back((Instant::now(), finished));
    }

    /// Forgets the answers with these ids.
    pub fn ack(&mut self, ids: &[String]) {
        self.kept.retain(|(_, f)| !ids.contains(&f.id));
    }

    /// The answers still to deliver, oldest first.
    pub fn pending(&mut self, plugin: &str) -> Vec<Finished> {
        self.expire(plugin);
        self.kept.iter().map(|(_, f)| f.clone()).collect()
    }

    /// True when an answer with this id waits for its acknowledgement.
    pub fn holds(&self, id: &str) -> bool {
        self.kept.iter().any(|(_, f)| f.id == id)
    }

    /// How many answers wait.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// True when no answer waits.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    fn expire(&mut self, plugin: &str) {
        while let Some((at, f)) = self.kept.front() {
            if at.elapsed() < MAX_AGE {
                break;
            }
            tracing::warn!(plugin, id = %f.id, room = %f.scope.room, "Dropped an answer the plugin did not acknowledge within an hour.");
            self.kept.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use footnote_adapter::{Actor, AskError, AskEvent, Scope};

    use super::*;

    fn finished(id: &str) -> Finished {
        Finished::new(id.into(), Scope::default(), Actor::default(), AskEvent::Failed(AskError::Timeout))
    }

    #[test]
    fn keeps_until_acknowledged_and_drops_the_oldest_past_the_bound() {
        let mut outbox = Outbox::default();
        outbox.push("p", finished("a"));
        outbox.push("p", finished("b"));
        assert_eq!(outbox.pending("p").iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        outbox.ack(&["a".into()]);
        assert!(!outbox.holds("a") && outbox.holds("b"));
        for i in 0..MAX_KEPT {
            outbox.push("p", finished(&i.to_string()));
        }
        assert_eq!(outbox.len(), MAX_KEPT);
        assert!(!outbox.holds("b"), "the oldest went first");
    }
}
