//! One instance per adapter connection when several instances share a PostgreSQL database.
//!
//! [`hold`] runs an adapter only while this instance holds its connection's lease: it tries to
//! take the lease every [`ACQUIRE_EVERY`], runs the adapter under the usual supervisor once it
//! has it, renews it every [`RENEW_EVERY`] on the lease's own database connection, and stops the
//! adapter as soon as a renewal fails (the database went away, so the lock may be another
//! instance's by now). The adapter's gateway then carries the lease as its [`Ledger`], so the
//! adapter can claim events and keep its progress where the next holder finds them.
//!
//! [`Board`] tells `/api/status` and the status page which instance holds which connection.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use footnote_adapter::{
    Actor, Answer, AskError, AskEvent, DocumentInfo, ForgetReceipt, Gateway, GatewayError, IngestError, IngestReceipt,
    Ledger, Question, Scope, Status, Upload, WarmupReport,
};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::adapters::{AdapterSpec, Backoff, Stopped, supervise};
use crate::store::lease::{AdapterKey, Lease, Leases, instance_name};

/// How often an instance without the lease tries to take it (bounds the takeover after the
/// holder died: PostgreSQL frees the lock as soon as the holder's connection closes).
pub const ACQUIRE_EVERY: Duration = Duration::from_secs(2);
/// How often the holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// A renewal that takes longer counts as failed.
const RENEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Who holds one adapter connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdapterHolding {
    /// The adapter, such as `matrix`.
    pub adapter: String,
    /// The connection (bot account, mailbox); never a secret.
    pub connection: String,
    /// The instance running it; `null` while none does (an instance is taking it over).
    pub holder: Option<String>,
    /// True when this instance runs it.
    pub here: bool,
}

/// What this instance knows about the adapter connections it is configured with.
pub struct Board {
    instance: String,
    leases: Option<Arc<dyn Leases>>,
    adapters: Vec<(AdapterKey, bool)>,
    /// Keys of the leases this instance holds now.
    held: Mutex<HashSet<String>>,
}

impl Board {
    /// A board for `specs`, with the database's leases when there are any.
    pub fn new(leases: Option<Arc<dyn Leases>>, specs: &[AdapterSpec]) -> Board {
        let instance = leases.as_ref().map_or_else(instance_name, |l| l.instance().to_owned());
        let adapters = specs.iter().map(|s| (s.key(), s.leased && leases.is_some())).collect();
        Board { instance, leases, adapters, held: Mutex::new(HashSet::new()) }
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn set_held(&self, key: &AdapterKey, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held {
            set.insert(key.as_string());
        } else {
            set.remove(&key.as_string());
        }
    }

    fn holds(&self, key: &AdapterKey) -> bool {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&key.as_string())
    }

    /// Who holds each configured adapter connection: this instance for the ones it runs
    /// without a lease; for leased ones, the live holder the database names (this instance's
    /// own view when the database cannot be asked).
    pub async fn report(&self) -> Vec<AdapterHolding> {
        let holdings = match &self.leases {
            Some(leases) => match leases.holdings().await {
                Ok(holdings) => Some(holdings),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the adapter leases for the status.");
                    None
                }
            },
            None => None,
        };
        self.adapters
            .iter()
            .map(|(key, leased)| {
                let here = !leased || self.holds(key);
                let holder = if !leased || here {
                    Some(self.instance.clone())
                } else {
                    let stored = key.as_string();
                    holdings
                        .as_ref()
                        .and_then(|all| all.iter().find(|h| h.key == stored && h.live))
                        .map(|h| h.holder.clone())
                };
                AdapterHolding { adapter: key.adapter.clone(), connection: key.identity.clone(), holder, here }
            })
            .collect()
    }
}

