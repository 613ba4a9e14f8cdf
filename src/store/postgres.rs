//! The scale path: PostgreSQL with pgvector, shared by several Footnote instances.
//!
//! Same model and behaviour as [`super::sqlite`]; vectors live in pgvector and are searched by the
//! database itself ([`vectors`]). Every operation is one transaction and is retried across a lost
//! connection ([`retry`]).
//!
//! # The change log and its watermark
//!
//! Every instance keeps its own BM25 index and follows `changes` by `seq`, remembering the last
//! one it applied. `seq` comes from a sequence, so two transactions can take seqs 10 and 11 and
//! commit in the other order: a reader that saw 11 first would move its watermark past 10 and
//! never apply it. To rule that out, every transaction that appends to the log first takes one
//! transaction-scoped advisory lock ([`CHANGE_LOG_LOCK`]) and appends at its very end, right
//! before COMMIT: appends are serialised, so seqs become visible in seq order, and once a reader
//! sees seq S every lower seq is either visible too or was rolled back for good. The lock is held
//! only for one multi-row INSERT and the COMMIT (extraction and embedding happen before the
//! transaction), so it costs little; the alternative (filtering by `pg_snapshot_xmin`) would need
//! the watermark to be a snapshot instead of a number.

mod lease;
mod operations;
mod retry;
mod stage;
mod vectors;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use retry::{is_transient, transient_code};
pub use vectors::{HNSW_INDEX, VectorPlan, hnsw_index_name, hnsw_index_sql};

use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that serialises appends to the change log (see the module docs).
pub const CHANGE_LOG_LOCK: i64 = 0x466f_6f74_6e01;
/// Serialises `CREATE EXTENSION` when several instances start at once.
const EXTENSION_LOCK: i64 = 0x466f_6f74_6e03;
/// The channel a trigger on `changes` notifies when a transaction appended to the log.
pub const CHANGES_CHANNEL: &str = "footnote_changes";

const DOCUMENT_COLUMNS: &str =
    "d.id, c.name AS collection, d.source, d.title, d.kind, d.content_hash, d.bytes, d.pages, d.added_at,
    (SELECT count(*) FROM chunks k WHERE k.document_id = d.id) AS chunks,
    (SELECT count(*) FROM chunks k WHERE k.document_id = d.id AND NOT k.embedded) AS pending";

/// Connection and vector-search settings.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long an operation keeps retrying while the database is unreachable.
    pub retry_for: Duration,
    /// `hnsw.ef_search` (raised to k when k is larger).
    pub ef_search: usize,
    /// HNSW `m` and `ef_construction` of a new vector index.
    pub hnsw_m: usize,
    pub hnsw_ef_construction: usize,
}

impl PgOptions {
    /// The options the configuration asks for.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        PgOptions {
            max_connections: cfg.database.max_connections,
            retry_for: cfg.database.retry_for,
            ef_search: cfg.retrieval.hnsw_ef_search,
            hnsw_m: cfg.retrieval.hnsw_connectivity,
            hnsw_ef_construction: cfg.retrieval.hnsw_ef_construction,
        }
    }
}

/// PostgreSQL behind the [`Store`] trait.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    opts: PgOptions,
    /// pgvector 0.8 or newer: iterative index scans are available.
    iterative_scan: bool,
    /// Names this store's claims on pending embeddings (see `pending_embeddings`).
    instance: String,
    /// The adapter leases of this instance.
    leases: std::sync::Arc<lease::PgLeases>,
}

/// The error for a server without pgvector, or a user who may not install it; `None` when the
/// SQLSTATE means something else.
pub fn pgvector_error(code: Option<&str>) -> Option<StoreError> {
    match code? {
        // 0A000: "extension is not available" (PostgreSQL 15+); 58P01: no control file (older).
        "0A000" | "58P01" => Some(StoreError::Pgvector(
            "the PostgreSQL server does not have the pgvector extension: install pgvector 0.8 or newer on the database server (package postgresql-NN-pgvector, or from source), then start Footnote again".into(),
        )),
        "42501" => Some(StoreError::Pgvector(
            "the database user may not create the pgvector extension: ask the database owner to run `CREATE EXTENSION vector;` in this database, then start Footnote again".into(),
        )),
        _ => None,
    }
}

/// Replaces the password of `url` wherever it appears in `text`.
fn redact(text: &str, url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.password() {
            Some(p) if !p.is_empty() => text.replace(p, "[REDACTED]"),
            _ => text.to_owned(),
        },
        Err(_) => text.to_owned(),
    }
}

