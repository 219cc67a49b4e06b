//! [`MetaStore`] on PostgreSQL: one row per key in `meta`, a global table (no tenant lock).

use async_trait::async_trait;

use super::{backend, db, PostgresStore};
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
}