/// Runs `spec` while this instance holds its lease, until `shutdown`; stands by while another
/// instance holds it, and takes it over when that one goes away.
pub async fn hold(
    spec: AdapterSpec,
    gateway: Arc<dyn Gateway>,
    shutdown: CancellationToken,
    backoff: Backoff,
    leases: Arc<dyn Leases>,
    board: Arc<Board>,
) {
    let key = spec.key();
    let mut standing_by = false;
    loop {
        let lease = tokio::select! {
            lease = acquire(leases.as_ref(), &key, &mut standing_by) => lease,
            _ = shutdown.cancelled() => return,
        };
        tracing::info!(adapter = %key.adapter, connection = %key.identity, "This instance now holds the adapter connection.");
        board.set_held(&key, true);
        let lost = shutdown.child_token();
        let renewing = tokio::spawn(renew(lease.clone(), lost.clone(), key.adapter.clone()));
        let ledger: Arc<dyn Ledger> = lease.clone();
        let leased: Arc<dyn Gateway> = Arc::new(Leased { inner: gateway.clone(), ledger });
        let stopped = supervise(&spec, leased, lost.clone(), backoff).await;
        lost.cancel();
        let _ = renewing.await;
        board.set_held(&key, false);
        lease.release().await;
        if shutdown.is_cancelled() {
            return;
        }
        if stopped == Stopped::Config {
            tracing::error!(adapter = %key.adapter, "Released the adapter connection: its configuration cannot work here.");
            return;
        }
        tracing::warn!(adapter = %key.adapter, "Stopped the adapter: its lease may be lost; taking it again once possible.");
        standing_by = false;
    }
}

/// Takes the lease once it is free.
async fn acquire(leases: &dyn Leases, key: &AdapterKey, standing_by: &mut bool) -> Arc<dyn Lease> {
    loop {
        match leases.try_acquire(key).await {
            Ok(Some(lease)) => return Arc::from(lease),
            Ok(None) if !*standing_by => {
                tracing::info!(adapter = %key.adapter, "Another instance holds the adapter connection; standing by to take it over.");
                *standing_by = true;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(adapter = %key.adapter, error = %e, "Cannot take the adapter's lease; trying again.");
            }
        }
        tokio::time::sleep(ACQUIRE_EVERY).await;
    }
}

/// Renews `lease` until `lost` is cancelled; cancels it when a renewal fails.
async fn renew(lease: Arc<dyn Lease>, lost: CancellationToken, adapter: String) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = lost.cancelled() => return,
        }
        let failure = match tokio::time::timeout(RENEW_TIMEOUT, lease.renew()).await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {RENEW_TIMEOUT:?}"),
        };
        tracing::error!(%adapter, error = %failure, "Lost the database connection that holds the adapter's lease; stopping the adapter.");
        lost.cancel();
        return;
    }
}

/// The gateway an adapter runs on while its lease is held: the core's, with the lease as the
/// adapter's [`Ledger`].
struct Leased {
    inner: Arc<dyn Gateway>,
    ledger: Arc<dyn Ledger>,
}

#[async_trait]
impl Gateway for Leased {
    async fn ask_stream(&self, scope: &Scope, actor: &Actor, question: Question) -> BoxStream<'static, AskEvent> {
        self.inner.ask_stream(scope, actor, question).await
    }

    async fn ask(&self, scope: &Scope, actor: &Actor, question: Question) -> Result<Answer, AskError> {
        self.inner.ask(scope, actor, question).await
    }

    async fn ingest(&self, scope: &Scope, actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError> {
        self.inner.ingest(scope, actor, upload).await
    }

    async fn warmup(&self, scope: &Scope, actor: &Actor) -> Result<WarmupReport, GatewayError> {
        self.inner.warmup(scope, actor).await
    }

    async fn status(&self, scope: &Scope, actor: &Actor) -> Result<Status, GatewayError> {
        self.inner.status(scope, actor).await
    }

    async fn documents(&self, scope: &Scope, actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError> {
        self.inner.documents(scope, actor).await
    }

    async fn forget(&self, scope: &Scope, actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError> {
        self.inner.forget(scope, actor, document_id).await
    }

    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        Some(self.ledger.clone())
    }
}
