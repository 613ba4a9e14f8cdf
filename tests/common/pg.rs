//! The PostgreSQL side of the test set-up: one fresh database per test, on the server that
//! `scripts/test-services.sh` started.

use std::time::Duration;

#[cfg(feature = "postgres")]
use sqlx::Connection;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The variable naming the test server (an admin URL; `scripts/test-services.sh` prints it).
pub const URL_VAR: &str = "FOOTNOTE_TEST_DATABASE_URL";

/// The admin URL of the test server; panics with the way to start one.
pub fn server_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set, so the PostgreSQL tests cannot run. Start the test server with \
             `eval \"$(scripts/test-services.sh)\"` (scripts/test.sh does this), then run the tests again."
        ),
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{URL_VAR} is not a URL: {e}"));
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

#[cfg(feature = "postgres")]
/// A connection to the test server's admin database; panics naming the script when there is
/// no server.
pub async fn admin() -> sqlx::PgConnection {
    let url = server_url();
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            panic!("no PostgreSQL test server at {URL_VAR} ({e}): start it with `eval \"$(scripts/test-services.sh)\"`")
        }
        Err(_) => panic!("the PostgreSQL test server at {URL_VAR} does not answer: run `scripts/test-services.sh`"),
    }
}

/// A database of one test, created from `template1` (which has pgvector) and dropped on drop.
pub struct TestDatabase {
    pub name: String,
    /// URL of the database (no password on the test server).
    pub url: String,
}

#[cfg(not(feature = "postgres"))]
impl TestDatabase {
    pub async fn create() -> TestDatabase {
        panic!("this build has no PostgreSQL support: build with the cargo feature `postgres`")
    }
}

#[cfg(feature = "postgres")]
impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let name = format!("footnote_test_{:016x}", rand::random::<u64>());
        let mut conn = admin().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template1")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = conn.close().await;
        TestDatabase { url: with_database(&server_url(), &name), name }
    }
}

#[cfg(feature = "postgres")]
impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Async work cannot run in drop: a short-lived runtime on its own thread drops it.
        let name = self.name.clone();
        let url = server_url();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(Ok(mut conn)) =
                    tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await
                {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// Generates one test per backend from `async fn name(backend: Backend)`: `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[cfg(feature = "postgres")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}
