//! What an adapter connection keeps in the database that several Footnote instances share, so
//! that the instance taking the connection over after a failure carries on where the last one
//! stopped.
//!
//! When several `footnote serve` processes share one PostgreSQL database, each adapter
//! connection (a Discord session, a Matrix account, a mailbox, a Slack app) is held by one of
//! them at a time, and the gateway the adapter runs on offers a [`Ledger`]
//! ([`Gateway::ledger`](crate::Gateway::ledger)). Writes go through the holder's lease, so an
//! instance that lost the connection can no longer change anything. With a single instance
//! (SQLite) there is no ledger, and adapters keep their state as they always did.

use std::time::SystemTime;

use async_trait::async_trait;

/// Why a ledger operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// This instance no longer holds the adapter connection: the adapter is being stopped.
    #[error("this instance no longer holds the adapter connection")]
    Lost,
    /// The database failed; the message is for the log.
    #[error("adapter ledger: {0}")]
    Failed(String),
}

/// What [`Ledger::claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody handled the event yet: it is now this holder's.
    New,
    /// A previous holder started the event and stopped before finishing it (it died or lost
    /// the connection): it is now this holder's, with the note the previous one left (empty
    /// when none).
    Resumed {
        /// What [`Ledger::note`] recorded, such as the id of a reply already posted.
        note: String,
    },
    /// Finished already, or in hand here already: leave it alone.
    Taken,
}

/// The shared progress of one adapter connection.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// From when events that are not finished must still be handled: the moment the previous
    /// holder took the connection, when it held it until shortly before this instance took it
    /// over. `None` on a cold start: then only what happens after the start counts, as
    /// without a ledger.
    fn resume_since(&self) -> Option<SystemTime>;

    /// Takes charge of the event with platform id `id` (a Matrix event id, a Message-ID),
    /// leaving `note` for a later holder (where to tell the asker, for instance). Taking over an
    /// earlier holder's claim keeps that holder's note, which [`Claim::Resumed`] returns.
    async fn claim(&self, id: &str, note: &str) -> Result<Claim, LedgerError>;

    /// Replaces the note of an event this holder claimed (where its reply is, so that a later
    /// holder can continue it).
    async fn note(&self, id: &str, note: &str) -> Result<(), LedgerError>;

    /// Marks an event this holder claimed as finished.
    async fn finish(&self, id: &str) -> Result<(), LedgerError>;

    /// The events earlier holders claimed and never finished, as (id, note), oldest first: an
    /// adapter that cannot handle them again (the platform will not deliver them twice) tells
    /// their askers to ask again, after claiming them itself, and finishes them.
    async fn unfinished(&self) -> Result<Vec<(String, String)>, LedgerError>;

    /// The value stored under `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<String>, LedgerError>;

    /// Stores `value` under `key`, replacing the old one.
    async fn save(&self, key: &str, value: &str) -> Result<(), LedgerError>;
}

/// A [`Ledger`] in memory, for tests of adapters: one holder at a time, whose "lease" is a name
/// that [`MemoryLedger::take_over`] changes.
#[cfg(feature = "test-utils")]
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::SystemTime;

    use async_trait::async_trait;

    use super::{Claim, Ledger, LedgerError};

    /// One recorded event: holder, finished, note.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Event {
        /// The holder that claimed it last.
        pub holder: String,
        /// Finished.
        pub done: bool,
        /// The note left with it.
        pub note: String,
    }

    /// The ledger of one adapter connection, in memory.
    #[derive(Debug, Default)]
    pub struct MemoryLedger {
        holder: Mutex<String>,
        events: Mutex<BTreeMap<String, Event>>,
        values: Mutex<BTreeMap<String, String>>,
        resume_since: Option<SystemTime>,
    }

    impl MemoryLedger {
        /// A ledger held by `holder`.
        pub fn new(holder: &str) -> Self {
            MemoryLedger { holder: Mutex::new(holder.to_owned()), ..Default::default() }
        }

        /// Another holder takes the connection over (the last one died).
        pub fn take_over(&self, holder: &str) {
            *self.holder.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = holder.to_owned();
        }

        /// Every recorded event.
        pub fn events(&self) -> BTreeMap<String, Event> {
            self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        }

        fn holder(&self) -> String {
            self.holder.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        }
    }

    #[async_trait]
    impl Ledger for MemoryLedger {
        fn resume_since(&self) -> Option<SystemTime> {
            self.resume_since
        }

        async fn claim(&self, id: &str, note: &str) -> Result<Claim, LedgerError> {
            let holder = self.holder();
            let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match events.get_mut(id) {
                None => {
                    events.insert(id.to_owned(), Event { holder, done: false, note: note.to_owned() });
                    Ok(Claim::New)
                }
                Some(event) if event.done || event.holder == holder => Ok(Claim::Taken),
                Some(event) => {
                    event.holder = holder;
                    Ok(Claim::Resumed { note: event.note.clone() })
                }
            }
        }

        async fn note(&self, id: &str, note: &str) -> Result<(), LedgerError> {
            let holder = self.holder();
            let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(event) = events.get_mut(id).filter(|e| e.holder == holder) {
                event.note = note.to_owned();
            }
            Ok(())
        }

        async fn finish(&self, id: &str) -> Result<(), LedgerError> {
            let holder = self.holder();
            let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(event) = events.get_mut(id).filter(|e| e.holder == holder) {
                event.done = true;
            }
            Ok(())
        }

        async fn unfinished(&self) -> Result<Vec<(String, String)>, LedgerError> {
            let holder = self.holder();
            let events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(events
                .iter()
                .filter(|(_, e)| !e.done && e.holder != holder)
                .map(|(id, e)| (id.clone(), e.note.clone()))
                .collect())
        }

        async fn load(&self, key: &str) -> Result<Option<String>, LedgerError> {
            Ok(self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned())
        }

        async fn save(&self, key: &str, value: &str) -> Result<(), LedgerError> {
            self.values
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.to_owned(), value.to_owned());
            Ok(())
        }
    }
}
