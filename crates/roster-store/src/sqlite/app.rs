//! SQLite implementation of [`AppStore`](crate::AppStore). The rules it shares with the SCIM
//! write paths (effective-role diffs, member changes, a user leaving its groups) are the store
//! core's ([`crate::domain`]), run on this transaction's connection.
//!
//! Effective roles are computed from indexed rows only: a user's `roles` column, its `members`
//! rows (`members_member` index) joined to its groups, and the `role_mappings` rows selecting
//! those groups (unique index on `(tenant_id, match_by, match_value)`).

use std::collections::{BTreeSet, HashMap};

use crate::sqlite::db::{self, Connection};
use scim_proto::filter::fold_case;
use scim_proto::schema::ResourceKind;
use time::OffsetDateTime;

#[cfg(test)]
use super::rows::{mapped_roles_sql, GROUP_MAPPINGS_SQL};
use super::{backend, from_ms, stored, to_i64, SqliteStore, CHUNK};
use crate::app::{
    AppGroup, AppGroupMember, AppGroupQuery, AppGroupRef, AppGroupUpdate, AppPage, AppStore,
    AppUser, AppUserQuery, AppUserUpdate, GuardDecision, GuardStatus, GuardSubject, GuardVerdict,
    ImportResult, ImportUser, LoginKey, LoginRecord, MatchBy, NewAppGroup, RoleMapping, UserStatus,
};
use crate::domain::app as domain_app;
use crate::domain::review::{login_record, LoginRow};
use crate::domain::roles::effective_roles;
use crate::domain::{GroupSel, Rows};
use crate::{StoreError, StoreResult, StoredResource, TenantSettings};

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn parse_roles(text: &str) -> StoreResult<BTreeSet<String>> {
    Ok(super::rows::parse_roles(text)?.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Reading users and groups for the app

const APP_COLS: &str = "r.pk, r.id, r.version, r.doc, r.created, r.last_modified, r.managed, \
    r.deleted, r.active, r.roles, r.app_metadata";
type AppRow = (
    i64,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    String,
    String,
);

struct Loaded {
    pk: i64,
    resource: StoredResource,
    managed: bool,
    deleted: bool,
    active: Option<i64>,
    roles: String,
    metadata: String,
}

fn loaded(kind: ResourceKind, row: AppRow) -> StoreResult<Loaded> {
    let (pk, id, version, doc, created, last_modified, managed, deleted, active, roles, meta) = row;
    let (_, resource) = stored(kind, (pk, id, version, doc, created, last_modified))?;
    Ok(Loaded {
        pk,
        resource,
        managed: managed == 1,
        deleted: deleted == 1,
        active,
        roles,
        metadata: meta,
    })
}

/// The users of `rows`, with groups and effective roles, read on `conn`.
async fn app_users(
    conn: &mut Connection,
    tenant: &str,
    rows: Vec<Loaded>,
) -> StoreResult<Vec<AppUser>> {
    let pks: Vec<i64> = rows.iter().map(|r| r.pk).collect();
    let roles = effective_roles(conn, tenant, &pks).await?;
    let mut groups: HashMap<i64, Vec<AppGroupRef>> = HashMap::new();
    for chunk in pks.chunks(CHUNK) {
        let sql = format!(
            "SELECT m.member_pk, g.id, COALESCE(json_extract(g.doc, '$.displayName'), ''), g.managed \
             FROM members m JOIN resources g ON g.pk = m.group_pk \
             WHERE m.member_pk IN ({}) ORDER BY m.member_pk, g.pk",
            marks(chunk.len())
        );
        let mut q = db::query_as::<(i64, String, String, i64)>(&sql);
        for pk in chunk {
            q = q.bind(*pk);
        }
        for (pk, id, display_name, managed) in q.fetch_all(&mut *conn).await.map_err(backend)? {
            groups.entry(pk).or_default().push(AppGroupRef {
                id,
                display_name,
                managed: managed == 1,
            });
        }
    }
    rows.into_iter()
        .map(|r| {
            let state = roles.get(&r.pk);
            Ok(AppUser {
                managed: r.managed,
                status: UserStatus::of(r.active.map(|a| a != 0), r.deleted),
                direct_roles: parse_roles(&r.roles)?.into_iter().collect(),
                roles: state
                    .map(|s| s.roles.iter().cloned().collect())
                    .unwrap_or_default(),
                groups: groups.remove(&r.pk).unwrap_or_default(),
                metadata: serde_json::from_str(&r.metadata).map_err(backend)?,
                resource: r.resource,
            })
        })
        .collect()
}

async fn load_user(conn: &mut Connection, tenant: &str, id: &str) -> StoreResult<Option<AppUser>> {
    let row: Option<AppRow> = db::query_as(&format!(
        "SELECT {APP_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.id = ?"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let l = loaded(ResourceKind::User, row)?;
    Ok(app_users(conn, tenant, vec![l]).await?.pop())
}

/// The groups of `rows`, with mapped roles and member counts.
async fn app_groups(
    conn: &mut Connection,
    tenant: &str,
    rows: Vec<Loaded>,
) -> StoreResult<Vec<AppGroup>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sel = GroupSel::of_doc(&r.resource.id, &r.resource.doc);
        let roles: BTreeSet<String> = conn
            .mapped_roles_of_group(tenant, &sel)
            .await?
            .into_iter()
            .collect();
        // Kept by triggers (migration 0008): one row, however large the group.
        let count: i64 = db::query_scalar(
            "SELECT COALESCE((SELECT n FROM member_counts WHERE group_pk = ?), 0)",
        )
        .bind(r.pk)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
        out.push(AppGroup {
            managed: r.managed,
            roles: roles.into_iter().collect(),
            member_count: u64::try_from(count).unwrap_or(0),
            metadata: serde_json::from_str(&r.metadata).map_err(backend)?,
            resource: r.resource,
        });
    }
    Ok(out)
}

async fn load_group(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
) -> StoreResult<Option<AppGroup>> {
    let row: Option<AppRow> = db::query_as(&format!(
        "SELECT {APP_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND r.id = ?"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let l = loaded(ResourceKind::Group, row)?;
    Ok(app_groups(conn, tenant, vec![l]).await?.pop())
}

// ---------------------------------------------------------------------------------------------
// Role mappings

const MAPPING_COLS: &str = "id, match_by, value, roles, created_at, updated_at";
type MappingRow = (String, String, String, String, i64, i64);

fn mapping_from(row: MappingRow) -> StoreResult<RoleMapping> {
    let (id, by, value, roles, created, updated) = row;
    Ok(RoleMapping {
        id,
        by: MatchBy::parse(&by).ok_or_else(|| backend(std::fmt::Error))?,
        value,
        roles: parse_roles(&roles)?.into_iter().collect(),
        created_at: from_ms(created)?,
        updated_at: from_ms(updated)?,
    })
}

// ---------------------------------------------------------------------------------------------
// The login lookup

/// The user a sign-in by email is about: the `emails_value` and `resources_user_name` index
/// lookups in one statement (an email may be a user's email or its userName). Among several,
/// a live one before a deprovisioned one, then a managed one, then an active one, then the
/// newest.
pub(super) const LOGIN_BY_EMAIL_SQL: &str = "\
    SELECT r.pk, r.id, r.managed, r.active, r.deleted, \
      EXISTS (SELECT 1 FROM review_cycles c WHERE c.tenant_id = r.tenant_id) FROM resources r \
    WHERE r.kind = 'User' AND r.pk IN ( \
      SELECT e.resource_pk FROM emails e WHERE e.tenant_id = ?1 AND e.value_lc = ?2 \
      UNION ALL \
      SELECT u.pk FROM resources u WHERE u.tenant_id = ?1 AND u.kind = 'User' AND u.user_name_lc = ?2) \
    ORDER BY r.deleted, r.managed DESC, (r.active IS 0), r.pk DESC LIMIT 1";

/// The same by externalId: the `resources_external_id` index.
pub(super) const LOGIN_BY_EXTERNAL_ID_SQL: &str = "\
    SELECT r.pk, r.id, r.managed, r.active, r.deleted, \
      EXISTS (SELECT 1 FROM review_cycles c WHERE c.tenant_id = r.tenant_id) FROM resources r \
    WHERE r.tenant_id = ? AND r.kind = 'User' AND r.external_id = ? \
    ORDER BY r.deleted, r.managed DESC, (r.active IS 0), r.pk DESC LIMIT 1";

// ---------------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl AppStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn put_tenant_settings(
        &self,
        tenant: &str,
        settings: &TenantSettings,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        crate::domain::tenants::before_settings(&mut *tx, tenant, settings).await?;
        let done = db::query("UPDATE tenants SET settings = ? WHERE id = ?")
            .bind(serde_json::to_string(settings).map_err(backend)?)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let _auth = self.auth_change();
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all, fields(n = users.len()))]
    async fn import_users(
        &self,
        tenant: &str,
        users: Vec<ImportUser>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ImportResult>> {
        let mut tx = self.write().await?;
        let results = domain_app::import_users(&mut *tx, tenant, users, now).await?;
        self.commit(tx).await?;
        Ok(results)
    }

    #[tracing::instrument(skip_all)]
    async fn get_app_user(&self, tenant: &str, id: &str) -> StoreResult<Option<AppUser>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        load_user(&mut tx, tenant, id).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_app_users(
        &self,
        tenant: &str,
        q: &AppUserQuery,
    ) -> StoreResult<AppPage<AppUser>> {
        let ls = crate::list_sql::users(crate::list_sql::Dialect::Sqlite, tenant, q, APP_COLS)?;
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let total = match &ls.count {
            Some((sql, args)) => {
                let n: i64 = db::query_scalar_with(sql, super::args_of(args)?)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                Some(u64::try_from(n).unwrap_or(0))
            }
            None => None,
        };
        let rows: Vec<AppRow> = db::query_as_with(&ls.select, super::args_of(&ls.args)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let (rows, next_cursor, prev_cursor) = ls.page(rows, |r| crate::list_sql::RowKey {
            pk: r.0,
            created: r.4,
            last_modified: r.5,
            doc: &r.3,
        });
        let rows: Vec<Loaded> = rows
            .into_iter()
            .map(|r| loaded(ResourceKind::User, r))
            .collect::<StoreResult<_>>()?;
        let items = app_users(&mut tx, tenant, rows).await?;
        Ok(AppPage {
            items,
            next_cursor,
            prev_cursor,
            total,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn update_app_user(
        &self,
        tenant: &str,
        id: &str,
        update: AppUserUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<AppUser> {
        let mut tx = self.write().await?;
        domain_app::update_app_user(&mut *tx, tenant, id, update, now).await?;
        let user = load_user(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit(tx).await?;
        Ok(user)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_app_user(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        domain_app::delete_app_user(&mut *tx, tenant, id, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn create_app_group(
        &self,
        tenant: &str,
        new: NewAppGroup,
        now: OffsetDateTime,
    ) -> StoreResult<AppGroup> {
        let mut tx = self.write().await?;
        let id = new.id.clone();
        domain_app::create_app_group(&mut *tx, tenant, new, now).await?;
        let group = load_group(&mut tx, tenant, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit(tx).await?;
        Ok(group)
    }

    #[tracing::instrument(skip_all)]
    async fn get_app_group(&self, tenant: &str, id: &str) -> StoreResult<Option<AppGroup>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        load_group(&mut tx, tenant, id).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_app_groups(
        &self,
        tenant: &str,
        q: &AppGroupQuery,
    ) -> StoreResult<AppPage<AppGroup>> {
        let ls = crate::list_sql::groups(crate::list_sql::Dialect::Sqlite, tenant, q, APP_COLS)?;
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let total = match &ls.count {
            Some((sql, args)) => {
                let n: i64 = db::query_scalar_with(sql, super::args_of(args)?)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                Some(u64::try_from(n).unwrap_or(0))
            }
            None => None,
        };
        let rows: Vec<AppRow> = db::query_as_with(&ls.select, super::args_of(&ls.args)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let (rows, next_cursor, prev_cursor) = ls.page(rows, |r| crate::list_sql::RowKey {
            pk: r.0,
            created: r.4,
            last_modified: r.5,
            doc: &r.3,
        });
        let rows: Vec<Loaded> = rows
            .into_iter()
            .map(|r| loaded(ResourceKind::Group, r))
            .collect::<StoreResult<_>>()?;
        let items = app_groups(&mut tx, tenant, rows).await?;
        Ok(AppPage {
            items,
            next_cursor,
            prev_cursor,
            total,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_app_group_members(
        &self,
        tenant: &str,
        group_id: &str,
        cursor: Option<&str>,
        limit: u64,
    ) -> StoreResult<AppPage<AppGroupMember>> {
        // The cursor is the last member id, hex-encoded; any well-formed one is a position.
        let after = cursor
            .map(crate::list_sql::decode_member_cursor)
            .transpose()?;
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let pk: Option<i64> = db::query_scalar(
            "SELECT pk FROM resources WHERE tenant_id = ? AND kind = 'Group' AND id = ?",
        )
        .bind(tenant)
        .bind(group_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(pk) = pk else {
            return Err(StoreError::NotFound);
        };
        let limit = limit.max(1);
        let rows: Vec<(String, String, i64, Option<i64>, i64, String)> = db::query_as(
            "SELECT m.member_id, COALESCE(json_extract(u.doc, '$.userName'), ''), u.managed, \
             u.active, u.deleted, m.member_name FROM members m JOIN resources u ON u.pk = m.member_pk \
             WHERE m.group_pk = ? AND (m.member_name, m.member_id) > (?, ?) \
             ORDER BY m.member_name, m.member_id LIMIT ?",
        )
        .bind(pk)
        .bind(after.as_ref().map_or("", |(n, _)| n.as_str()))
        .bind(after.as_ref().map_or("", |(_, id)| id.as_str()))
        .bind(to_i64(limit).saturating_add(1))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let more = rows.len() as u64 > limit;
        let last_name = rows
            .get(
                usize::try_from(limit)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1),
            )
            .map(|r| r.5.clone())
            .unwrap_or_default();
        let items: Vec<AppGroupMember> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(
                |(id, user_name, managed, active, deleted, _)| AppGroupMember {
                    id,
                    user_name,
                    managed: managed == 1,
                    status: UserStatus::of(active.map(|a| a != 0), deleted == 1),
                },
            )
            .collect();
        let next_cursor = items
            .last()
            .filter(|_| more)
            .map(|m| crate::list_sql::member_cursor(&last_name, &m.id));
        Ok(AppPage {
            items,
            next_cursor,
            prev_cursor: None,
            total: None,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn update_app_group(
        &self,
        tenant: &str,
        id: &str,
        update: AppGroupUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<AppGroup> {
        let mut tx = self.write().await?;
        domain_app::update_app_group(&mut *tx, tenant, id, update, now).await?;
        let group = load_group(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit(tx).await?;
        Ok(group)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_app_group(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        domain_app::delete_app_group(&mut *tx, tenant, id, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_role_mappings(&self, tenant: &str) -> StoreResult<Vec<RoleMapping>> {
        let rows: Vec<MappingRow> = db::query_as(&format!(
            "SELECT {MAPPING_COLS} FROM role_mappings WHERE tenant_id = ? ORDER BY created_at, id"
        ))
        .bind(tenant)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(mapping_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn get_role_mapping(&self, tenant: &str, id: &str) -> StoreResult<Option<RoleMapping>> {
        let row: Option<MappingRow> = db::query_as(&format!(
            "SELECT {MAPPING_COLS} FROM role_mappings WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(mapping_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn create_role_mapping(
        &self,
        tenant: &str,
        mapping: &RoleMapping,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        domain_app::create_role_mapping(&mut *tx, tenant, mapping, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn update_role_mapping(
        &self,
        tenant: &str,
        mapping: &RoleMapping,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        domain_app::update_role_mapping(&mut *tx, tenant, mapping, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn delete_role_mapping(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        domain_app::delete_role_mapping(&mut *tx, tenant, id, now).await?;
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn login_lookup(&self, tenant: &str, key: &LoginKey) -> StoreResult<Option<LoginRecord>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let row: Option<(i64, String, i64, Option<i64>, i64, i64)> = match key {
            LoginKey::Email(email) => {
                db::query_as(LOGIN_BY_EMAIL_SQL)
                    .bind(tenant)
                    .bind(fold_case(email))
                    .fetch_optional(&mut *tx)
                    .await
            }
            LoginKey::ExternalId(x) => {
                db::query_as(LOGIN_BY_EXTERNAL_ID_SQL)
                    .bind(tenant)
                    .bind(x)
                    .fetch_optional(&mut *tx)
                    .await
            }
        }
        .map_err(backend)?;
        let Some((pk, id, managed, active, deleted, reviewing)) = row else {
            return Ok(None);
        };
        let found = LoginRow {
            pk,
            id,
            managed: managed == 1,
            active: active.map(|a| a != 0),
            deleted: deleted == 1,
            reviewing: reviewing == 1,
        };
        login_record(&mut *tx, tenant, found).await
    }

    async fn guard_admit(
        &self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> StoreResult<GuardVerdict> {
        self.guard_admit_impl(tenant, subject, now).await
    }

    async fn guard_status(&self, tenant: &str, now: OffsetDateTime) -> StoreResult<GuardStatus> {
        self.guard_status_impl(tenant, now).await
    }

    async fn guard_decide(
        &self,
        tenant: &str,
        decision: GuardDecision,
        actor: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus> {
        self.guard_decide_impl(tenant, decision, actor, now).await
    }
}

pub(super) mod guard;
#[cfg(test)]
mod tests;
