//! [`MetaStore`] on PostgreSQL: one row per key in `meta`, a global table (no tenant lock).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{backend, db, PostgresStore};
use crate::stored_form::CLAIM_JOB_SQL;
use crate::{MetaStore, StoreResult};

#[async_trait]
impl MetaStore for PostgresStore {
    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = db::query_scalar("SELECT value FROM meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(v.flatten())
    }

    async fn set_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let mut tx = self.write_global().await?;
        db::query(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        self.commit(tx).await
    }

    async fn claim_job(
        &self,
        job: &str,
        node: &str,
        period: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let now_ms = crate::domain::query::to_ms(now);
        let due_ms = crate::domain::query::to_ms(now - period);
        let mut tx = self.write_global().await?;
        let done = db::query(CLAIM_JOB_SQL)
            .bind(job)
            .bind(now_ms)
            .bind(node)
            .bind(due_ms)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        self.commit(tx).await?;
        Ok(done.rows_affected() > 0)
    }
}
