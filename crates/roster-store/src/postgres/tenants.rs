//! PostgreSQL implementation of [`TenantAdminStore`]: the tenant lifecycle, SCIM enablement,
//! the token rules, expiry warnings and erasing a User.
//!
//! Every write holds the tenant's write lock (see [`PostgresStore::write`]): the store core's
//! token rules count, then insert, and must not see another writer of the tenant in between.

use time::OffsetDateTime;

use super::db::{self, Conn};
use super::query::to_ms;
use super::{
    backend, db_err, tenant_from_row, to_i64, token_from, PostgresStore, TenantRow, TokenRow,
    TOKEN_COLS,
};
use crate::domain::tenants;
use crate::tenants::{TenantAdminStore, TenantDataMode, TenantEdit, TenantState};
use crate::{StoreResult, Tenant, TokenRecord};

const TENANT_COLS: &str = "id, name, idp, created_at, settings";

/// Tables whose rows are never erased with a tenant: the audit log is append-only, and it
/// must still say who erased the tenant.
const KEEP_ON_ERASE: [&str; 1] = ["audit_log"];

// The SQL of the store core's tenant and token row operations (see `super::rows`).

pub(super) async fn live_tenant(c: &mut Conn, id: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<TenantRow> = db::query_as(&format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(c)
    .await
    .map_err(backend)?;
    row.map(tenant_from_row).transpose()
}

pub(super) async fn write_tenant(c: &mut Conn, t: &Tenant) -> StoreResult<()> {
    let settings = serde_json::to_string(&t.settings).map_err(backend)?;
    db::query("UPDATE tenants SET name = ?, idp = ?, settings = ? WHERE id = ?")
        .bind(&t.name)
        .bind(&t.idp)
        .bind(settings)
        .bind(&t.id)
        .execute(c)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn revoke(
    c: &mut Conn,
    tenant: &str,
    prefix: Option<&str>,
    now: OffsetDateTime,
) -> StoreResult<Vec<String>> {
    let q = match prefix {
        Some(p) => db::query_scalar(
            "UPDATE tokens SET revoked_at = ? \
             WHERE tenant_id = ? AND prefix = ? AND revoked_at IS NULL RETURNING prefix",
        )
        .bind(to_ms(now))
        .bind(tenant)
        .bind(p),
        None => db::query_scalar(
            "UPDATE tokens SET revoked_at = ? \
             WHERE tenant_id = ? AND revoked_at IS NULL RETURNING prefix",
        )
        .bind(to_ms(now))
        .bind(tenant),
    };
    q.fetch_all(c).await.map_err(backend)
}

pub(super) async fn deleted_at(
    c: &mut Conn,
    id: &str,
) -> StoreResult<Option<Option<OffsetDateTime>>> {
    let deleted: Option<Option<i64>> =
        db::query_scalar("SELECT deleted_at FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(c)
            .await
            .map_err(backend)?;
    deleted.map(super::opt_from_ms).transpose()
}

pub(super) async fn mark_deleted(c: &mut Conn, id: &str, now: OffsetDateTime) -> StoreResult<()> {
    db::query("UPDATE tenants SET deleted_at = ? WHERE id = ?")
        .bind(to_ms(now))
        .bind(id)
        .execute(c)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn insert_token(c: &mut Conn, token: &TokenRecord) -> StoreResult<()> {
    db::query(&format!(
        "INSERT INTO tokens ({TOKEN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&token.prefix)
    .bind(&token.tenant_id)
    .bind(&token.hash)
    .bind(to_ms(token.created_at))
    .bind(to_ms(token.expires_at))
    .bind(token.last_used_at.map(to_ms))
    .bind(token.revoked_at.map(to_ms))
    .execute(c)
    .await
    .map_err(|e| db_err(e, "token"))?;
    Ok(())
}

pub(super) async fn live_token_count(
    c: &mut Conn,
    tenant: &str,
    now: OffsetDateTime,
) -> StoreResult<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM tokens \
         WHERE tenant_id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(tenant)
    .bind(to_ms(now))
    .fetch_one(c)
    .await
    .map_err(backend)
}

pub(super) async fn mark_expiring(
    c: &mut Conn,
    tenant: &str,
    before: OffsetDateTime,
    now: OffsetDateTime,
) -> StoreResult<Vec<TokenRecord>> {
    let rows: Vec<TokenRow> = db::query_as(&format!(
        "UPDATE tokens SET expiry_warned_at = ? \
         WHERE tenant_id = ? AND revoked_at IS NULL AND expiry_warned_at IS NULL \
         AND expires_at > ? AND expires_at <= ? \
         RETURNING {TOKEN_COLS}"
    ))
    .bind(to_ms(now))
    .bind(tenant)
    .bind(to_ms(now))
    .bind(to_ms(before))
    .fetch_all(c)
    .await
    .map_err(backend)?;
    rows.into_iter().map(token_from).collect()
}

#[async_trait::async_trait]
impl TenantAdminStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn list_tenants_page(&self, after: Option<&str>, limit: u64) -> StoreResult<Vec<Tenant>> {
        let rows: Vec<TenantRow> = db::query_as(&format!(
            "SELECT {TENANT_COLS} FROM tenants WHERE deleted_at IS NULL AND id > ? \
             ORDER BY id LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn tenant_state(&self, id: &str) -> StoreResult<TenantState> {
        let row: Option<(String, String, String, i64, String, Option<i64>)> = db::query_as(
            &format!("SELECT {TENANT_COLS}, deleted_at FROM tenants WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(match row {
            None => TenantState::Absent,
            Some((.., Some(deleted))) => TenantState::Deleted {
                deleted_at: super::from_ms(deleted)?,
            },
            Some((id, name, idp, created, settings, None)) => TenantState::Live(Box::new(
                tenant_from_row((id, name, idp, created, settings))?,
            )),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn update_tenant(&self, id: &str, edit: TenantEdit) -> StoreResult<Tenant> {
        let mut tx = self.write(id).await?;
        let after = tenants::update_tenant(&mut *tx, id, edit).await?;
        let _auth = self.auth_change();
        self.commit(tx).await?;
        Ok(after)
    }

    #[tracing::instrument(skip_all)]
    async fn enable_scim(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write(&token.tenant_id).await?;
        tenants::enable_scim(&mut *tx, token, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn disable_scim(&self, tenant: &str, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let mut tx = self.write(tenant).await?;
        let revoked = tenants::disable_scim(&mut *tx, tenant, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await?;
        Ok(revoked)
    }

    #[tracing::instrument(skip_all)]
    async fn create_token(
        &self,
        token: &TokenRecord,
        max_live: u32,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write(&token.tenant_id).await?;
        tenants::create_token(&mut *tx, token, max_live, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_token(
        &self,
        token: &TokenRecord,
        replace: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.write(&token.tenant_id).await?;
        let revoked = tenants::rotate_token(&mut *tx, token, replace, true, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await?;
        Ok(revoked)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_tenant(
        &self,
        id: &str,
        mode: TenantDataMode,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        // The tenant's lock even for an erase: no writer of the tenant may add rows between
        // the deletes, and none may start on it before the erase commits.
        let mut tx = self.write(id).await?;
        tenants::delete_tenant(&mut *tx, id, mode, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn warn_expiring_tokens(
        &self,
        tenant: &str,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<TokenRecord>> {
        let mut tx = self.write(tenant).await?;
        let tokens = tenants::warn_expiring_tokens(&mut *tx, tenant, before, now).await?;
        self.commit_events(tx).await?;
        Ok(tokens)
    }

    #[tracing::instrument(skip_all)]
    async fn erase_user(&self, tenant: &str, id: &str, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write(tenant).await?;
        crate::domain::resources::erase_user(&mut *tx, tenant, id, now).await?;
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn erase_personal_data(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::Erasure> {
        let mut tx = self.write(tenant).await?;
        let erased = crate::domain::erasure::erase_personal_data(&mut *tx, tenant, id, now).await?;
        self.commit_events(tx).await?;
        Ok(erased)
    }

    #[tracing::instrument(skip_all)]
    async fn review_status(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Option<crate::ReviewStatus>> {
        let mut tx = self.read().await?;
        crate::domain::review::status(&mut *tx, tenant, after, limit).await
    }

    #[tracing::instrument(skip_all)]
    async fn review_approve(&self, tenant: &str) -> StoreResult<crate::ReviewOutcome> {
        let mut tx = self.write(tenant).await?;
        let done = crate::domain::review::approve(&mut *tx, tenant).await?;
        self.commit_events(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn review_discard(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::ReviewOutcome> {
        let mut tx = self.write(tenant).await?;
        let done = crate::domain::review::discard(&mut *tx, tenant, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn custom_indexes(&self, tenant: &str) -> StoreResult<Vec<crate::CustomIndex>> {
        let mut tx = self.read().await?;
        crate::domain::Rows::custom_indexes(&mut *tx, tenant).await
    }

    #[tracing::instrument(skip_all)]
    async fn sync_custom_indexes(
        &self,
        tenant: &str,
        wanted: &[crate::IndexSpec],
        retry_failed: bool,
    ) -> StoreResult<bool> {
        let mut tx = self.write(tenant).await?;
        let changed =
            crate::domain::custom_index::sync(&mut *tx, tenant, wanted, retry_failed).await?;
        self.commit(tx).await?;
        Ok(changed)
    }

    #[tracing::instrument(skip_all)]
    async fn backfill_custom_index(&self, tenant: &str, limit: u64) -> StoreResult<u64> {
        let mut tx = self.write(tenant).await?;
        let done = crate::domain::custom_index::backfill(&mut *tx, tenant, limit).await?;
        self.commit(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn building_custom_indexes(&self) -> StoreResult<Vec<String>> {
        let mut tx = self.read().await?;
        db::query_scalar(crate::custom_index_sql::BUILDING_SQL)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)
    }
}

/// Removes every row that names the tenant, in every table with a `tenant_id` column except
/// [`KEEP_ON_ERASE`], then the tenant itself.
///
/// The tables are found in the catalog rather than listed here, so that a table added by a
/// later migration is erased too without touching this code. The tenant goes last: every other
/// foreign key from a table with a `tenant_id` column cascades (emails, members and member
/// counts with their resource, streams with their webhook), so the order of the other deletes
/// does not matter. `tenant_writes` goes too, as SQLite's seqs restart from the events left.
pub(super) async fn erase_tenant(tx: &mut Conn, id: &str) -> StoreResult<()> {
    let tables: Vec<String> = db::query_scalar(
        "SELECT c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
         AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    for table in tables {
        if KEEP_ON_ERASE.contains(&table.as_str()) {
            continue;
        }
        // The name comes from the catalog itself, never from input; quoted as an identifier.
        let quoted = table.replace('"', "\"\"");
        db::query(&format!("DELETE FROM \"{quoted}\" WHERE tenant_id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    db::query("DELETE FROM tenants WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    Ok(())
}
