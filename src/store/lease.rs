//! Leases on chat adapter connections, for several instances sharing one database.
//!
//! Each adapter connection (a Discord bot session, a Matrix account, a mailbox, a Slack app) is
//! named by an [`AdapterKey`]; one instance at a time holds its [`Lease`], and only the holder
//! runs the adapter. A lease is also that connection's [`Ledger`]: its writes are made through
//! the lease, so an instance that lost it can no longer change the shared progress.
//!
//! Only PostgreSQL has leases ([`Store::leases`](super::Store::leases)); with SQLite one process
//! owns the data directory and runs every adapter.

use std::time::SystemTime;

use async_trait::async_trait;
use footnote_adapter::{Ledger, LedgerError};

use super::Result;

/// One adapter connection: the adapter's name and what tells its connections apart (the bot
/// account, the mailbox).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdapterKey {
    /// The adapter's name, such as `matrix`.
    pub adapter: String,
    /// The connection, such as `@bot:example.org on https://matrix.example.org`; never a secret.
    pub identity: String,
}

impl AdapterKey {
    /// The key as stored: `adapter/identity`.
    pub fn as_string(&self) -> String {
        format!("{}/{}", self.adapter, self.identity)
    }
}

/// Who holds an adapter connection, as the database says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The connection.
    pub key: String,
    /// The instance holding it (or that held it last).
    pub holder: String,
    /// When it took the connection.
    pub since: SystemTime,
    /// False when the holder has not renewed its lease for a while: it is gone and another
    /// instance is about to take over.
    pub live: bool,
}

/// A held lease. Dropping it without [`release`](Lease::release) lets the database end it
/// when its connection closes.
#[async_trait]
pub trait Lease: Ledger {
    /// Proves the lease is still held (its connection is alive) and records that. An error
    /// means it is lost: the adapter must stop.
    async fn renew(&self) -> Result<(), LedgerError>;

    /// Gives the lease up, so another instance can take the connection at once.
    async fn release(&self);
}

/// Where the leases are kept.
#[async_trait]
pub trait Leases: Send + Sync {
    /// The name of this instance in leases and on the status page.
    fn instance(&self) -> &str;

    /// Takes the lease of `key` if nobody holds it; `None` when another instance does.
    async fn try_acquire(&self, key: &AdapterKey) -> Result<Option<Box<dyn Lease>>>;

    /// Every recorded holding.
    async fn holdings(&self) -> Result<Vec<Holding>>;
}

/// The name of this instance: host name and process id.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
