//! SQLite implementation of [`TenantAdminStore`]: the tenant lifecycle, SCIM enablement, the
//! token rules, expiry warnings and erasing a User.

use crate::sqlite::db;
use time::OffsetDateTime;

use super::db::Connection;
use super::query::to_ms;
use super::{
    backend, db_err, tenant_from_row, to_i64, token_from, SqliteStore, TenantRow, TokenRow,
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

pub(in crate::sqlite) async fn live_tenant(
    conn: &mut Connection,
    id: &str,
) -> StoreResult<Option<Tenant>> {
    let row: Option<TenantRow> = db::query_as(&format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(tenant_from_row).transpose()
}

pub(in crate::sqlite) async fn write_tenant(conn: &mut Connection, t: &Tenant) -> StoreResult<()> {
    let settings = serde_json::to_string(&t.settings).map_err(backend)?;
    db::query("UPDATE tenants SET name = ?, idp = ?, settings = ? WHERE id = ?")
        .bind(&t.name)
        .bind(&t.idp)
        .bind(settings)
        .bind(&t.id)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(in crate::sqlite) async fn revoke(
    conn: &mut Connection,
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
    q.fetch_all(conn).await.map_err(backend)
}

pub(in crate::sqlite) async fn deleted_at(
    conn: &mut Connection,
    id: &str,
) -> StoreResult<Option<Option<OffsetDateTime>>> {
    let deleted: Option<Option<i64>> =
        db::query_scalar("SELECT deleted_at FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
    deleted.map(super::opt_from_ms).transpose()
}

pub(in crate::sqlite) async fn mark_deleted(
    conn: &mut Connection,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    db::query("UPDATE tenants SET deleted_at = ? WHERE id = ?")
        .bind(to_ms(now))
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(in crate::sqlite) async fn insert_token(
    conn: &mut Connection,
    token: &TokenRecord,
) -> StoreResult<()> {
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
    .execute(conn)
    .await
    .map_err(|e| db_err(e, "token"))?;
    Ok(())
}

pub(in crate::sqlite) async fn live_token_count(
    conn: &mut Connection,
    tenant: &str,
    now: OffsetDateTime,
) -> StoreResult<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM tokens \
         WHERE tenant_id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(tenant)
    .bind(to_ms(now))
    .fetch_one(conn)
    .await
    .map_err(backend)
}

pub(in crate::sqlite) async fn mark_expiring(
    conn: &mut Connection,
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
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(token_from).collect()
}

#[async_trait::async_trait]
impl TenantAdminStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn list_tenants_page(&self, after: Option<&str>, limit: u64) -> StoreResult<Vec<Tenant>> {
        let rows: Vec<TenantRow> = db::query_as(&format!(
            "SELECT {TENANT_COLS} FROM tenants WHERE deleted_at IS NULL AND id > ? \
             ORDER BY id LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(to_i64(limit))
        .fetch_all(&self.reader)
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
        .fetch_optional(&self.reader)
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
        let mut tx = self.write().await?;
        let after = tenants::update_tenant(&mut *tx, id, edit).await?;
        let _auth = self.auth_change();
        self.commit(tx).await?;
        Ok(after)
    }

    #[tracing::instrument(skip_all)]
    async fn enable_scim(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write().await?;
        tenants::enable_scim(&mut *tx, token, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn disable_scim(&self, tenant: &str, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let mut tx = self.write().await?;
        let revoked = tenants::disable_scim(&mut *tx, tenant, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await?;
        Ok(revoked)
    }

    #[tracing::instrument(skip_all)]
    async fn create_token(
        &self,
        token: &TokenRecord,
        max_live: u32,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        tenants::create_token(&mut *tx, token, max_live, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_token(
        &self,
        token: &TokenRecord,
        replace: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.write().await?;
        let revoked = tenants::rotate_token(&mut *tx, token, replace, true, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await?;
        Ok(revoked)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_tenant(
        &self,
        id: &str,
        mode: TenantDataMode,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
        let tokens = tenants::warn_expiring_tokens(&mut *tx, tenant, before, now).await?;
        self.commit(tx).await?;
        Ok(tokens)
    }

    #[tracing::instrument(skip_all)]
    async fn erase_user(&self, tenant: &str, id: &str, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write().await?;
        crate::domain::resources::erase_user(&mut *tx, tenant, id, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn erase_personal_data(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::Erasure> {
        let mut tx = self.write().await?;
        // Overwrite what the erase deletes with zeros, overflow pages included, rather than
        // leave it in free space of the file; then back to the writer's usual setting.
        db::query("PRAGMA secure_delete = ON")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let erased = crate::domain::erasure::erase_personal_data(&mut *tx, tenant, id, now).await;
        db::query("PRAGMA secure_delete = FAST")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let erased = erased?;
        self.commit(tx).await?;
        // The write-ahead log still holds the pages as they were before the erase until it is
        // overwritten; copy it into the file and empty it now (best effort: a long reader may
        // keep it from finishing, and the checkpointer's next rounds overwrite it anyway).
        if let Some(options) = self.file_options() {
            let done = tokio::task::spawn_blocking(move || {
                let c = options.open_writer()?;
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await;
            if !matches!(done, Ok(Ok(0))) {
                tracing::warn!(
                    "after erasing personal data the write-ahead log could not be emptied at \
                     once; it is overwritten as writes go on"
                );
            }
        }
        Ok(erased)
    }

    #[tracing::instrument(skip_all)]
    async fn review_status(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Option<crate::ReviewStatus>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        crate::domain::review::status(&mut *tx, tenant, after, limit).await
    }

    #[tracing::instrument(skip_all)]
    async fn review_approve(&self, tenant: &str) -> StoreResult<crate::ReviewOutcome> {
        let mut tx = self.write().await?;
        let done = crate::domain::review::approve(&mut *tx, tenant).await?;
        self.commit(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn review_discard(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::ReviewOutcome> {
        let mut tx = self.write().await?;
        let done = crate::domain::review::discard(&mut *tx, tenant, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn custom_indexes(&self, tenant: &str) -> StoreResult<Vec<crate::CustomIndex>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        crate::domain::Rows::custom_indexes(&mut *tx, tenant).await
    }

    #[tracing::instrument(skip_all)]
    async fn sync_custom_indexes(
        &self,
        tenant: &str,
        wanted: &[crate::IndexSpec],
        retry_failed: bool,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let changed =
            crate::domain::custom_index::sync(&mut *tx, tenant, wanted, retry_failed).await?;
        self.commit(tx).await?;
        Ok(changed)
    }

    #[tracing::instrument(skip_all)]
    async fn backfill_custom_index(&self, tenant: &str, limit: u64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let done = crate::domain::custom_index::backfill(&mut *tx, tenant, limit).await?;
        self.commit(tx).await?;
        Ok(done)
    }

    #[tracing::instrument(skip_all)]
    async fn building_custom_indexes(&self) -> StoreResult<Vec<String>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        db::query_scalar(crate::custom_index_sql::BUILDING_SQL)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)
    }
}

/// Removes every row that names the tenant, in every table with a `tenant_id` column except
/// [`KEEP_ON_ERASE`], then the tenant itself.
///
/// The tables are found in the schema rather than listed here, so that a table added by a
/// later migration is erased too without touching this code. Foreign-key checks are deferred to
/// the commit, so the order of the deletes does not matter; rows that reference the erased ones
/// through `ON DELETE CASCADE` (emails, members) go with them.
pub(in crate::sqlite) async fn erase_tenant(tx: &mut Connection, id: &str) -> StoreResult<()> {
    db::query("PRAGMA defer_foreign_keys = ON")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let tables: Vec<String> = db::query_scalar(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND c.name = 'tenant_id' ORDER BY m.name",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    for table in tables {
        if KEEP_ON_ERASE.contains(&table.as_str()) {
            continue;
        }
        // The name comes from the schema itself, never from input; quoted as an identifier.
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use time::macros::datetime;
    use time::Duration;

    use super::*;
    use crate::events::EventStore;
    use crate::ops::{AuditEntry, LogStore};
    use crate::tenants::{CONFLICT_SCIM_DISABLED, CONFLICT_SCIM_ENABLED, CONFLICT_TOKEN_LIMIT};
    use crate::{NewResource, Store, StoreError, TenantSettings};
    use scim_proto::schema::ResourceKind;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

    fn at(secs: i64) -> OffsetDateTime {
        T0 + Duration::seconds(secs)
    }

    async fn store_with(ids: &[&str]) -> SqliteStore {
        let s = SqliteStore::open("sqlite::memory:").await.unwrap();
        for id in ids {
            s.create_tenant(&Tenant {
                id: (*id).into(),
                name: format!("Tenant {id}"),
                idp: "generic".into(),
                created_at: T0,
                settings: TenantSettings::default(),
            })
            .await
            .unwrap();
        }
        s
    }

    fn tok(prefix: &str, tenant: &str, created: i64, ttl: i64) -> TokenRecord {
        TokenRecord {
            prefix: prefix.into(),
            tenant_id: tenant.into(),
            hash: format!("hash-{prefix}"),
            created_at: at(created),
            expires_at: at(created + ttl),
            last_used_at: None,
            revoked_at: None,
        }
    }

    async fn types(s: &SqliteStore, tenant: &str) -> Vec<String> {
        s.list_events(tenant, 0, &[], 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    #[tokio::test]
    async fn pages_of_tenants_by_id() {
        let s = store_with(&["c", "a", "b", "d"]).await;
        let ids = |v: Vec<Tenant>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(ids(s.list_tenants_page(None, 2).await.unwrap()), ["a", "b"]);
        assert_eq!(
            ids(s.list_tenants_page(Some("b"), 2).await.unwrap()),
            ["c", "d"]
        );
        assert!(s.list_tenants_page(Some("d"), 2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn at_most_max_live_tokens() {
        let s = store_with(&["acme"]).await;
        s.create_token(&tok("a1", "acme", 0, 100), 2, at(0))
            .await
            .unwrap();
        s.create_token(&tok("a2", "acme", 1, 100), 2, at(1))
            .await
            .unwrap();
        assert!(matches!(
            s.create_token(&tok("a3", "acme", 2, 100), 2, at(2)).await,
            Err(StoreError::Conflict(CONFLICT_TOKEN_LIMIT))
        ));
        // An expired token no longer counts, nor does a revoked one.
        s.create_token(&tok("a4", "acme", 200, 100), 2, at(200))
            .await
            .unwrap();
        s.revoke_token("acme", "a4", at(201)).await.unwrap();
        s.create_token(&tok("a5", "acme", 202, 100), 2, at(202))
            .await
            .unwrap();
        assert!(matches!(
            s.create_token(&tok("x", "nope", 0, 100), 2, at(0)).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn rotate_one_or_all() {
        let s = store_with(&["acme"]).await;
        s.create_token(&tok("a1", "acme", 0, 100), 2, at(0))
            .await
            .unwrap();
        s.create_token(&tok("a2", "acme", 0, 100), 2, at(0))
            .await
            .unwrap();
        let revoked = s
            .rotate_token(&tok("a3", "acme", 1, 100), Some("a1"), at(1))
            .await
            .unwrap();
        assert_eq!(revoked, ["a1"]);
        assert!(s
            .find_token("a2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none());
        assert!(matches!(
            s.rotate_token(&tok("a4", "acme", 2, 100), Some("a1"), at(2))
                .await,
            Err(StoreError::NotFound)
        ));
        let mut revoked = s
            .rotate_token(&tok("a5", "acme", 3, 100), None, at(3))
            .await
            .unwrap();
        revoked.sort();
        assert_eq!(revoked, ["a2", "a3"]);
        assert_eq!(
            types(&s, "acme").await,
            [
                "token.created",
                "token.created",
                "token.rotated",
                "token.rotated"
            ]
        );
    }

    #[tokio::test]
    async fn disable_revokes_every_token_and_enable_issues_one() {
        let s = store_with(&["acme"]).await;
        s.create_token(&tok("a1", "acme", 0, 100), 2, at(0))
            .await
            .unwrap();
        assert!(matches!(
            s.enable_scim(&tok("a2", "acme", 0, 100), at(0)).await,
            Err(StoreError::Conflict(CONFLICT_SCIM_ENABLED))
        ));
        assert_eq!(s.disable_scim("acme", at(1)).await.unwrap(), ["a1"]);
        assert!(s
            .find_token("a1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
        assert!(
            !s.get_tenant("acme")
                .await
                .unwrap()
                .unwrap()
                .settings
                .scim_enabled
        );
        // Disabled: no token can be issued or rotated; disabling again changes nothing.
        assert!(matches!(
            s.create_token(&tok("a3", "acme", 2, 100), 2, at(2)).await,
            Err(StoreError::Conflict(CONFLICT_SCIM_DISABLED))
        ));
        assert!(matches!(
            s.rotate_token(&tok("a3", "acme", 2, 100), None, at(2))
                .await,
            Err(StoreError::Conflict(CONFLICT_SCIM_DISABLED))
        ));
        assert!(s.disable_scim("acme", at(3)).await.unwrap().is_empty());
        s.enable_scim(&tok("a4", "acme", 4, 100), at(4))
            .await
            .unwrap();
        assert!(
            s.get_tenant("acme")
                .await
                .unwrap()
                .unwrap()
                .settings
                .scim_enabled
        );
        assert_eq!(
            types(&s, "acme").await,
            [
                "token.created",
                "scim.disabled",
                "scim.enabled",
                "token.created"
            ]
        );
    }

    #[tokio::test]
    async fn update_applies_an_edit_but_never_scim_enabled() {
        let s = store_with(&["acme"]).await;
        let t = s
            .update_tenant(
                "acme",
                Box::new(|t: &mut Tenant| {
                    t.name = "Acme Corp".into();
                    t.settings.groups_enabled = false;
                    Ok(())
                }),
            )
            .await
            .unwrap();
        assert_eq!(t.name, "Acme Corp");
        assert_eq!(s.get_tenant("acme").await.unwrap().unwrap(), t);
        for edit in [
            Box::new(|t: &mut Tenant| {
                t.settings.scim_enabled = false;
                Ok(())
            }) as TenantEdit,
            Box::new(|_: &mut Tenant| Err("no".to_owned())),
            Box::new(|t: &mut Tenant| {
                t.id = "other".into();
                Ok(())
            }),
        ] {
            assert!(matches!(
                s.update_tenant("acme", edit).await,
                Err(StoreError::Invalid(_))
            ));
        }
        assert!(matches!(
            s.update_tenant("nope", Box::new(|_: &mut Tenant| Ok(())))
                .await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn expiring_tokens_are_announced_once() {
        let s = store_with(&["acme"]).await;
        s.create_token(&tok("soon", "acme", 0, 10), 2, at(0))
            .await
            .unwrap();
        s.create_token(&tok("later", "acme", 0, 1000), 2, at(0))
            .await
            .unwrap();
        let warned = s
            .warn_expiring_tokens("acme", at(100), at(1))
            .await
            .unwrap();
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0].prefix, "soon");
        assert!(s
            .warn_expiring_tokens("acme", at(100), at(2))
            .await
            .unwrap()
            .is_empty());
        // Already expired tokens are not announced as expiring.
        assert!(s
            .warn_expiring_tokens("acme", at(5000), at(2000))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            types(&s, "acme").await,
            ["token.created", "token.created", "token.expiring"]
        );
    }

    #[tokio::test]
    async fn delete_retains_or_erases() {
        let s = store_with(&["keep", "gone"]).await;
        for t in ["keep", "gone"] {
            s.create_token(&tok(&format!("{t}1"), t, 0, 100), 2, at(0))
                .await
                .unwrap();
            s.create_resource(
                t,
                ResourceKind::User,
                NewResource {
                    id: format!("{t}-u"),
                    doc: serde_json::json!({"userName": format!("{t}@x")}),
                    password_hash: None,
                    members: vec![],
                    events: vec![],
                },
                at(0),
            )
            .await
            .unwrap();
            s.create_resource(
                t,
                ResourceKind::Group,
                NewResource {
                    id: format!("{t}-g"),
                    doc: serde_json::json!({"displayName": "G"}),
                    password_hash: None,
                    members: vec![format!("{t}-u")],
                    events: vec![],
                },
                at(0),
            )
            .await
            .unwrap();
        }
        s.append_audit(&AuditEntry {
            id: 0,
            at: at(1),
            actor: "test".into(),
            action: "tenant.delete".into(),
            tenant_id: Some("gone".into()),
            target: None,
            details: serde_json::json!({}),
        })
        .await
        .unwrap();

        s.delete_tenant("keep", TenantDataMode::Retain, at(1))
            .await
            .unwrap();
        assert!(s.get_tenant("keep").await.unwrap().is_none());
        assert!(matches!(
            s.tenant_state("keep").await.unwrap(),
            TenantState::Deleted { .. }
        ));
        assert!(s
            .find_token("keep1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
        assert!(s
            .get_resource("keep", ResourceKind::User, "keep-u")
            .await
            .unwrap()
            .is_some());
        assert!(!types(&s, "keep").await.is_empty());
        assert!(matches!(
            s.delete_tenant("keep", TenantDataMode::Retain, at(2)).await,
            Err(StoreError::NotFound)
        ));

        s.delete_tenant("gone", TenantDataMode::Erase, at(1))
            .await
            .unwrap();
        assert_eq!(s.tenant_state("gone").await.unwrap(), TenantState::Absent);
        assert!(s.find_token("gone1").await.unwrap().is_none());
        assert!(types(&s, "gone").await.is_empty());
        assert!(s
            .get_resource("gone", ResourceKind::Group, "gone-g")
            .await
            .unwrap()
            .is_none());
        assert_eq!(s.list_audit(None, 10).await.unwrap().len(), 1, "kept");
        // The retained tenant can be erased later; its id is then free again.
        s.delete_tenant("keep", TenantDataMode::Erase, at(3))
            .await
            .unwrap();
        assert_eq!(s.tenant_state("keep").await.unwrap(), TenantState::Absent);
        assert!(matches!(
            s.delete_tenant("keep", TenantDataMode::Erase, at(3)).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn erase_user_removes_record_and_memberships() {
        let s = store_with(&["acme"]).await;
        let new = |id: &str, doc: Value, members: Vec<String>| NewResource {
            id: id.into(),
            doc,
            password_hash: None,
            members,
            events: vec![],
        };
        s.create_resource(
            "acme",
            ResourceKind::User,
            new("u1", json!({"userName": "a@x"}), vec![]),
            at(0),
        )
        .await
        .unwrap();
        s.create_resource(
            "acme",
            ResourceKind::Group,
            new("g1", json!({"displayName": "G"}), vec!["u1".into()]),
            at(0),
        )
        .await
        .unwrap();
        let g_before = s
            .get_resource("acme", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .unwrap();
        s.erase_user("acme", "u1", at(1)).await.unwrap();
        assert!(matches!(
            s.erase_user("acme", "u1", at(1)).await,
            Err(StoreError::NotFound)
        ));
        let g = s
            .get_resource("acme", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .unwrap();
        assert!(g.version > g_before.version);
        assert!(s
            .list_members("acme", "g1", None, 10)
            .await
            .unwrap()
            .is_empty());
        let t = types(&s, "acme").await;
        assert_eq!(&t[t.len() - 2..], ["group.members_removed", "user.erased"]);
        // The userName is free: a new create makes a new record, not a restore.
        let out = s
            .create_resource(
                "acme",
                ResourceKind::User,
                new("u2", json!({"userName": "a@x"}), vec![]),
                at(2),
            )
            .await
            .unwrap();
        assert!(matches!(out, crate::CreateOutcome::Created(_)));
    }
}
