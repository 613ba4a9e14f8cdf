//! What every call passes through before the engine does any work: the scope policy and the
//! per-user rate limits (questions and uploads; admins get a larger allowance, the local operator
//! none), both owned by the gateway; and the engine's lifecycle (answers in flight are tracked so
//! that a shutdown can let them finish; once closing, new work is refused).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::access::Policy;
use crate::config::Config;

/// Keys kept by the rate limiter before old ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// How many times a plain user's allowance an admin gets: admins are limited too, so that one
/// room owner cannot fill the model queue, but a busy admin is rarely stopped.
pub const ADMIN_RATE_FACTOR: u32 = 4;

/// A per-user allowance (`per_minute` with a `burst`), and a larger one for admins.
pub struct RateLimit {
    user: Option<DefaultKeyedRateLimiter<String>>,
    admin: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimit {
    /// No limit when `per_minute` is 0.
    pub fn new(per_minute: u32, burst: u32) -> RateLimit {
        let limiter = |factor: u32| {
            NonZeroU32::new(per_minute.saturating_mul(factor)).map(|rate| {
                let burst = NonZeroU32::new(burst.saturating_mul(factor)).unwrap_or(NonZeroU32::MIN);
                RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
            })
        };
        RateLimit { user: limiter(1), admin: limiter(ADMIN_RATE_FACTOR) }
    }

    /// Takes one from `key`'s allowance; `Err(wait)` when it is used up.
    pub fn check(&self, key: &str, admin: bool) -> Result<(), Duration> {
        let Some(limiter) = (if admin { &self.admin } else { &self.user }) else {
            return Ok(());
        };
        if limiter.len() > SWEEP_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(&key.to_owned()).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// What admits a call into the engine, owned by [`Core`](super::gateway::Core): the scope
/// policy and the per-user allowances. (The model queue and the work in flight belong to the
/// engine: [`Rag::queue`](super::Rag::queue), [`Rag::lifecycle`](super::Rag::lifecycle).)
pub struct Admission {
    /// Collection mapping and permissions.
    pub policy: Policy,
    /// Questions (and warm-ups) per user.
    pub asks: RateLimit,
    /// Uploads per user.
    pub ingests: RateLimit,
}

impl Admission {
    /// Builds it from the configuration.
    pub fn new(cfg: &Config) -> Admission {
        let limits = &cfg.limits;
        Admission {
            policy: Policy::new(&cfg.scopes),
            asks: RateLimit::new(limits.rate_per_minute, limits.rate_burst),
            ingests: RateLimit::new(limits.ingest_per_minute, limits.ingest_burst),
        }
    }
}

/// The engine's work in flight, which a shutdown waits for, and whether it is closing.
#[derive(Default)]
pub struct Lifecycle {
    tracker: TaskTracker,
    closing: CancellationToken,
}

impl Lifecycle {
    /// Tracks the work that a shutdown waits for (answers and uploads in flight).
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// True once [`close`](Self::close) was called: new work is refused.
    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Stops taking new work. Work in flight goes on; wait for it with [`drained`](Self::drained).
    pub fn close(&self) {
        self.closing.cancel();
        self.tracker.close();
    }

    /// Waits until the work in flight is done, at most `grace`. Returns false on timeout.
    pub async fn drained(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }
}
