//! The PostgreSQL schema migrations: forward-only, all pending ones in one transaction, under
//! an advisory lock, so that nodes starting together migrate once (the others wait for the
//! lock, then find nothing to do). Recorded in `_roster_migrations` with each file's SHA-384,
//! and a database whose recorded migration differs from the binary's is refused rather than
//! half-migrated.

use sha2::{Digest, Sha384};

use super::db::Conn;
use crate::{StoreError, StoreResult};

/// `(version, description, SQL)` of every migration, in order. A test checks that this list
/// and `migrations/postgres/` agree.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "cluster",
        include_str!("../../migrations/postgres/0002_cluster.sql"),
    ),
];

/// The advisory lock key of migrations (any constant: "roster" in ASCII).
const LOCK_KEY: i64 = 0x726f_7374_6572;

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("migrating the PostgreSQL database: {e}").into())
}

/// Runs the pending migrations on `c` (a connection outside any transaction).
pub(super) async fn run(c: &mut Conn) -> StoreResult<()> {
    let client = c.client();
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| failed(pg_message(&e)))?;
    let done = async {
        // A transaction-level advisory lock, taken before anything else (even the creation of
        // the bookkeeping table, which two nodes racing would both attempt): released by the
        // COMMIT, or the ROLLBACK of a failure.
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS _roster_migrations ( \
                     version BIGINT PRIMARY KEY, \
                     description TEXT NOT NULL, \
                     installed_on BIGINT NOT NULL, \
                     checksum TEXT NOT NULL)",
            )
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        let applied = client
            .query(
                "SELECT version, checksum FROM _roster_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        let applied: Vec<(i64, String)> = applied.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (version, checksum) in &applied {
            match MIGRATIONS.iter().find(|m| m.0 == *version) {
                Some((_, _, sql)) if checksum_of(sql) == *checksum => {}
                Some(_) => {
                    return Err(failed(format!(
                        "migration {version} was changed after it was applied"
                    )))
                }
                None => {
                    return Err(failed(format!(
                        "the database has migration {version}, which this Roster does not know: \
                         it was migrated by a newer Roster"
                    )))
                }
            }
        }
        // When it was applied, for people reading the table; nothing compares it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for (version, description, sql) in MIGRATIONS {
            if applied.iter().any(|(v, _)| v == version) {
                continue;
            }
            tracing::info!(version, description, "applying PostgreSQL migration");
            client.batch_execute(sql).await.map_err(|e| {
                failed(format!(
                    "migration {version} ({description}): {}",
                    pg_message(&e)
                ))
            })?;
            client
                .execute(
                    "INSERT INTO _roster_migrations (version, description, installed_on, checksum) \
                     VALUES ($1, $2, $3, $4)",
                    &[version, description, &now, &checksum_of(sql)],
                )
                .await
                .map_err(|e| failed(pg_message(&e)))?;
        }
        Ok(())
    }
    .await;
    match done {
        Ok(()) => client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| failed(pg_message(&e))),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn checksum_of(sql: &str) -> String {
    hex::encode(Sha384::digest(sql.as_bytes()))
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn the_list_matches_the_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, _, _)) in files.iter().zip(MIGRATIONS) {
            assert!(file.starts_with(&format!("{version:04}_")), "{file}");
        }
    }
}
