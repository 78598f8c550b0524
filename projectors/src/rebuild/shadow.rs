//! The rebuild's tables while they are bulk loaded, and what they become before the swap.
//!
//! The migrations create them as the live ones are. For the bulk load they are made `UNLOGGED`
//! (their rows skip the write-ahead log) and lose their secondary indexes (no index to maintain
//! row by row); their primary keys, unique and check constraints stay, since the fold loads rows
//! by key and the ordinary path that sets refused events aside upserts on them. Nobody reads
//! these tables before the swap, and a crash of PostgreSQL, which empties unlogged tables, ends
//! in a rebuild started over from a dropped schema: none of this can be seen. Before the swap
//! the tables are made `LOGGED` again and the indexes created from their definitions, each built
//! once by a sort of the whole table, so the tables swapped in are the migrations' own.

use sqlx::{PgConnection, PgPool};

/// The `maintenance_work_mem` the index builds get, so a large table sorts in memory.
const INDEX_BUILD_MEMORY: &str = "256MB";

/// What a projection's tables lost for the bulk load, to be given back before the swap.
#[derive(Debug)]
pub(super) struct Deferred {
    tables: Vec<String>,
    /// The `CREATE INDEX` statements of the indexes that back no constraint.
    indexes: Vec<String>,
}

/// Makes `tables` of `schema` ready for the bulk load: drops the indexes that back no
/// constraint and makes them unlogged.
pub(super) async fn prepare(conn: &mut PgConnection, schema: &str, tables: &[&str]) -> Result<Deferred, sqlx::Error> {
    let tables: Vec<String> = tables.iter().map(|&t| t.to_owned()).collect();
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT index.relname::text, pg_get_indexdef(i.indexrelid) \
         FROM pg_index i \
         JOIN pg_class index ON index.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND t.relname = ANY($2) \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
         ORDER BY 1",
    )
    .bind(schema)
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{schema}\".\"{name}\""))
            .execute(&mut *conn)
            .await?;
    }
    for table in &tables {
        sqlx::query(&format!("ALTER TABLE \"{schema}\".{table} SET UNLOGGED"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Deferred {
        tables: tables.iter().map(|t| format!("\"{schema}\".{t}")).collect(),
        indexes: indexes.into_iter().map(|(_, definition)| definition).collect(),
    })
}

/// Makes the tables logged again and creates their indexes, two at a time.
///
/// `SET LOGGED` rewrites a table with its remaining indexes, so it comes first: an index
/// created before it would be built twice.
pub(super) async fn finish(pool: &PgPool, deferred: Deferred) -> Result<(), sqlx::Error> {
    for table in &deferred.tables {
        sqlx::query(&format!("ALTER TABLE {table} SET LOGGED"))
            .execute(pool)
            .await?;
    }
    // Builds on one table share its `SHARE` lock, so they run side by side: one per core of a
    // small server, leaving the server's own parallel workers to spread a build further.
    let builders = 2.min(deferred.indexes.len());
    let queue = std::sync::Mutex::new(deferred.indexes.into_iter());
    let next = || queue.lock().expect("the index queue is never poisoned").next();
    let build = |_| async {
        let mut conn = pool.acquire().await?;
        sqlx::query(&format!("SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"))
            .execute(&mut *conn)
            .await?;
        while let Some(index) = next() {
            sqlx::query(&index).execute(&mut *conn).await?;
        }
        sqlx::query("RESET maintenance_work_mem").execute(&mut *conn).await?;
        Ok::<_, sqlx::Error>(())
    };
    futures::future::try_join_all((0..builders).map(build)).await?;
    Ok(())
}