/// Installs (if missing) the extension `name` (Footnote needs `vector`) and returns its version;
/// a server without it gives [`StoreError::Pgvector`].
pub async fn ensure_extension(pool: &PgPool, name: &str) -> Result<String> {
    let find = "SELECT extversion FROM pg_extension WHERE extname = $1";
    if let Some(v) = sqlx::query_scalar(find).bind(name).fetch_optional(pool).await? {
        return Ok(v);
    }
    let mut tx = pool.begin().await?;
    // Two instances starting together must not race on CREATE EXTENSION.
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(EXTENSION_LOCK).execute(&mut *tx).await?;
    let create = format!("CREATE EXTENSION IF NOT EXISTS \"{}\"", name.replace('"', ""));
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *tx).await {
        let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
        return Err(pgvector_error(code.as_deref()).unwrap_or(StoreError::Database(e)));
    }
    let version = sqlx::query_scalar(find).bind(name).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(version)
}

impl PgStore {
    /// Connects (retrying while the server is unreachable), installs pgvector if needed and
    /// applies pending migrations.
    pub async fn connect(url: &SecretString, opts: PgOptions) -> Result<Self> {
        let raw = url.expose_secret();
        let connect = PgConnectOptions::from_str(raw)
            .map_err(|e| StoreError::Config(redact(&format!("database.url is not a PostgreSQL URL: {e}"), raw)))?
            .application_name("footnote");
        let pool = retry::retry("connect", opts.retry_for, || {
            let connect = connect.clone();
            let max = opts.max_connections;
            async move {
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(connect)
                    .await?;
                Ok(pool)
            }
        })
        .await?;
        let version = retry::retry("install pgvector", opts.retry_for, || ensure_extension(&pool, "vector")).await?;
        let iterative_scan = version_at_least(&version, (0, 8));
        if !iterative_scan {
            tracing::warn!(
                version,
                "pgvector older than 0.8: no iterative index scans, small collections fall back to exact search"
            );
        }
        retry::retry("migrate", opts.retry_for, || async { Ok(MIGRATOR.run(&pool).await?) }).await?;
        let leases = std::sync::Arc::new(lease::PgLeases::new(connect, pool.clone(), super::lease::instance_name()));
        let store = PgStore { pool, opts, iterative_scan, instance: format!("{:016x}", rand::random::<u64>()), leases };
        retry::retry("clean stages", store.opts.retry_for, || store.clean_stages()).await?;
        Ok(store)
    }

    /// Applies pending migrations (`footnote migrate`); they also run on every start.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        MIGRATOR.run(&self.pool).await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?;
        Ok(applied)
    }

    /// The connection pool (tests and the benchmark load data through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Vector search with an explicit plan (see [`VectorPlan`]).
    pub async fn vector_search_with(
        &self,
        collections: &[String],
        query: &[f32],
        k: usize,
        plan: VectorPlan,
    ) -> Result<Vec<(i64, f32)>> {
        retry::retry("vector search", self.opts.retry_for, || vectors::search(self, collections, query, k, plan)).await
    }

    /// PostgreSQL's plan for the vector search answers use, as `EXPLAIN` prints it.
    pub async fn explain_vector_search(&self, collections: &[String], query: &[f32], k: usize) -> Result<String> {
        vectors::explain(self, collections, query, k).await
    }
}

fn version_at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pgvector_errors_name_pgvector_and_the_fix() {
        for code in ["0A000", "58P01"] {
            let message = pgvector_error(Some(code)).expect("mapped").to_string();
            assert!(message.contains("pgvector"), "{message}");
            assert!(message.contains("install"), "{message}");
        }
        let message = pgvector_error(Some("42501")).expect("mapped").to_string();
        assert!(message.contains("CREATE EXTENSION vector"), "{message}");
        assert!(pgvector_error(Some("23505")).is_none());
        assert!(pgvector_error(None).is_none());
    }

    #[test]
    fn passwords_are_redacted_and_versions_compared() {
        let url = "postgres://me:hunter2@db:5432/footnote";
        assert_eq!(redact("bad url postgres://me:hunter2@db", url), "bad url postgres://me:[REDACTED]@db");
        assert!(version_at_least("0.8.2", (0, 8)));
        assert!(version_at_least("1.0.0", (0, 8)));
        assert!(!version_at_least("0.7.4", (0, 8)));
    }
}
