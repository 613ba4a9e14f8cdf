//! Backups and restores. Through the library, on both backends: the search indexes follow a
//! database put back from a backup (their log went back) or swapped for another one (another
//! identity) by rebuilding, never by answering from what the database no longer holds. Through
//! the binaries (SQLite): `footnote backup` next to a running server, `footnote restore` refused
//! while it runs and for a file that is no Footnote backup, and the restored state served again.

#[macro_use]
mod common;

on_both_backends!(indexes_follow_a_database_put_back_from_a_backup, indexes_built_from_another_database_are_rebuilt,);

use std::path::Path;

use common::process::{Serve, Settings, text};
use common::*;
use footnote::rag::Rag;
use footnote_ollama_double::OllamaDouble;

const TOMATOES: (&str, &str) = ("tomatoes.md", "# Tomatoes\n\nWater tomatoes deeply twice a week.");
const ROSES: (&str, &str) = ("roses.md", "# Roses\n\nPrune roses in late winter above an outward bud.");
const PEARS: (&str, &str) = ("pears.md", "# Pears\n\nPick pears while still firm and let them ripen indoors.");
const MAPLES: (&str, &str) = ("maples.md", "# Maples\n\nTap maples for syrup when nights freeze and days thaw.");

/// The texts of the chunks BM25 finds for `word` in the `garden` collection, as the store holds
/// them: a stale index entry shows up as a text without the word.
async fn found(rag: &Rag, word: &str) -> Vec<String> {
    let hits = rag.indexes().bm25().search(&["garden".into()], word, 10).unwrap();
    let ids: Vec<i64> = hits.iter().map(|h| h.chunk_id as i64).collect();
    rag.store().chunks(&ids).await.unwrap().into_iter().map(|c| c.text).collect()
}

/// Asserts that the indexes hold exactly what the database holds, and that `word` is found in
/// the chunk that says it.
async fn consistent(rag: &Rag, word: &str) {
    let chunks = rag.store().counts(None).await.unwrap().chunks;
    assert_eq!(rag.indexes().bm25().len() as i64, chunks, "BM25 holds chunks the database does not");
    assert_eq!(vectors_total(rag).await, chunks, "the vector index holds vectors the database does not");
    let texts = found(rag, word).await;
    assert!(!texts.is_empty() && texts.iter().all(|t| t.to_lowercase().contains(word)), "{word}: {texts:?}");
}

/// Waits until the core of `env` that was just dropped is gone as a stopped process would be:
/// it no longer keeps the indexes (tasks that shared it may drop their handle a moment after
/// the work returned) and its pool has closed its SQLite files (a connection that closes last
/// deletes the log by name, which would take the next core's log).
async fn closed(env: &TestEnv) {
    let db = env.config.sqlite_path().display().to_string();
    let open_files = || {
        std::fs::read_dir("/proc/self/fd")
            .map(|fds| {
                fds.flatten()
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .any(|p| p.display().to_string().starts_with(&db))
            })
            .unwrap_or(false)
    };
    for _ in 0..200 {
        if Rag::index_access(&env.config, "test").unwrap().is_write() && !open_files() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the previous core still keeps the indexes or its database open after 10 s");
}

/// A copy of the test's database as it is now, to put back later: a file (SQLite) or a
/// database cloned from it (PostgreSQL). The core must be closed.
async fn take_backup(env: &TestEnv, backend: Backend) -> Backup {
    match backend {
        Backend::Sqlite => {
            let file = env.dir.path().join("backup.db");
            footnote::store::backup::backup(&env.config.sqlite_path(), &file).await.expect("backup");
            Backup::File(file)
        }
        Backend::Postgres => Backup::Database(clone_database(env).await),
    }
}

enum Backup {
    File(std::path::PathBuf),
    Database(pg::TestDatabase),
}

#[cfg(feature = "postgres")]
async fn clone_database(env: &TestEnv) -> pg::TestDatabase {
    let source = &env.database.as_ref().expect("a PostgreSQL test").name;
    let name = format!("{source}_copy");
    let mut admin = pg::admin().await;
    let sql = format!("CREATE DATABASE {name} TEMPLATE {source}");
    // The closed core's connections may take a moment to go; a template must have none.
    for attempt in 0.. {
        match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut admin).await {
            Ok(_) => break,
            Err(_) if attempt < 50 => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot copy the test database: {e}"),
        }
    }
    pg::TestDatabase { url: pg::with_database(&pg::server_url(), &name), name }
}

