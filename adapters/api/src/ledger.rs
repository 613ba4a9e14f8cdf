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

    /// Takes charge of the event with platform id `id` (a Matrix event id, a Message-ID).
    async fn claim(&self, id: &str) -> Result<Claim, LedgerError>;

    /// Replaces the note of an event this holder claimed (where its reply is, so that a later
    /// holder can continue it).
    async fn note(&self, id: &str, note: &str) -> Result<(), LedgerError>;

    /// Marks an event this holder claimed as finished.
    async fn finish(&self, id: &str) -> Result<(), LedgerError>;

    /// The value stored under `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<String>, LedgerError>;

    /// Stores `value` under `key`, replacing the old one.
    async fn save(&self, key: &str, value: &str) -> Result<(), LedgerError>;
}
