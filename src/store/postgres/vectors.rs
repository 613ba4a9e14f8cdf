//! Vectors in pgvector: the `chunk_vectors` table, its HNSW indexes, and search inside SQL.
//!
//! The column is typed `vector(N)` with N the embedding model's dimension (384 for all-minilm,
//! 768 for nomic-embed-text, …). N is only known when the first embedding arrives, so the table is
//! created then, inside the transaction that stores it, under an advisory lock so that two
//! instances cannot race to create it; `footnote reindex --embeddings` drops it.
//!
//! The table is partitioned by collection (`PARTITION BY LIST (collection_id)`), one partition
//! with its own HNSW index per collection, created with the collection's first vector. Every
//! search filters by collection inside the query (`WHERE collection_id = ANY($ids) ORDER BY
//! embedding <=> $q LIMIT k`) and PostgreSQL prunes the other partitions, so each collection is
//! searched in its own graph: a small collection next to a large one gets its full k without the
//! index walking past the large one's vectors (a filter on one shared graph is applied to the
//! `hnsw.ef_search` nearest candidates, which may all belong to someone else). This is the
//! embedded backend's design too (one vector index per collection). The search's settings are
//! `SET LOCAL` (via `set_config(…, true)`) inside its own transaction, so they never leak to other
//! queries on the pooled connection; pgvector 0.8's iterative scans stay on as a second line, and
//! if the index still returns fewer than k rows while the collections hold more vectors, an exact
//! scan of those collections answers instead: nothing within the asker's collections is lost.
//!
//! Vectors are stored inline (`STORAGE PLAIN`): 768 floats are 3 KB, over PostgreSQL's 2 KB
//! TOAST threshold, and an out-of-line vector costs an extra index lookup per row in an exact scan.

use pgvector::Vector;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::store::{Result, StoreError};

/// Serialises creating and dropping `chunk_vectors` and its partitions.
const DDL_LOCK: i64 = 0x466f_6f74_6e02;
/// pgvector cannot build an HNSW index over `vector` columns wider than this.
const HNSW_MAX_DIMS: usize = 2000;
/// Collections with fewer vectors than this are searched exactly. An exact scan of inline
/// 768-d vectors costs about 3 µs per row on a loaded 2-core machine (10,000 rows: 27-32 ms;
/// 41-53 ms when they were TOASTed): cheaper than walking the graph for a small collection,
/// dearer for a large one.
pub const EXACT_BELOW: i64 = 2000;
/// How the names of the HNSW indexes start (EXPLAIN shows one when an index answers).
pub const HNSW_INDEX: &str = "chunk_vectors_hnsw";
/// Most index tuples an iterative scan visits before giving up (pgvector's default is 20,000).
const MAX_SCAN_TUPLES: u32 = 50_000;
/// pgvector's upper bound for `hnsw.ef_search`.
const EF_SEARCH_MAX: usize = 1000;

/// The search through the HNSW index; `relaxed_order` may return rows slightly out of order, so
/// callers sort the (at most k) rows again.
const INDEX_SEARCH: &str = "SELECT chunk_id, embedding <=> $1 AS distance FROM chunk_vectors
    WHERE collection_id = ANY($2) ORDER BY embedding <=> $1 LIMIT $3";

/// The exact search: the MATERIALIZED CTE keeps the planner from using the HNSW index.
const EXACT_SEARCH: &str = "WITH scope AS MATERIALIZED (
        SELECT chunk_id, embedding <=> $1 AS distance FROM chunk_vectors WHERE collection_id = ANY($2))
    SELECT chunk_id, distance FROM scope ORDER BY distance LIMIT $3";

/// How [`PgStore::vector_search_with`] searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorPlan {
    /// What answers use: exact below [`EXACT_BELOW`] vectors in the collections; else HNSW with
    /// iterative scans, then an exact scan if that still found fewer than k while more exist.
    Default,
    /// HNSW with iterative scans only, whatever the collection's size (tests use it to observe
    /// the index alone).
    IndexOnly,
    /// Exact: every vector of the collections is compared (the benchmark's ground truth).
    Exact,
}

/// The dimension of `chunk_vectors.embedding`, or `None` while the table does not exist.
pub(super) async fn table_dims(conn: &mut PgConnection) -> Result<Option<usize>> {
    let dims: Option<i32> = sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass('chunk_vectors') AND attname = 'embedding'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(dims.map(|d| d as usize))
}

/// The stored vectors of these chunks (none while the table does not exist).
pub(super) async fn of_chunks(store: &PgStore, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
    let mut conn = store.pool.acquire().await?;
    if ids.is_empty() || table_dims(&mut conn).await?.is_none() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT chunk_id, embedding FROM chunk_vectors WHERE chunk_id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let vector: Vector = row.try_get("embedding")?;
            Ok((row.try_get("chunk_id")?, vector.to_vec()))
        })
        .collect()
}

