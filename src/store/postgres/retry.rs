//! Retrying what a lost connection interrupted.
//!
//! PostgreSQL restarting (or a network blip) shows up as connection refused/reset, `57P01
//! admin_shutdown` or a `08xxx` connection exception. Every store operation is one transaction, so
//! running it again is safe: an attempt that failed before its COMMIT left nothing behind. An
//! ingest whose COMMIT went through but whose answer was lost is found again by its content hash
//! and its attempt token on the next attempt, and reported as stored, never stored twice.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::store::{Result, StoreError};

/// First pause between attempts; doubled each time up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// True for errors that a new connection may not have: the server went away, refused, restarted,
/// or is still starting up; serialization failures and deadlocks too.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs worth another attempt: class 08 (connection exception), 57P01..57P03 (shutdown,
/// crash shutdown, cannot connect now), 53300 (too many connections), 40001/40P01.
pub fn transient_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
}

/// Runs `attempt` until it succeeds, fails for a reason that retrying cannot fix, or `budget`
/// has passed since the first attempt.
pub async fn retry<T, F, Fut>(operation: &'static str, budget: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let mut delay = FIRST_DELAY;
    let mut failures = 0u32;
    loop {
        match attempt().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(operation, failures, "database reachable again");
                }
                return Ok(value);
            }
            Err(StoreError::Database(e)) if is_transient(&e) && started.elapsed() + delay < budget => {
                failures += 1;
                // sqlx errors carry no connection string, so this cannot leak a password.
                tracing::warn!(operation, error = %e, retry_in = ?delay, "database unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_shutdown_codes_are_transient_others_not() {
        for code in ["08000", "08006", "08001", "57P01", "57P03", "40001"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22000", "0A000", "42501"] {
            assert!(!transient_code(code), "{code}");
        }
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_transient(&refused));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[tokio::test]
    async fn retries_transient_errors_within_the_budget_only() {
        let mut calls = 0;
        let value = retry("test", Duration::from_secs(5), || {
            calls += 1;
            let fail = calls < 3;
            async move {
                if fail {
                    Err(StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())))
                } else {
                    Ok(7)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((value, calls), (7, 3));

        let started = Instant::now();
        let err = retry("test", Duration::from_millis(500), || async {
            Err::<(), _>(StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)));
        assert!(started.elapsed() < Duration::from_secs(2), "the budget bounds the retries");

        let mut calls = 0;
        let err = retry("test", Duration::from_secs(5), || {
            calls += 1;
            async { Err::<(), _>(StoreError::Corrupt("bad".into())) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)));
        assert_eq!(calls, 1, "permanent errors are not retried");
    }
}