#[cfg(not(feature = "postgres"))]
async fn clone_database(_env: &TestEnv) -> pg::TestDatabase {
    panic!("this build has no PostgreSQL support")
}

/// Puts `backup` back the way an operator would by hand: the file copied in place of the
/// database (its write-ahead log removed), or the configuration pointed at the restored
/// database.
fn put_back(env: &mut TestEnv, backup: &Backup) {
    match backup {
        Backup::File(file) => {
            let db = env.config.sqlite_path();
            for side in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{side}", db.display()));
            }
            std::fs::copy(file, &db).expect("copy the backup in place of the database");
        }
        Backup::Database(database) => env.config.database.url = database.url.clone().into(),
    }
}

async fn indexes_follow_a_database_put_back_from_a_backup(backend: Backend) {
    let mut env = TestEnv::with_backend(backend).await;
    {
        let core = env.core().await;
        ingest(&core, "garden", TOMATOES.0, TOMATOES.1).await;
        core.rag().flush().unwrap();
    }
    closed(&env).await;
    let backup = take_backup(&env, backend).await;
    {
        let core = env.core().await;
        ingest(&core, "garden", ROSES.0, ROSES.1).await;
        ingest(&core, "garden", PEARS.0, PEARS.1).await;
        core.rag().flush().unwrap();
    }
    closed(&env).await;
    put_back(&mut env, &backup);

    // The indexes are ahead of the restored database's log: rebuilt from it.
    let core = env.core().await;
    let rag = core.rag();
    let rag = rag.as_ref();
    assert!(rag.indexes().is_writer());
    assert!(found(rag, "roses").await.is_empty(), "the index still holds what the backup does not");
    // New documents get the change numbers and chunk ids the lost ones had: they must be found
    // under their own words, not under the lost documents' ones.
    ingest(&core, "garden", MAPLES.0, MAPLES.1).await;
    consistent(rag, "maples").await;
    consistent(rag, "tomatoes").await;
    assert!(found(rag, "pears").await.is_empty(), "a lost document's words find a new document");
}

async fn indexes_built_from_another_database_are_rebuilt(backend: Backend) {
    let mut env = TestEnv::with_backend(backend).await;
    {
        let core = env.core().await;
        ingest(&core, "garden", TOMATOES.0, TOMATOES.1).await;
        core.rag().flush().unwrap();
    }
    // Another database, further along its own log than these indexes are along theirs.
    let other = TestEnv::with_backend(backend).await;
    {
        let core = other.core().await;
        for (name, text) in [ROSES, PEARS, MAPLES] {
            ingest(&core, "garden", name, text).await;
        }
        core.rag().flush().unwrap();
    }
    closed(&env).await;
    match backend {
        Backend::Sqlite => {
            let db = env.config.sqlite_path();
            for side in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{side}", db.display()));
            }
            footnote::store::backup::backup(&other.config.sqlite_path(), &db).await.expect("copy the other database");
        }
        Backend::Postgres => env.config.database.url = other.config.database.url.clone(),
    }

    let rag = env.rag().await;
    assert!(rag.indexes().is_writer());
    assert!(found(&rag, "tomatoes").await.is_empty(), "the index still holds the first database's chunks");
    for word in ["roses", "pears", "maples"] {
        consistent(&rag, word).await;
    }
}

fn write(dir: &Path, (name, body): (&str, &str)) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

