//! Adapter leases in PostgreSQL: a session-level advisory lock per adapter connection, held on
//! a database connection of its own for as long as the instance runs the adapter.
//!
//! PostgreSQL ends the lock with the session: when the holder exits or is killed (its socket
//! closes), or when its network goes away (TCP keepalives, tuned on the lease's session, end it
//! within about 25 s). The holder renews the lease every few seconds on that same connection; a
//! renewal that fails means the session, and so the lock, may be gone, and the adapter stops.
//! Every ledger write goes through the lease's connection too, so no instance can write after
//! it lost the lock. The `adapter_leases` row says who holds what, for the status page and for
//! the next holder.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use footnote_adapter::{Claim, Ledger, LedgerError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use super::retry::is_transient;
use crate::store::lease::{AdapterKey, Holding, Lease, Leases};
use crate::store::{Result, StoreError};

/// First key of every lease's advisory lock (the two-key form never meets the one-key locks
/// the store uses elsewhere).
const LOCK_CLASS: i32 = 0x466f_6f74;
/// Longest wait for the lease's own connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A previous holder that renewed within this window before the new one took over was taking
/// part in the conversation: what it left unfinished is the new holder's business.
const TAKEOVER_WINDOW: &str = "10 minutes";
/// How far before its last renewal unfinished events of the previous holder are looked for
/// (longer than any answer takes).
const RESUME_LOOKBACK: &str = "1 hour";
/// A holder that has not renewed for this long is shown as gone.
const LIVE_WITHIN: &str = "15 seconds";
/// Finished events are remembered this long (far longer than any takeover needs).
const KEEP_DONE: &str = "7 days";

/// Session settings of the lease connection: the server notices a vanished holder within
/// 10 s + 3 × 5 s.
const KEEPALIVES: &[&str] =
    &["SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5", "SET tcp_keepalives_count = 3"];

/// The leases of one instance.
pub struct PgLeases {
    connect: PgConnectOptions,
    instance: String,
    /// For [`Leases::holdings`].
    pool: sqlx::PgPool,
}

impl PgLeases {
    /// Leases taken on connections made with `connect`, in the name of `instance`.
    pub fn new(connect: PgConnectOptions, pool: sqlx::PgPool, instance: String) -> Self {
        PgLeases { connect, instance, pool }
    }
}

/// The advisory lock's second key for a connection key.
fn lock_key(key: &str) -> i32 {
    let hash = blake3::hash(key.as_bytes());
    let b = hash.as_bytes();
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn epoch(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0))
}

#[async_trait]
impl Leases for PgLeases {
    fn instance(&self) -> &str {
        &self.instance
    }

    async fn try_acquire(&self, key: &AdapterKey) -> Result<Option<Box<dyn Lease>>> {
        let stored = key.as_string();
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.connect))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(lock_key(&stored))
            .fetch_one(&mut conn)
            .await?;
        if !taken {
            let _ = conn.close().await;
            return Ok(None);
        }
        for setting in KEEPALIVES {
            // Not fatal: over a Unix socket they do not apply, and the lock works without them.
            if let Err(e) = sqlx::query(*setting).execute(&mut conn).await {
                tracing::debug!(error = %e, setting, "TCP keepalive setting refused on the lease connection");
            }
        }
        let previous = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT extract(epoch FROM greatest(acquired_at, renewed_at - interval '{RESUME_LOOKBACK}'))::float8 AS since,
                    (now() - renewed_at) < interval '{TAKEOVER_WINDOW}' AS recent
             FROM adapter_leases WHERE adapter_key = $1"
        )))
        .bind(&stored)
        .fetch_optional(&mut conn)
        .await?;
        let resume_since = match previous {
            Some(row) if row.try_get::<bool, _>("recent")? => Some(epoch(row.try_get("since")?)),
            _ => None,
        };
        let lease = format!("{:032x}", rand::random::<u128>());
        sqlx::query(
            "INSERT INTO adapter_leases (adapter_key, adapter, holder, lease, acquired_at, renewed_at)
             VALUES ($1, $2, $3, $4, now(), now())
             ON CONFLICT (adapter_key) DO UPDATE SET adapter = EXCLUDED.adapter, holder = EXCLUDED.holder,
                 lease = EXCLUDED.lease, acquired_at = now(), renewed_at = now()",
        )
        .bind(&stored)
        .bind(&key.adapter)
        .bind(&self.instance)
        .bind(&lease)
        .execute(&mut conn)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM adapter_events WHERE adapter_key = $1 AND state = 'done' AND done_at < now() - interval '{KEEP_DONE}'"
        )))
        .bind(&stored)
        .execute(&mut conn)
        .await?;
        Ok(Some(Box::new(PgLease { conn: Mutex::new(conn), key: stored, lease, resume_since })))
    }

    async fn holdings(&self) -> Result<Vec<Holding>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT adapter_key, holder, extract(epoch FROM acquired_at)::float8 AS since,
                    (now() - renewed_at) < interval '{LIVE_WITHIN}' AS live
             FROM adapter_leases ORDER BY adapter_key"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Holding {
                    key: row.try_get("adapter_key")?,
                    holder: row.try_get("holder")?,
                    since: epoch(row.try_get("since")?),
                    live: row.try_get("live")?,
                })
            })
            .collect()
    }
}

