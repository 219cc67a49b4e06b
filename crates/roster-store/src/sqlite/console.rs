//! SQLite implementation of [`ConsoleStore`].

use crate::sqlite::db;
use time::OffsetDateTime;

use super::query::to_ms;
use super::{backend, db_err, from_ms, opt_from_ms, SqliteStore};
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
async fn end_operator_sessions(tx: &mut super::Tx, email: &str) -> StoreResult<()> {
    db::query("DELETE FROM console_sessions WHERE actor = ?")
        .bind(format!("operator:{email}"))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait::async_trait]
impl ConsoleStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn insert_session(&self, s: &ConsoleSession) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
        .fetch_optional(&self.reader)
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn create_operator(&self, op: &Operator) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(operator_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        let rows: Vec<OperatorRow> = db::query_as(&format!(
            "SELECT {OPERATOR_COLS} FROM console_operators ORDER BY email"
        ))
        .fetch_all(&self.reader)
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
        // An expired lock starts a new count; reaching the limit locks and resets the count,
        // so that after the lock the operator has the full number of tries again.
        let row: Option<OperatorRow> = db::query_as(&format!(
            "UPDATE console_operators SET \
               failed_attempts = CASE WHEN failed_attempts + 1 >= ?1 THEN 0 \
                                      ELSE failed_attempts + 1 END, \
               locked_until = CASE WHEN failed_attempts + 1 >= ?1 THEN ?2 ELSE locked_until END \
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
        let mut tx = self.write().await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, Tenant, TenantSettings};
    use time::Duration;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20000)
    }

    async fn store_with_tenant() -> SqliteStore {
        let s = SqliteStore::open("sqlite::memory:").await.unwrap();
        s.create_tenant(&Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            idp: "okta".into(),
            created_at: t0(),
            settings: TenantSettings::default(),
        })
        .await
        .unwrap();
        s
    }

    #[tokio::test]
    async fn sessions_expire_and_end_with_their_actor() {
        let s = store_with_tenant().await;
        let sess = ConsoleSession {
            id_hash: "h".into(),
            tenant_id: Some("acme".into()),
            actor: "setup-link:acme".into(),
            created_at: t0(),
            expires_at: t0() + Duration::hours(1),
        };
        s.insert_session(&sess).await.unwrap();
        assert_eq!(s.find_session("h", t0()).await.unwrap(), Some(sess.clone()));
        assert!(s
            .find_session("h", t0() + Duration::hours(2))
            .await
            .unwrap()
            .is_none());
        s.delete_session("h").await.unwrap();
        assert!(s.find_session("h", t0()).await.unwrap().is_none());

        for id in ["a", "b"] {
            s.insert_session(&ConsoleSession {
                id_hash: id.into(),
                actor: "admin-key:rsak_x".into(),
                tenant_id: None,
                ..sess.clone()
            })
            .await
            .unwrap();
        }
        assert_eq!(s.delete_sessions_of("admin-key:rsak_x").await.unwrap(), 2);
        assert!(s.find_session("a", t0()).await.unwrap().is_none());
        // A later session prunes expired ones.
        s.insert_session(&ConsoleSession {
            id_hash: "old".into(),
            ..sess.clone()
        })
        .await
        .unwrap();
        s.insert_session(&ConsoleSession {
            id_hash: "new".into(),
            created_at: t0() + Duration::hours(3),
            expires_at: t0() + Duration::hours(4),
            ..sess
        })
        .await
        .unwrap();
        let left: i64 = db::query_scalar("SELECT count(*) FROM console_sessions")
            .fetch_one(&s.reader)
            .await
            .unwrap();
        assert_eq!(left, 1);
    }

    #[tokio::test]
    async fn recent_failures_are_read_through_their_partial_index() {
        let s = store_with_tenant().await;
        let steps: Vec<(i64, i64, i64, String)> = db::query_as(
            "EXPLAIN QUERY PLAN SELECT id FROM provisioning_log \
             WHERE tenant_id = ? AND status >= 400 ORDER BY id DESC LIMIT ?",
        )
        .bind("acme")
        .bind(100)
        .fetch_all(&s.reader)
        .await
        .unwrap();
        let steps: Vec<String> = steps.into_iter().map(|r| r.3).collect();
        assert!(
            steps
                .iter()
                .any(|d| d.contains("provisioning_log_failures")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|d| d.contains("TEMP B-TREE")),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn setup_links_work_once_and_expire() {
        let s = store_with_tenant().await;
        let link = SetupLink {
            hash: "l".into(),
            tenant_id: "acme".into(),
            created_by: "cli".into(),
            created_at: t0(),
            expires_at: t0() + Duration::days(7),
            used_at: None,
        };
        s.insert_setup_link(&link).await.unwrap();
        let used = s.consume_setup_link("l", t0()).await.unwrap().unwrap();
        assert_eq!(used.tenant_id, "acme");
        assert_eq!(used.used_at, Some(t0()));
        assert!(s.consume_setup_link("l", t0()).await.unwrap().is_none());
        let late = SetupLink {
            hash: "m".into(),
            ..link.clone()
        };
        s.insert_setup_link(&late).await.unwrap();
        assert!(s
            .consume_setup_link("m", t0() + Duration::days(8))
            .await
            .unwrap()
            .is_none());
        let other = SetupLink {
            hash: "n".into(),
            tenant_id: "nope".into(),
            ..link
        };
        assert!(matches!(
            s.insert_setup_link(&other).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn operators_lock_after_failures_and_lose_sessions_on_password_change() {
        let s = store_with_tenant().await;
        let op = Operator {
            email: "ann@example.com".into(),
            password_hash: "h1".into(),
            created_at: t0(),
            password_changed_at: t0(),
            last_sign_in_at: None,
            failed_attempts: 0,
            locked_until: None,
        };
        s.create_operator(&op).await.unwrap();
        assert!(matches!(
            s.create_operator(&op).await,
            Err(StoreError::Conflict("operator"))
        ));
        let lock = Duration::minutes(15);
        for i in 1..3 {
            let o = s
                .operator_sign_in_failed(&op.email, t0(), 3, lock)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((o.failed_attempts, o.locked_until), (i, None));
        }
        let o = s
            .operator_sign_in_failed(&op.email, t0(), 3, lock)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((o.failed_attempts, o.locked_until), (0, Some(t0() + lock)));
        assert!(s
            .operator_sign_in_failed("nobody@example.com", t0(), 3, lock)
            .await
            .unwrap()
            .is_none());
        s.operator_signed_in(&op.email, t0()).await.unwrap();
        let o = s.get_operator(&op.email).await.unwrap().unwrap();
        assert_eq!(o.locked_until, None);
        assert_eq!(o.last_sign_in_at, Some(t0()));

        s.insert_session(&ConsoleSession {
            id_hash: "s".into(),
            tenant_id: None,
            actor: "operator:ann@example.com".into(),
            created_at: t0(),
            expires_at: t0() + Duration::hours(1),
        })
        .await
        .unwrap();
        s.set_operator_password(&op.email, "h2", t0() + Duration::minutes(1))
            .await
            .unwrap();
        assert!(s.find_session("s", t0()).await.unwrap().is_none());
        assert_eq!(
            s.get_operator(&op.email)
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "h2"
        );
        assert_eq!(s.list_operators().await.unwrap().len(), 1);
        s.delete_operator(&op.email).await.unwrap();
        assert!(matches!(
            s.delete_operator(&op.email).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            s.set_operator_password(&op.email, "h3", t0()).await,
            Err(StoreError::NotFound)
        ));
    }
}

crate::catalogue::catalogue_store!(SqliteStore, reader, write);