async fn start(settings: &Settings) -> Serve {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || Serve::start(&settings)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_made_while_serving_is_restored_once_the_server_stopped() {
    let double = OllamaDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = Settings::new(&data, &double.url);
    let mut serve = start(&settings).await;

    let ingested = settings.run(&["ingest", &write(dir.path(), TOMATOES)]).await;
    assert!(ingested.status.success(), "{}", text(&ingested));
    let backup = dir.path().join("garden.db");
    let made = settings.run(&["backup", backup.to_str().unwrap()]).await;
    let shown = text(&made);
    assert!(made.status.success(), "{shown}");
    assert!(shown.contains("Backed up 1 document (1 chunk) in 1 collection"), "{shown}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds every document: its owner's only");
    }
    let again = settings.run(&["backup", backup.to_str().unwrap()]).await;
    assert!(!again.status.success() && text(&again).contains("already exists"), "{}", text(&again));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("partial"))
    );

    let ingested = settings.run(&["ingest", &write(dir.path(), ROSES)]).await;
    assert!(ingested.status.success(), "{}", text(&ingested));
    assert_eq!(serve.cites("When do I prune roses?").await.first().map(String::as_str), Some("Roses"));

    // Not under a running server: it keeps its database.
    let refused = settings.run(&["restore", backup.to_str().unwrap()]).await;
    let shown = text(&refused);
    assert!(!refused.status.success(), "{shown}");
    assert!(shown.contains(&format!("footnote serve (pid {}) uses this data directory", serve.pid())), "{shown}");
    assert_eq!(serve.cites("When do I prune roses?").await.first().map(String::as_str), Some("Roses"));
    assert!(serve.stop().await, "{}", serve.log_text());

    // Files that are no Footnote backup change nothing.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"SQLite format 3\0 but not really").unwrap();
    let truncated = dir.path().join("truncated.db");
    let bytes = std::fs::read(&backup).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for bad in [&garbage, &truncated, &dir.path().join("missing.db")] {
        let refused = settings.run(&["restore", bad.to_str().unwrap()]).await;
        assert!(!refused.status.success(), "restored {}: {}", bad.display(), text(&refused));
        assert!(text(&refused).lines().count() == 1, "{}", text(&refused));
        let listed = settings.run(&["documents"]).await;
        assert!(text(&listed).contains("Roses"), "a refused restore changed the database: {}", text(&listed));
    }

    // What a restore killed midway left behind goes with the next one.
    let leftover = data.join(".footnote.db.partial-999999");
    std::fs::write(&leftover, b"half a database").unwrap();
    let restored = settings.run(&["restore", backup.to_str().unwrap()]).await;
    let shown = text(&restored);
    assert!(restored.status.success(), "{shown}");
    assert!(shown.contains("Restored 1 document (1 chunk)"), "{shown}");
    let kept: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("footnote.db.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced database is kept: {kept:?}");
    assert!(!leftover.exists(), "the partial copy of an earlier restore is still there");
    assert!(shown.contains(&kept[0]), "{shown}");

    let serve = start(&settings).await;
    assert_eq!(serve.cites("How often should I water tomatoes?").await.first().map(String::as_str), Some("Tomatoes"));
    assert!(!serve.cites("When do I prune roses?").await.iter().any(|t| t == "Roses"));
    let ingested = settings.run(&["ingest", &write(dir.path(), PEARS)]).await;
    assert!(ingested.status.success(), "{}", text(&ingested));
    assert_eq!(serve.cites("When do I pick pears?").await.first().map(String::as_str), Some("Pears"));
}

#[tokio::test]
async fn backup_and_restore_point_postgres_users_to_its_tools() {
    let cli = common::cli::Cli::new("http://127.0.0.1:9");
    let settings = [("FOOTNOTE_DATABASE__URL", "postgres://footnote:secret@127.0.0.1:9/footnote")];
    for command in ["backup", "restore"] {
        let out = cli.run_with(&[command, "copy.db"], &settings);
        let shown = common::cli::text(&out);
        assert!(!out.status.success(), "{shown}");
        assert!(shown.contains("pg_dump") && !shown.contains("secret"), "{shown}");
    }
}
