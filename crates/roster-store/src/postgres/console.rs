//! PostgreSQL implementation of [`ConsoleStore`]. Sessions, setup links and operators are
//! global tables: every write is a global write transaction (no tenant lock).

use super::db;
use time::OffsetDateTime;

use super::query::to_ms;
use super::{backend, db_err, from_ms, opt_from_ms, PostgresStore};
use crate::console::{ConsoleSession, ConsoleStore, Operator, SetupLink};
use crate::{StoreError, StoreResult};

type SessionRow = (String, Option<String>, String, i64, i64);
type OperatorRow = (String, String, i64, i64, Option<i64>, i64, Option<i64>);

const OPERATOR_COLS: &str = "email, password_hash, created_at, password_changed_at, \
                             last_sign_in_at, failed_attempts, locked_until";

fn operator_from(row: OperatorRow) -> StoreResult<Operator> {
    let (email, password_hash, created, changed, last, failed, locked) = row;
    Ok(Operator {
        email,
        password_hash,
        created_at: from_ms(created)?,
        password_changed_at: from_ms(changed)?,
        last_sign_in_at: opt_from_ms(last)?,
        failed_attempts: u32::try_from(failed).unwrap_or(u32::MAX),
        locked_until: opt_from_ms(locked)?,
    })
}

/// Ends every session of an operator, in the transaction that changed its account.
async fn end_operator_sessions(tx: &mut super::Conn, email: &str) -> StoreResult<()> {
    db::query("DELETE FROM console_sessions WHERE actor = ?")
        .bind(format!("operator:{email}"))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait::async_trait]
