//! Vectors in pgvector: the `chunk_vectors` table, its HNSW index, and search inside SQL.
//!
//! The column is typed `vector(N)` with N the embedding model's dimension (384 for all-minilm,
//! 768 for nomic-embed-text, …). N is only known when the first embedding arrives, so the table is
//! created then, inside the transaction that stores it, under an advisory lock so that two
//! instances cannot race to create it; `footnote reindex --embeddings` drops it.
//!
//! Every search filters by collection INSIDE the query (`WHERE collection_id = ANY($ids) ORDER BY
//! embedding <=> $q LIMIT k`). With a plain HNSW scan such a filter is applied to the
//! `hnsw.ef_search` nearest candidates only, so a small collection inside a large table could get
//! fewer than k rows, or none. pgvector 0.8's iterative index scan (`hnsw.iterative_scan =
//! relaxed_order`) keeps walking the graph until k rows pass the filter or `hnsw.max_scan_tuples`
//! were visited; the settings are `SET LOCAL` (via `set_config(…, true)`) inside the search's own
//! transaction, so they never leak to other queries on the pooled connection. If the index still
//! returns fewer than k rows while the collections hold more vectors, an exact scan of those
//! collections answers instead: nothing within the asker's collections is lost to the filter.

use pgvector::Vector;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::store::{Result, StoreError};

/// Serialises creating and dropping `chunk_vectors`.
const DDL_LOCK: i64 = 0x466f_6f74_6e02;
/// pgvector cannot build an HNSW index over `vector` columns wider than this.
const HNSW_MAX_DIMS: usize = 2000;
/// Collections with fewer vectors than this are searched exactly. Vectors of 768 dimensions are
/// stored out of line (TOAST), so an exact scan costs a few microseconds per row: cheaper than
/// walking the graph for a small collection, dearer for a large one (10,000 rows took ~60 ms).
pub const EXACT_BELOW: i64 = 2000;
/// Name of the HNSW index (EXPLAIN shows it when the index answers).
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

/// Makes sure `chunk_vectors` exists for vectors of `dims` dimensions, creating it with its
/// indexes in the caller's transaction when it does not.
pub(super) async fn ensure_table(conn: &mut PgConnection, store: &PgStore, dims: usize) -> Result<()> {
    let mismatch = |stored: usize| {
        StoreError::Corrupt(format!(
            "the stored vectors have {stored} dimensions but new ones have {dims}: run `footnote reindex --embeddings`"
        ))
    };
    match table_dims(conn).await? {
        Some(stored) if stored == dims => return Ok(()),
        Some(stored) => return Err(mismatch(stored)),
        None => {}
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *conn).await?;
    // Another instance may have created it while this one waited for the lock.
    match table_dims(conn).await? {
        Some(stored) if stored == dims => return Ok(()),
        Some(stored) => return Err(mismatch(stored)),
        None => {}
    }
    let create = format!(
        "CREATE TABLE chunk_vectors (
            chunk_id      BIGINT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
            collection_id BIGINT NOT NULL,
            embedding     vector({dims}) NOT NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *conn).await?;
    sqlx::query("CREATE INDEX chunk_vectors_collection ON chunk_vectors (collection_id)").execute(&mut *conn).await?;
    if dims <= HNSW_MAX_DIMS {
        let index = format!(
            "CREATE INDEX {HNSW_INDEX} ON chunk_vectors USING hnsw (embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})",
            store.opts.hnsw_m, store.opts.hnsw_ef_construction
        );
        sqlx::query(sqlx::AssertSqlSafe(index)).execute(&mut *conn).await?;
    } else {
        tracing::warn!(dims, "pgvector indexes at most {HNSW_MAX_DIMS} dimensions: vector search will scan exactly");
    }
    tracing::info!(dims, "created the vector table");
    Ok(())
}

/// Drops `chunk_vectors` (the embedding model changed) in the caller's transaction.
pub(super) async fn drop_table(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *conn).await?;
    sqlx::query("DROP TABLE IF EXISTS chunk_vectors").execute(&mut *conn).await?;
    Ok(())
}

/// Writes (or overwrites) the vectors of chunks of one collection.
pub(super) async fn upsert(conn: &mut PgConnection, collection_id: i64, items: &[(i64, &[f32])]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
    let vectors: Vec<Vector> = items.iter().map(|(_, v)| Vector::from(v.to_vec())).collect();
    sqlx::query(
        "INSERT INTO chunk_vectors (chunk_id, collection_id, embedding)
         SELECT u.id, $2, u.v FROM UNNEST($1::bigint[], $3::vector[]) AS u(id, v)
         ON CONFLICT (chunk_id) DO UPDATE SET embedding = EXCLUDED.embedding, collection_id = EXCLUDED.collection_id",
    )
    .bind(&ids)
    .bind(collection_id)
    .bind(&vectors)
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
/// know about iterative scans, and for a collection of a few percent of the table it prefers the
/// collection index plus a sort over every row of it, which detoasts them all.
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