/// A held lease: its connection (which holds the advisory lock) and its token.
struct PgLease {
    conn: Mutex<PgConnection>,
    key: String,
    lease: String,
    resume_since: Option<SystemTime>,
}

/// A lost connection means a lost lock; anything else is a failure of the statement.
fn ledger_error(e: sqlx::Error) -> LedgerError {
    if is_transient(&e) { LedgerError::Lost } else { LedgerError::Failed(e.to_string()) }
}

#[async_trait]
impl Ledger for PgLease {
    fn resume_since(&self) -> Option<SystemTime> {
        self.resume_since
    }

    async fn claim(&self, id: &str, note: &str) -> Result<Claim, LedgerError> {
        let mut conn = self.conn.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO adapter_events (adapter_key, event_id, lease, state, note) VALUES ($1, $2, $3, 'claimed', $4)
             ON CONFLICT (adapter_key, event_id) DO NOTHING",
        )
        .bind(&self.key)
        .bind(id)
        .bind(&self.lease)
        .bind(note)
        .execute(&mut *conn)
        .await
        .map_err(ledger_error)?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::New);
        }
        let row = sqlx::query("SELECT lease, state, note FROM adapter_events WHERE adapter_key = $1 AND event_id = $2")
            .bind(&self.key)
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(ledger_error)?;
        let (lease, state, note): (String, String, String) = (
            row.try_get("lease").map_err(ledger_error)?,
            row.try_get("state").map_err(ledger_error)?,
            row.try_get("note").map_err(ledger_error)?,
        );
        if state == "done" || lease == self.lease {
            return Ok(Claim::Taken);
        }
        // Only one instance holds the connection, so the claimant has gone: take it over.
        sqlx::query(
            "UPDATE adapter_events SET lease = $3, claimed_at = now() WHERE adapter_key = $1 AND event_id = $2",
        )
        .bind(&self.key)
        .bind(id)
        .bind(&self.lease)
        .execute(&mut *conn)
        .await
        .map_err(ledger_error)?;
        Ok(Claim::Resumed { note })
    }

    async fn note(&self, id: &str, note: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn.lock().await;
        sqlx::query("UPDATE adapter_events SET note = $4 WHERE adapter_key = $1 AND event_id = $2 AND lease = $3")
            .bind(&self.key)
            .bind(id)
            .bind(&self.lease)
            .bind(note)
            .execute(&mut *conn)
            .await
            .map_err(ledger_error)?;
        Ok(())
    }

    async fn finish(&self, id: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn.lock().await;
        sqlx::query(
            "UPDATE adapter_events SET state = 'done', done_at = now()
             WHERE adapter_key = $1 AND event_id = $2 AND lease = $3",
        )
        .bind(&self.key)
        .bind(id)
        .bind(&self.lease)
        .execute(&mut *conn)
        .await
        .map_err(ledger_error)?;
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<(String, String)>, LedgerError> {
        let mut conn = self.conn.lock().await;
        let rows = sqlx::query(
            "SELECT event_id, note FROM adapter_events
             WHERE adapter_key = $1 AND state = 'claimed' AND lease <> $2 ORDER BY claimed_at",
        )
        .bind(&self.key)
        .bind(&self.lease)
        .fetch_all(&mut *conn)
        .await
        .map_err(ledger_error)?;
        rows.iter()
            .map(|row| Ok((row.try_get("event_id").map_err(ledger_error)?, row.try_get("note").map_err(ledger_error)?)))
            .collect()
    }

    async fn load(&self, key: &str) -> Result<Option<String>, LedgerError> {
        let mut conn = self.conn.lock().await;
        sqlx::query_scalar("SELECT value FROM adapter_state WHERE adapter_key = $1 AND key = $2")
            .bind(&self.key)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(ledger_error)
    }

    async fn save(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn.lock().await;
        sqlx::query(
            "INSERT INTO adapter_state (adapter_key, key, value, updated_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (adapter_key, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(&self.key)
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await
        .map_err(ledger_error)?;
        Ok(())
    }
}

#[async_trait]
impl Lease for PgLease {
    async fn renew(&self) -> Result<(), LedgerError> {
        let mut conn = self.conn.lock().await;
        let renewed = sqlx::query("UPDATE adapter_leases SET renewed_at = now() WHERE adapter_key = $1 AND lease = $2")
            .bind(&self.key)
            .bind(&self.lease)
            .execute(&mut *conn)
            .await
            .map_err(ledger_error)?;
        if renewed.rows_affected() == 1 { Ok(()) } else { Err(LedgerError::Lost) }
    }

    async fn release(&self) {
        let mut conn = self.conn.lock().await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(lock_key(&self.key))
            .execute(&mut *conn)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_spread() {
        assert_eq!(lock_key("matrix/@bot:x on https://x"), lock_key("matrix/@bot:x on https://x"));
        assert_ne!(lock_key("matrix/@bot:x on https://x"), lock_key("matrix/@bot:y on https://x"));
    }
}