/// The name of a collection's partition of `chunk_vectors`.
fn partition(collection_id: i64) -> String {
    format!("chunk_vectors_c{collection_id}")
}

/// The name of the HNSW index of a collection's partition (it starts with [`HNSW_INDEX`]).
pub fn hnsw_index_name(collection_id: i64) -> String {
    format!("{HNSW_INDEX}_c{collection_id}")
}

/// The statement that builds a collection's HNSW index.
pub fn hnsw_index_sql(collection_id: i64, m: usize, ef_construction: usize) -> String {
    format!(
        "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})",
        hnsw_index_name(collection_id),
        partition(collection_id),
    )
}

/// Makes sure `chunk_vectors` exists for vectors of `dims` dimensions, with a partition for each
/// of `collection_ids`. The DDL runs in its own short transaction, before the write that needs
/// it: creating a partition locks the whole table, which must not last as long as an ingest.
/// An empty table or partition left behind by a write that then fails is harmless.
pub(super) async fn prepare_write(store: &PgStore, dims: usize, collection_ids: &[i64]) -> Result<()> {
    let mut conn = store.pool.acquire().await?;
    let stored = table_dims(&mut conn).await?;
    let mut missing = Vec::new();
    for &id in collection_ids {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(partition(id)).fetch_one(&mut *conn).await?;
        if !exists {
            missing.push(id);
        }
    }
    if stored == Some(dims) && missing.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *tx).await?;
    // Another instance may have done it while this one waited for the lock.
    match table_dims(&mut tx).await? {
        Some(stored) if stored == dims => {}
        Some(stored) => {
            return Err(StoreError::Corrupt(format!(
                "the stored vectors have {stored} dimensions but new ones have {dims}: run `footnote reindex --embeddings`"
            )));
        }
        None => {
            let create = format!(
                "CREATE TABLE chunk_vectors (
                    collection_id BIGINT NOT NULL,
                    chunk_id      BIGINT NOT NULL,
                    embedding     vector({dims}) NOT NULL,
                    PRIMARY KEY (collection_id, chunk_id)
                ) PARTITION BY LIST (collection_id)"
            );
            sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *tx).await?;
            // Inline unless a row cannot fit a page (with toast_tuple_target on each partition).
            sqlx::query("ALTER TABLE chunk_vectors ALTER COLUMN embedding SET STORAGE MAIN").execute(&mut *tx).await?;
            tracing::info!(dims, "created the vector table");
        }
    }
    for id in missing {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(partition(id)).fetch_one(&mut *tx).await?;
        if exists {
            continue;
        }
        let create = format!(
            "CREATE TABLE {} PARTITION OF chunk_vectors FOR VALUES IN ({id}) WITH (toast_tuple_target = 8160)",
            partition(id)
        );
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *tx).await?;
        if dims <= HNSW_MAX_DIMS {
            let index = hnsw_index_sql(id, store.opts.hnsw_m, store.opts.hnsw_ef_construction);
            sqlx::query(sqlx::AssertSqlSafe(index)).execute(&mut *tx).await?;
        } else {
            tracing::warn!(
                dims,
                "pgvector indexes at most {HNSW_MAX_DIMS} dimensions: vector search will scan exactly"
            );
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Drops `chunk_vectors` with every partition (the embedding model changed) in the caller's
/// transaction.
pub(super) async fn drop_table(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *conn).await?;
    sqlx::query("DROP TABLE IF EXISTS chunk_vectors").execute(&mut *conn).await?;
    Ok(())
}