impl ConsoleStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn insert_session(&self, s: &ConsoleSession) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query("DELETE FROM console_sessions WHERE expires_at <= ?")
            .bind(to_ms(s.created_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        db::query(
            "INSERT INTO console_sessions (id_hash, tenant_id, actor, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&s.id_hash)
        .bind(&s.tenant_id)
        .bind(&s.actor)
        .bind(to_ms(s.created_at))
        .bind(to_ms(s.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "session"))?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn find_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ConsoleSession>> {
        let row: Option<SessionRow> = db::query_as(
            "SELECT id_hash, tenant_id, actor, created_at, expires_at \
             FROM console_sessions WHERE id_hash = ? AND expires_at > ?",
        )
        .bind(id_hash)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|(id_hash, tenant_id, actor, created, expires)| {
            Ok(ConsoleSession {
                id_hash,
                tenant_id,
                actor,
                created_at: from_ms(created)?,
                expires_at: from_ms(expires)?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query("DELETE FROM console_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn put_once(
        &self,
        id_hash: &str,
        key: &str,
        sealed: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query("DELETE FROM console_once WHERE expires_at <= ?")
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        db::query(
            "INSERT INTO console_once (id_hash, key, sealed, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id_hash, key) DO UPDATE SET sealed = excluded.sealed, \
             expires_at = excluded.expires_at",
        )
        .bind(id_hash)
        .bind(key)
        .bind(sealed)
        .bind(to_ms(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn take_once(
        &self,
        id_hash: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.write_global().await?;
        let row: Option<(String, i64)> = db::query_as(
            "DELETE FROM console_once WHERE id_hash = ? AND key = ? RETURNING sealed, expires_at",
        )
        .bind(id_hash)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(row.filter(|(_, until)| *until > to_ms(now)).map(|(s, _)| s))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_sessions_of(&self, actor: &str) -> StoreResult<u64> {
        let mut tx = self.write_global().await?;
        let n = db::query("DELETE FROM console_sessions WHERE actor = ?")
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    #[tracing::instrument(skip_all)]
    async fn insert_setup_link(&self, l: &SetupLink) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        // Links that expired more than a day ago are no longer worth a "this link expired"
        // answer; keep the table small.
        db::query("DELETE FROM console_setup_links WHERE expires_at <= ?")
            .bind(to_ms(l.created_at - time::Duration::days(1)))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        db::query(
            "INSERT INTO console_setup_links (hash, tenant_id, created_by, created_at, expires_at, used_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&l.hash)
        .bind(&l.tenant_id)
        .bind(&l.created_by)
        .bind(to_ms(l.created_at))
        .bind(to_ms(l.expires_at))
        .bind(l.used_at.map(to_ms))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "setup link"))?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_setup_links(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, u64)> {
        let mut tx = self.write_global().await?;
        let links = db::query(
            "UPDATE console_setup_links SET expires_at = ? \
             WHERE tenant_id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(to_ms(now))
        .bind(tenant)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        // The actor of every session a setup link opens (see the console's `setup_use`).
        let sessions = db::query("DELETE FROM console_sessions WHERE actor = ?")
            .bind(format!("setup-link:{tenant}"))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok((links, sessions))
    }

    #[tracing::instrument(skip_all)]
    async fn consume_setup_link(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<SetupLink>> {
        let mut tx = self.write_global().await?;
        let row: Option<(String, String, String, i64, i64, Option<i64>)> = db::query_as(
            "UPDATE console_setup_links SET used_at = ? \
             WHERE hash = ? AND used_at IS NULL AND expires_at > ? \
             RETURNING hash, tenant_id, created_by, created_at, expires_at, used_at",
        )
        .bind(to_ms(now))
        .bind(hash)
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        row.map(|(hash, tenant_id, created_by, created, expires, used)| {
            Ok(SetupLink {
                hash,
                tenant_id,
                created_by,
                created_at: from_ms(created)?,
                expires_at: from_ms(expires)?,
                used_at: opt_from_ms(used)?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn setup_link_tenant(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        db::query_scalar(crate::console::SETUP_LINK_TENANT_SQL)
            .bind(hash)
            .bind(to_ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn create_operator(&self, op: &Operator) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query(&format!(
            "INSERT INTO console_operators ({OPERATOR_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&op.email)
        .bind(&op.password_hash)
        .bind(to_ms(op.created_at))
        .bind(to_ms(op.password_changed_at))
        .bind(op.last_sign_in_at.map(to_ms))
        .bind(i64::from(op.failed_attempts))
        .bind(op.locked_until.map(to_ms))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "operator"))?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn get_operator(&self, email: &str) -> StoreResult<Option<Operator>> {
        let row: Option<OperatorRow> = db::query_as(&format!(
            "SELECT {OPERATOR_COLS} FROM console_operators WHERE email = ?"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(operator_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        let rows: Vec<OperatorRow> = db::query_as(&format!(
            "SELECT {OPERATOR_COLS} FROM console_operators ORDER BY email"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(operator_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn set_operator_password(
        &self,
        email: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        let n = db::query(
            "UPDATE console_operators SET password_hash = ?, password_changed_at = ?, \
             failed_attempts = 0, locked_until = NULL WHERE email = ?",
        )
        .bind(password_hash)
        .bind(to_ms(now))
        .bind(email)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        end_operator_sessions(&mut tx, email).await?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_operator(&self, email: &str) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        let n = db::query("DELETE FROM console_operators WHERE email = ?")
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        end_operator_sessions(&mut tx, email).await?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn operator_sign_in_failed(
        &self,
        email: &str,
        now: OffsetDateTime,
        max_failures: u32,
        lock: time::Duration,
    ) -> StoreResult<Option<Operator>> {
        let mut tx = self.write_global().await?;
        // An expired lock starts a new count; reaching the limit locks and resets the count,
        // so that after the lock the operator has the full number of tries again.
        let row: Option<OperatorRow> = db::query_as(&format!(
            "UPDATE console_operators SET \
               failed_attempts = CASE WHEN failed_attempts + 1 >= ?1 THEN 0 \
                                      ELSE failed_attempts + 1 END, \
               locked_until = CASE WHEN failed_attempts + 1 >= ?1 THEN ?2::bigint \
                                   ELSE locked_until END \
             WHERE email = ?3 RETURNING {OPERATOR_COLS}"
        ))
        .bind(i64::from(max_failures.max(1)))
        .bind(to_ms(now + lock))
        .bind(email)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        row.map(operator_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn operator_signed_in(&self, email: &str, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query(
            "UPDATE console_operators SET last_sign_in_at = ?, failed_attempts = 0, \
             locked_until = NULL WHERE email = ?",
        )
        .bind(to_ms(now))
        .bind(email)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}

crate::catalogue::catalogue_store!(PostgresStore, pool, write_global);
