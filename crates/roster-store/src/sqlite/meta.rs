//! [`MetaStore`] on SQLite: one row per key in `meta` (migration 0011).

use async_trait::async_trait;

use super::{backend, db, SqliteStore};
use crate::{MetaStore, StoreResult};

#[async_trait]
impl MetaStore for SqliteStore {
    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = db::query_scalar("SELECT value FROM meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        Ok(v.flatten())
    }

    async fn set_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