/// Writes (or overwrites) the vectors of chunks of one collection. Its partition exists
/// ([`prepare_write`]).
pub(super) async fn upsert(conn: &mut PgConnection, collection_id: i64, items: &[(i64, &[f32])]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
    let vectors: Vec<Vector> = items.iter().map(|(_, v)| Vector::from(v.to_vec())).collect();
    sqlx::query(
        "INSERT INTO chunk_vectors (collection_id, chunk_id, embedding)
         SELECT $2, u.id, u.v FROM UNNEST($1::bigint[], $3::vector[]) AS u(id, v)
         ON CONFLICT (collection_id, chunk_id) DO UPDATE SET embedding = EXCLUDED.embedding",
    )
    .bind(&ids)
    .bind(collection_id)
    .bind(&vectors)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the vectors of deleted chunks of one collection (there is no foreign key to cascade
/// them: it would probe every partition for each deleted chunk).
pub(super) async fn delete(conn: &mut PgConnection, collection_id: i64, chunk_ids: &[i64]) -> Result<()> {
    if chunk_ids.is_empty() || table_dims(conn).await?.is_none() {
        return Ok(());
    }
    sqlx::query("DELETE FROM chunk_vectors WHERE collection_id = $1 AND chunk_id = ANY($2)")
        .bind(collection_id)
        .bind(chunk_ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Looks up the table's dimension and the collections' ids, and sets the scan settings for the
/// rest of the transaction, in one round trip.
async fn prepare(
    conn: &mut PgConnection,
    store: &PgStore,
    collections: &[String],
    k: usize,
) -> Result<(Option<usize>, Vec<i64>)> {
    let ef_search = store.opts.ef_search.max(k).min(EF_SEARCH_MAX).to_string();
    let mut sql = String::from(
        "SELECT (SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass('chunk_vectors') AND attname = 'embedding') AS dims,
                ARRAY(SELECT id FROM collections WHERE name = ANY($1)) AS ids,
                set_config('hnsw.ef_search', $2, true)",
    );
    // pgvector before 0.8 reserves the `hnsw.` prefix without these two settings: setting them
    // would fail there.
    if store.iterative_scan {
        sql.push_str(
            ", set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.max_scan_tuples', $3, true)",
        );
    }
    let mut select = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(collections).bind(ef_search);
    if store.iterative_scan {
        select = select.bind(MAX_SCAN_TUPLES.to_string());
    }
    let row = select.fetch_one(&mut *conn).await?;
    let dims: Option<i32> = row.try_get("dims")?;
    Ok((dims.map(|d| d as usize), row.try_get("ids")?))
}

async fn run(
    conn: &mut PgConnection,
    sql: &'static str,
    query: &Vector,
    ids: &[i64],
    k: usize,
) -> Result<Vec<(i64, f64)>> {
    let rows = sqlx::query(sql).bind(query).bind(ids).bind(k as i64).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.try_get("chunk_id")?, r.try_get("distance")?))).collect()
}

/// Top `k` chunks of `collections` by cosine similarity (1 − cosine distance), best first.
pub(super) async fn search(
    store: &PgStore,
    collections: &[String],
    query: &[f32],
    k: usize,
    plan: VectorPlan,
) -> Result<Vec<(i64, f32)>> {
    if k == 0 || collections.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.pool.begin().await?;
    let (dims, ids) = prepare(&mut tx, store, collections, k).await?;
    if dims != Some(query.len()) || ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let q = Vector::from(query.to_vec());
    let plan = choose(&mut tx, &ids, plan).await?;
    let mut hits = match plan {
        VectorPlan::Exact => run(&mut tx, EXACT_SEARCH, &q, &ids, k).await?,
        VectorPlan::Default | VectorPlan::IndexOnly => run(&mut tx, INDEX_SEARCH, &q, &ids, k).await?,
    };
    if plan == VectorPlan::Default && hits.len() < k {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chunk_vectors WHERE collection_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&mut *tx)
            .await?;
        if stored as usize > hits.len() {
            tracing::debug!(found = hits.len(), stored, "the index scan fell short; searching exactly");
            hits = run(&mut tx, EXACT_SEARCH, &q, &ids, k).await?;
        }
    }
    tx.commit().await?;
    hits.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(hits.into_iter().map(|(id, distance)| (id, (1.0 - distance) as f32)).collect())
}

/// Decides between the exact scan and the index for [`VectorPlan::Default`] by counting the
/// collections' vectors up to [`EXACT_BELOW`] (a short index-only scan), and steers the planner
/// to the HNSW index when that is the choice: its estimate for a filtered HNSW scan does not
/// know about iterative scans, and it may prefer a scan of every row of the partitions plus a sort.
async fn choose(conn: &mut PgConnection, ids: &[i64], plan: VectorPlan) -> Result<VectorPlan> {
    if plan == VectorPlan::Default {
        let few: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM chunk_vectors WHERE collection_id = ANY($1) LIMIT $2) AS s",
        )
        .bind(ids)
        .bind(EXACT_BELOW)
        .fetch_one(&mut *conn)
        .await?;
        if few < EXACT_BELOW {
            return Ok(VectorPlan::Exact);
        }
    }
    if plan != VectorPlan::Exact {
        sqlx::query(
            "SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true),
                    set_config('enable_bitmapscan', 'off', true)",
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(plan)
}

/// The plan PostgreSQL picks for the search answers use (`EXPLAIN` text, one line per node).
pub(super) async fn explain(store: &PgStore, collections: &[String], query: &[f32], k: usize) -> Result<String> {
    let mut tx = store.pool.begin().await?;
    let (_, ids) = prepare(&mut tx, store, collections, k).await?;
    let sql = match choose(&mut tx, &ids, VectorPlan::Default).await? {
        VectorPlan::Exact => format!("EXPLAIN {EXACT_SEARCH}"),
        _ => format!("EXPLAIN {INDEX_SEARCH}"),
    };
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(Vector::from(query.to_vec()))
        .bind(&ids)
        .bind(k as i64)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(lines.join("\n"))
}
