//! SQLite's row operations for the store core ([`Rows`]): SQL only, no rule.
//!
//! Implemented for a [`Connection`]: the writer's connection inside a write transaction (a
//! savepoint of the current group-commit batch), or a reader's inside a read transaction for
//! the reads. Lists longer than SQLite's bound-parameter limit are split into statements of
//! [`CHUNK`] values.
//!
//! A row's pk is its rowid, unique across tenants, so the operations that address rows by pk
//! ignore the tenant they are given: PostgreSQL's name it in every statement, for a database
//! distributed by tenant.

use scim_proto::schema::ResourceKind;
use serde_json::Value;
use time::OffsetDateTime;

use super::app::guard;
use super::db::{self, Connection};
use super::query::to_ms;
use super::tenants;
use super::{
    args_of, backend, db_err, from_ms, resource_err, stored, ResourceRow, CHUNK, RESOURCE_COLS,
};
use crate::app::{GuardSubject, HeldOperation, MatchBy, RoleMapping};
use crate::domain::guard::GuardRow;
use crate::domain::query::{Dialect, Key};
use crate::domain::rows::Where;
use crate::domain::rows::{
    AppChange, AppRow, Candidate, DuplicateRow, LiveRow, NamedRow, ReviewedUser, Rewrite, RoleRow,
    Rows,
};
use crate::domain::{Derived, EmailKey, GroupSel};
use crate::events::Event;
use crate::stored_form::{
    app_row, candidate, json_text, live, marks, parse_doc, AppCols, CandidateRow, LiveCols,
};
pub(super) use crate::stored_form::{
    mapped_roles_sql, parse_roles, roles_text, GROUP_MAPPINGS_SQL,
};
use crate::StoredResource;
use crate::{custom_index_sql, review_sql};
use crate::{EmailUniqueness, StoreResult, Tenant, TenantSettings, TokenRecord};

/// Inserts the email rows of a resource that has none: one statement per `CHUNK / 5` emails.
async fn insert_emails(
    c: &mut Connection,
    tenant: &str,
    pk: i64,
    emails: &[EmailKey],
) -> StoreResult<()> {
    for chunk in emails.chunks(CHUNK / 5) {
        let sql = format!(
            "INSERT INTO emails (resource_pk, tenant_id, value_lc, type_lc, is_primary) \
             VALUES {}",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = db::query(&sql);
        for e in chunk {
            q = q
                .bind(pk)
                .bind(tenant)
                .bind(&e.value)
                .bind(&e.kind)
                .bind(e.primary);
        }
        q.execute(&mut *c).await.map_err(backend)?;
    }
    Ok(())
}

/// Replaces the email rows of an existing resource.
pub(super) async fn replace_emails(
    c: &mut Connection,
    tenant: &str,
    pk: i64,
    emails: &[EmailKey],
) -> StoreResult<()> {
    db::query("DELETE FROM emails WHERE resource_pk = ?")
        .bind(pk)
        .execute(&mut *c)
        .await
        .map_err(backend)?;
    insert_emails(c, tenant, pk, emails).await
}

/// Events per `INSERT`: 6 bound values each, well below SQLite's bound-parameter limit.
const EVENT_ROWS: usize = 100;

/// SQLite's string functions for the filter translator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn contains(&self, col: &str) -> (String, usize) {
        (format!("instr({col}, ?) > 0"), 1)
    }

    fn starts_with(&self, col: &str) -> (String, usize) {
        // `col >= ?` is implied by the prefix test and lets SQLite range-scan an index.
        (format!("{col} >= ? AND substr({col}, 1, length(?)) = ?"), 3)
    }

    fn ends_with(&self, col: &str) -> (String, usize) {
        (
            format!("length({col}) >= length(?) AND substr({col}, -length(?)) = ?"),
            3,
        )
    }
}

/// What an insert with explicit pks needs on this backend (see `review_sql`).
const OVERRIDING: &str = "";

impl Rows for Connection {
    fn dialect(&self) -> &'static dyn Dialect {
        &SqliteDialect
    }

    async fn count_where(&mut self, w: &Where) -> StoreResult<u64> {
        let total: i64 = db::query_scalar_with(
            &format!("SELECT COUNT(*) FROM resources r WHERE {}", w.sql),
            args_of(&w.args)?,
        )
        .fetch_one(&mut *self)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn page_where(
        &mut self,
        w: &Where,
        order: &str,
        limit: u64,
        offset: u64,
    ) -> StoreResult<Vec<StoredResource>> {
        let sql = format!(
            "SELECT {RESOURCE_COLS} FROM resources r WHERE {} ORDER BY {order} LIMIT ? OFFSET ?",
            w.sql
        );
        let mut args = args_of(&w.args)?;
        args.push(db::Param::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        args.push(db::Param::Integer(
            i64::try_from(offset).unwrap_or(i64::MAX),
        ));
        let rows: Vec<ResourceRow> = db::query_as_with(&sql, args)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|row| Ok(stored(w.kind, row)?.1))
            .collect()
    }

    async fn keyset_page(
        &mut self,
        w: &Where,
        key: Option<(&str, bool)>,
        order: &str,
        limit: u64,
    ) -> StoreResult<Vec<(Option<Key>, i64, StoredResource)>> {
        let (sk, int) = key.unwrap_or(("NULL", true));
        let sql = format!(
            "SELECT {RESOURCE_COLS}, {sk} FROM resources r WHERE {} ORDER BY {order} LIMIT ?",
            w.sql
        );
        let mut args = args_of(&w.args)?;
        args.push(db::Param::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        type KeyedRow = (i64, String, i64, String, i64, i64, Option<db::Param>);
        let rows: Vec<KeyedRow> = db::query_as_with(&sql, args)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|(pk, id, version, doc, created, modified, sk)| {
                let key = match (sk, int) {
                    (None | Some(db::Param::Null), _) => None,
                    (Some(db::Param::Integer(i)), true) => Some(Key::Int(i)),
                    (Some(db::Param::Text(t)), false) => Some(Key::Text(t)),
                    (Some(other), _) => {
                        return Err(backend(db::Error::InvalidColumnType(
                            6,
                            "sort key".to_owned(),
                            other.data_type(),
                        )))
                    }
                };
                let (pk, res) = stored(w.kind, (pk, id, version, doc, created, modified))?;
                Ok((key, pk, res))
            })
            .collect()
    }

    async fn candidates(&mut self, w: &Where) -> StoreResult<Vec<(i64, StoredResource)>> {
        let sql = format!(
            "SELECT {RESOURCE_COLS} FROM resources r WHERE {} ORDER BY r.pk",
            w.sql
        );
        let rows: Vec<ResourceRow> = db::query_as_with(&sql, args_of(&w.args)?)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)?;
        rows.into_iter().map(|row| stored(w.kind, row)).collect()
    }

    async fn candidate_members(&mut self, w: &Where) -> StoreResult<Vec<(i64, String)>> {
        let sql = format!(
            "SELECT m.group_pk, m.member_id FROM members m JOIN resources r ON r.pk = m.group_pk \
             WHERE {} ORDER BY m.group_pk, m.member_id",
            w.sql
        );
        db::query_as_with(&sql, args_of(&w.args)?)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)
    }

    async fn candidate_groups(&mut self, w: &Where) -> StoreResult<Vec<(i64, String, String)>> {
        let sql = format!(
            "SELECT m.member_pk, g.id, COALESCE(json_extract(g.doc, '$.displayName'), '') \
             FROM members m JOIN resources r ON r.pk = m.member_pk \
             JOIN resources g ON g.pk = m.group_pk AND g.managed = 1 \
             WHERE {} ORDER BY m.member_pk, g.id",
            w.sql
        );
        db::query_as_with(&sql, args_of(&w.args)?)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)
    }

    async fn tenant_settings(&mut self, tenant: &str) -> StoreResult<Option<TenantSettings>> {
        let text: Option<String> = db::query_scalar("SELECT settings FROM tenants WHERE id = ?")
            .bind(tenant)
            .fetch_optional(&mut *self)
            .await
            .map_err(backend)?;
        text.map(|t| serde_json::from_str(&t).map_err(backend))
            .transpose()
    }

    async fn user_by_name(
        &mut self,
        tenant: &str,
        user_name_lc: &str,
    ) -> StoreResult<(Option<NamedRow>, bool)> {
        // One statement: the User with this userName, and whether the tenant has any unmanaged
        // user at all — one probe of the partial index `resources_unmanaged` (named, so that a
        // planner without statistics cannot pick the full (tenant_id, kind) index and walk every
        // managed user).
        type Probe = (
            Option<i64>,
            Option<String>,
            Option<bool>,
            Option<bool>,
            Option<i64>,
            bool,
        );
        let (pk, id, deleted, managed, created, any_unmanaged): Probe = db::query_as(
            "SELECT r.pk, r.id, r.deleted, r.managed, r.created, \
                 EXISTS (SELECT 1 FROM resources u INDEXED BY resources_unmanaged \
                         WHERE u.tenant_id = ?1 AND u.kind = 'User' AND u.managed = 0) \
                 FROM (SELECT 1) LEFT JOIN resources r \
                 ON r.tenant_id = ?1 AND r.kind = 'User' AND r.user_name_lc = ?2",
        )
        .bind(tenant)
        .bind(user_name_lc)
        .fetch_one(&mut *self)
        .await
        .map_err(backend)?;
        let row = match (pk, id, deleted, managed, created) {
            (Some(pk), Some(id), Some(deleted), Some(managed), Some(created)) => Some(NamedRow {
                pk,
                id,
                deleted,
                managed,
                created: from_ms(created)?,
            }),
            _ => None,
        };
        Ok((row, any_unmanaged))
    }

    async fn unmanaged_user_by_name(
        &mut self,
        tenant: &str,
        user_name_lc: &str,
    ) -> StoreResult<Option<Candidate>> {
        let row: Option<CandidateRow> = db::query_as(
            "SELECT pk, id, created, external_id, doc FROM resources \
             WHERE tenant_id = ? AND kind = 'User' AND user_name_lc = ? AND managed = 0",
        )
        .bind(tenant)
        .bind(user_name_lc)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(candidate).transpose()
    }

    async fn unmanaged_user_by_primary_email(
        &mut self,
        tenant: &str,
        email_lc: &str,
    ) -> StoreResult<Option<Candidate>> {
        let row: Option<CandidateRow> = db::query_as(
            "SELECT r.pk, r.id, r.created, r.external_id, r.doc FROM emails e \
             JOIN resources r ON r.pk = e.resource_pk \
             WHERE e.tenant_id = ? AND e.value_lc = ? AND e.is_primary = 1 \
             AND r.kind = 'User' AND r.managed = 0 ORDER BY r.pk LIMIT 1",
        )
        .bind(tenant)
        .bind(email_lc)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(candidate).transpose()
    }

    async fn unmanaged_group_by_name(
        &mut self,
        tenant: &str,
        display_name_lc: &str,
    ) -> StoreResult<Option<Candidate>> {
        let row: Option<CandidateRow> = db::query_as(
            "SELECT pk, id, created, external_id, NULL FROM resources \
             WHERE tenant_id = ? AND kind = 'Group' AND display_name_lc = ? AND managed = 0 \
             ORDER BY pk LIMIT 1",
        )
        .bind(tenant)
        .bind(display_name_lc)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(candidate).transpose()
    }

    async fn live_row(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with_doc: bool,
    ) -> StoreResult<Option<LiveRow>> {
        let sql = if with_doc {
            "SELECT pk, version, created, active, external_id, display_name_lc, doc \
             FROM resources \
             WHERE tenant_id = ? AND kind = ? AND id = ? AND deleted = 0 AND managed = 1"
        } else {
            "SELECT pk, version, created, active, external_id, display_name_lc, NULL \
             FROM resources \
             WHERE tenant_id = ? AND kind = ? AND id = ? AND deleted = 0 AND managed = 1"
        };
        let row: Option<LiveCols> = db::query_as(sql)
            .bind(tenant)
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&mut *self)
            .await
            .map_err(backend)?;
        row.map(live).transpose()
    }

    async fn user_row(&mut self, tenant: &str, id: &str) -> StoreResult<Option<(i64, Value)>> {
        let row: Option<(i64, String)> = db::query_as(
            "SELECT pk, doc FROM resources \
             WHERE tenant_id = ? AND kind = 'User' AND id = ? AND deleted = 0",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(|(pk, doc)| Ok((pk, parse_doc(&doc)?))).transpose()
    }

    async fn insert_resource(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        doc: &Value,
        d: &Derived,
        password_hash: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let now_ms = to_ms(now);
        let pk: i64 = db::query_scalar(
            "INSERT INTO resources (tenant_id, kind, id, version, doc, password_hash, \
             user_name_lc, external_id, display_name_lc, active, created, last_modified, deleted) \
             VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING pk",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .bind(json_text(doc)?)
        .bind(password_hash)
        .bind(&d.user_name_lc)
        .bind(&d.external_id)
        .bind(&d.display_name_lc)
        .bind(d.active)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *self)
        .await
        .map_err(resource_err)?;
        // A new pk (AUTOINCREMENT never reuses one) has no email rows to replace.
        insert_emails(self, tenant, pk, &d.emails).await?;
        Ok(pk)
    }

    async fn rewrite_resource(
        &mut self,
        tenant: &str,
        pk: i64,
        doc: &Value,
        d: &Derived,
        how: Rewrite<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let password = if how.replace_password {
            "?"
        } else {
            "COALESCE(?, password_hash)"
        };
        let claim = if how.claim {
            "managed = 1, deleted = 0, "
        } else {
            ""
        };
        let sql = format!(
            "UPDATE resources SET doc = ?, password_hash = {password}, user_name_lc = ?, \
             external_id = ?, display_name_lc = ?, active = ?, {claim}\
             version = version + 1, last_modified = ? WHERE pk = ? RETURNING version"
        );
        let version: i64 = db::query_scalar(&sql)
            .bind(json_text(doc)?)
            .bind(how.password_hash)
            .bind(&d.user_name_lc)
            .bind(&d.external_id)
            .bind(&d.display_name_lc)
            .bind(d.active)
            .bind(to_ms(now))
            .bind(pk)
            .fetch_one(&mut *self)
            .await
            .map_err(resource_err)?;
        if how.emails {
            replace_emails(self, tenant, pk, &d.emails).await?;
        }
        Ok(version)
    }

    async fn bump_live_group(
        &mut self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<LiveRow>> {
        let row: Option<LiveCols> = db::query_as(
            "UPDATE resources SET version = version + 1, last_modified = ? \
             WHERE tenant_id = ? AND kind = 'Group' AND id = ? AND deleted = 0 AND managed = 1 \
             RETURNING pk, version, created, active, external_id, display_name_lc, doc",
        )
        .bind(to_ms(now))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(live).transpose()
    }

    async fn delete_resource(&mut self, _tenant: &str, pk: i64) -> StoreResult<()> {
        // Email and member rows go with it (ON DELETE CASCADE).
        db::query("DELETE FROM resources WHERE pk = ?")
            .bind(pk)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn deprovision_user(
        &mut self,
        _tenant: &str,
        pk: i64,
        doc: &Value,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        db::query(
            "UPDATE resources SET deleted = 1, active = 0, doc = ?, \
             version = version + 1, last_modified = ? WHERE pk = ?",
        )
        .bind(json_text(doc)?)
        .bind(to_ms(now))
        .bind(pk)
        .execute(&mut *self)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn live_users(
        &mut self,
        tenant: &str,
        ids: &[&str],
        managed_only: bool,
    ) -> StoreResult<Vec<(String, i64)>> {
        let managed = if managed_only { " AND managed = 1" } else { "" };
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, pk FROM resources WHERE tenant_id = ? AND kind = 'User' \
                 AND deleted = 0{managed} AND id IN ({})",
                marks(chunk.len())
            );
            let mut q = db::query_as::<(String, i64)>(&sql).bind(tenant);
            for id in chunk {
                q = q.bind(*id);
            }
            found.extend(q.fetch_all(&mut *self).await.map_err(backend)?);
        }
        Ok(found)
    }

    async fn user_pks(&mut self, tenant: &str, ids: &[&str]) -> StoreResult<Vec<i64>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT pk FROM resources WHERE tenant_id = ? AND kind = 'User' AND id IN ({})",
                marks(chunk.len())
            );
            let mut q = db::query_scalar::<i64>(&sql).bind(tenant);
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&mut *self).await.map_err(backend)?);
        }
        Ok(out)
    }

    async fn insert_members(
        &mut self,
        tenant: &str,
        group_pk: i64,
        members: &[(i64, String)],
    ) -> StoreResult<Vec<String>> {
        let mut added = Vec::new();
        // Four parameters a row: 200 rows a statement. `RETURNING` reports only the rows
        // `INSERT OR IGNORE` really inserted.
        for chunk in members.chunks(200) {
            let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT OR IGNORE INTO members (group_pk, member_pk, tenant_id, member_id) \
                 VALUES {rows} RETURNING member_id"
            );
            let mut q = db::query_scalar::<String>(&sql);
            for (pk, id) in chunk {
                q = q.bind(group_pk).bind(*pk).bind(tenant).bind(id.as_str());
            }
            added.extend(q.fetch_all(&mut *self).await.map_err(backend)?);
        }
        Ok(added)
    }

    async fn delete_members(
        &mut self,
        _tenant: &str,
        group_pk: i64,
        ids: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut removed = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM members WHERE group_pk = ? AND member_id IN ({}) \
                 RETURNING member_id",
                marks(chunk.len())
            );
            let mut q = db::query_scalar::<String>(&sql).bind(group_pk);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            removed.extend(q.fetch_all(&mut *self).await.map_err(backend)?);
        }
        Ok(removed)
    }

    async fn delete_all_members(
        &mut self,
        _tenant: &str,
        group_pk: i64,
    ) -> StoreResult<Vec<String>> {
        db::query_scalar::<String>("DELETE FROM members WHERE group_pk = ? RETURNING member_id")
            .bind(group_pk)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)
    }

    async fn member_pks(&mut self, _tenant: &str, group_pk: i64) -> StoreResult<Vec<i64>> {
        db::query_scalar("SELECT member_pk FROM members WHERE group_pk = ?")
            .bind(group_pk)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)
    }

    async fn member_count(&mut self, _tenant: &str, group_pk: i64) -> StoreResult<i64> {
        db::query_scalar("SELECT COUNT(*) FROM members WHERE group_pk = ?")
            .bind(group_pk)
            .fetch_one(&mut *self)
            .await
            .map_err(backend)
    }

    async fn groups_of_member(
        &mut self,
        _tenant: &str,
        user_pk: i64,
    ) -> StoreResult<Vec<(String, Value)>> {
        let rows: Vec<(String, String)> = db::query_as(
            "SELECT g.id, g.doc FROM members m JOIN resources g ON g.pk = m.group_pk \
             WHERE m.member_pk = ? ORDER BY g.pk",
        )
        .bind(user_pk)
        .fetch_all(&mut *self)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, doc)| Ok((id, parse_doc(&doc)?)))
            .collect()
    }

    async fn leave_groups(
        &mut self,
        _tenant: &str,
        user_pk: i64,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        db::query(
            "UPDATE resources SET version = version + 1, last_modified = ? \
             WHERE pk IN (SELECT group_pk FROM members WHERE member_pk = ?)",
        )
        .bind(to_ms(now))
        .bind(user_pk)
        .execute(&mut *self)
        .await
        .map_err(backend)?;
        db::query("DELETE FROM members WHERE member_pk = ?")
            .bind(user_pk)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn role_rows(&mut self, _tenant: &str, pks: &[i64]) -> StoreResult<Vec<RoleRow>> {
        let mut out = Vec::with_capacity(pks.len());
        for chunk in pks.chunks(CHUNK) {
            let sql = format!(
                "SELECT pk, id, COALESCE(json_extract(doc, '$.userName'), ''), active, deleted, \
                 roles FROM resources WHERE kind = 'User' AND pk IN ({})",
                marks(chunk.len())
            );
            let mut q = db::query_as::<(i64, String, String, Option<bool>, bool, String)>(&sql);
            for pk in chunk {
                q = q.bind(*pk);
            }
            for (pk, id, user_name, active, deleted, roles) in
                q.fetch_all(&mut *self).await.map_err(backend)?
            {
                out.push(RoleRow {
                    pk,
                    id,
                    user_name,
                    active,
                    deleted,
                    roles: parse_roles(&roles)?,
                });
            }
        }
        Ok(out)
    }

    async fn mapped_roles_of_members(
        &mut self,
        _tenant: &str,
        pks: &[i64],
    ) -> StoreResult<Vec<(i64, Vec<String>)>> {
        let mut out = Vec::new();
        for chunk in pks.chunks(CHUNK) {
            let sql = mapped_roles_sql(chunk.len(), false);
            let mut q = db::query_as::<(i64, String)>(&sql);
            for _ in 0..3 {
                for pk in chunk {
                    q = q.bind(*pk);
                }
            }
            for (pk, roles) in q.fetch_all(&mut *self).await.map_err(backend)? {
                out.push((pk, parse_roles(&roles)?));
            }
        }
        Ok(out)
    }

    async fn mapped_roles_of_group(
        &mut self,
        tenant: &str,
        sel: &GroupSel,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<String> = db::query_scalar(GROUP_MAPPINGS_SQL)
            .bind(tenant)
            .bind(&sel.id)
            .bind(tenant)
            .bind(&sel.external_id)
            .bind(tenant)
            .bind(&sel.display_name_lc)
            .fetch_all(&mut *self)
            .await
            .map_err(backend)?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(parse_roles(&r)?);
        }
        Ok(out)
    }

    async fn reserve_seqs(&mut self, tenant: &str, _n: usize) -> StoreResult<i64> {
        // Under the database-wide write lock (`BEGIN IMMEDIATE`), the tenant's largest seq is
        // the last one committed or written earlier in this transaction: nobody can take the
        // next ones before this transaction ends (see `domain::outbox`).
        let last: i64 =
            db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
                .bind(tenant)
                .fetch_one(&mut *self)
                .await
                .map_err(backend)?;
        Ok(last + 1)
    }

    async fn insert_events(&mut self, events: &[Event]) -> StoreResult<()> {
        // One statement per `EVENT_ROWS` events: a write's events cost one round trip, not one
        // each.
        for chunk in events.chunks(EVENT_ROWS) {
            let sql = format!(
                "INSERT INTO events (tenant_id, seq, id, type, occurred_at, data) VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = db::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.tenant)
                    .bind(e.seq)
                    .bind(&e.id)
                    .bind(&e.event_type)
                    .bind(to_ms(e.occurred_at))
                    .bind(json_text(&e.data)?);
            }
            q.execute(&mut *self).await.map_err(backend)?;
        }
        Ok(())
    }

    async fn guard_row(&mut self, tenant: &str) -> StoreResult<Option<GuardRow>> {
        guard::row(self, tenant).await
    }

    async fn guard_save(&mut self, tenant: &str, row: &GuardRow) -> StoreResult<()> {
        guard::save(self, tenant, row).await
    }

    async fn guard_clear(&mut self, tenant: &str, held: bool) -> StoreResult<()> {
        guard::clear(self, tenant, held).await
    }

    async fn guard_hold(
        &mut self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        guard::hold(self, tenant, subject, now).await
    }

    async fn guard_prune(
        &mut self,
        tenant: &str,
        minute: i64,
        counted_before: OffsetDateTime,
    ) -> StoreResult<()> {
        guard::prune(self, tenant, minute, counted_before).await
    }

    async fn guard_counted(&mut self, tenant: &str, user_id: &str) -> StoreResult<bool> {
        guard::counted(self, tenant, user_id).await
    }

    async fn guard_window_count(&mut self, tenant: &str, after_minute: i64) -> StoreResult<i64> {
        guard::window_count(self, tenant, after_minute).await
    }

    async fn guard_count(
        &mut self,
        tenant: &str,
        minute: i64,
        user_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        guard::count(self, tenant, minute, user_id, now).await
    }

    async fn guard_held(
        &mut self,
        tenant: &str,
        limit: u64,
    ) -> StoreResult<(u64, Vec<HeldOperation>)> {
        guard::held(self, tenant, limit).await
    }

    async fn active_users(&mut self, tenant: &str) -> StoreResult<i64> {
        guard::active_users(self, tenant).await
    }

    async fn app_row(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
    ) -> StoreResult<Option<AppRow>> {
        let row: Option<AppCols> = db::query_as(
            "SELECT pk, id, version, managed, doc FROM resources \
             WHERE tenant_id = ? AND kind = ? AND id = ?",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(app_row).transpose()
    }

    async fn group_by_name(
        &mut self,
        tenant: &str,
        display_name_lc: &str,
    ) -> StoreResult<Option<AppRow>> {
        let row: Option<AppCols> = db::query_as(
            "SELECT pk, id, version, managed, doc FROM resources \
             WHERE tenant_id = ? AND kind = 'Group' AND display_name_lc = ? \
             ORDER BY managed, pk LIMIT 1",
        )
        .bind(tenant)
        .bind(display_name_lc)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(app_row).transpose()
    }

    async fn insert_app_resource(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        doc: &Value,
        d: &Derived,
        roles: &[String],
        metadata: &Value,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let now_ms = to_ms(now);
        let pk: i64 = db::query_scalar(
            "INSERT INTO resources (tenant_id, kind, id, version, doc, user_name_lc, external_id, \
             display_name_lc, active, created, last_modified, deleted, managed, roles, app_metadata) \
             VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?) RETURNING pk",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .bind(json_text(doc)?)
        .bind(&d.user_name_lc)
        .bind(&d.external_id)
        .bind(&d.display_name_lc)
        .bind(d.active)
        .bind(now_ms)
        .bind(now_ms)
        .bind(roles_text(roles)?)
        .bind(json_text(metadata)?)
        .fetch_one(&mut *self)
        .await
        .map_err(resource_err)?;
        insert_emails(self, tenant, pk, &d.emails).await?;
        Ok(pk)
    }

    async fn change_app_resource(
        &mut self,
        tenant: &str,
        pk: i64,
        change: &AppChange<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut sets = Vec::new();
        let mut args: Vec<db::Param> = Vec::new();
        if let Some((doc, d)) = change.doc {
            sets.push(
                "doc = ?, user_name_lc = ?, external_id = ?, display_name_lc = ?, active = ?",
            );
            let text = |v: &Option<String>| v.clone().map_or(db::Param::Null, db::Param::Text);
            args.push(db::Param::Text(json_text(doc)?));
            args.push(text(&d.user_name_lc));
            args.push(text(&d.external_id));
            args.push(text(&d.display_name_lc));
            args.push(
                d.active
                    .map_or(db::Param::Null, |a| db::Param::Integer(i64::from(a))),
            );
        }
        if let Some(roles) = change.roles {
            sets.push("roles = ?");
            args.push(db::Param::Text(roles_text(roles)?));
        }
        if let Some(meta) = change.metadata {
            sets.push("app_metadata = ?");
            args.push(db::Param::Text(json_text(meta)?));
        }
        sets.push("version = version + 1, last_modified = ?");
        args.push(db::Param::Integer(to_ms(now)));
        args.push(db::Param::Integer(pk));
        let sql = format!("UPDATE resources SET {} WHERE pk = ?", sets.join(", "));
        db::query_with(&sql, args)
            .execute(&mut *self)
            .await
            .map_err(resource_err)?;
        if let Some((_, d)) = change.doc {
            replace_emails(self, tenant, pk, &d.emails).await?;
        }
        Ok(())
    }

    async fn mapping_selection(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(MatchBy, String)>> {
        let row: Option<(String, String)> = db::query_as(
            "SELECT match_by, value FROM role_mappings WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(|(by, value)| {
            let by = MatchBy::parse(&by).ok_or_else(|| backend(std::fmt::Error))?;
            Ok((by, value))
        })
        .transpose()
    }

    async fn selected_member_pks(
        &mut self,
        tenant: &str,
        by: MatchBy,
        match_value: &str,
    ) -> StoreResult<Vec<i64>> {
        let column = match by {
            MatchBy::Id => "g.id",
            MatchBy::ExternalId => "g.external_id",
            MatchBy::DisplayName => "g.display_name_lc",
        };
        db::query_scalar(&format!(
            "SELECT m.member_pk FROM resources g JOIN members m ON m.group_pk = g.pk \
             WHERE g.tenant_id = ? AND g.kind = 'Group' AND {column} = ?"
        ))
        .bind(tenant)
        .bind(match_value)
        .fetch_all(&mut *self)
        .await
        .map_err(backend)
    }

    async fn insert_mapping(
        &mut self,
        tenant: &str,
        mapping: &RoleMapping,
        match_value: &str,
    ) -> StoreResult<()> {
        db::query(
            "INSERT INTO role_mappings (id, tenant_id, match_by, match_value, value, roles, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&mapping.id)
        .bind(tenant)
        .bind(mapping.by.as_str())
        .bind(match_value)
        .bind(&mapping.value)
        .bind(roles_text(&mapping.roles)?)
        .bind(to_ms(mapping.created_at))
        .bind(to_ms(mapping.updated_at))
        .execute(&mut *self)
        .await
        .map_err(|e| db_err(e, "role mapping"))?;
        Ok(())
    }

    async fn update_mapping(
        &mut self,
        tenant: &str,
        mapping: &RoleMapping,
        match_value: &str,
    ) -> StoreResult<()> {
        db::query(
            "UPDATE role_mappings SET match_by = ?, match_value = ?, value = ?, roles = ?, \
             updated_at = ? WHERE tenant_id = ? AND id = ?",
        )
        .bind(mapping.by.as_str())
        .bind(match_value)
        .bind(&mapping.value)
        .bind(roles_text(&mapping.roles)?)
        .bind(to_ms(mapping.updated_at))
        .bind(tenant)
        .bind(&mapping.id)
        .execute(&mut *self)
        .await
        .map_err(|e| db_err(e, "role mapping"))?;
        Ok(())
    }

    async fn delete_mapping(&mut self, tenant: &str, id: &str) -> StoreResult<()> {
        db::query("DELETE FROM role_mappings WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn live_tenant(&mut self, id: &str) -> StoreResult<Option<Tenant>> {
        tenants::live_tenant(self, id).await
    }

    async fn write_tenant(&mut self, tenant: &Tenant) -> StoreResult<()> {
        tenants::write_tenant(self, tenant).await
    }

    async fn tenant_deleted_at(&mut self, id: &str) -> StoreResult<Option<Option<OffsetDateTime>>> {
        tenants::deleted_at(self, id).await
    }

    async fn mark_tenant_deleted(&mut self, id: &str, now: OffsetDateTime) -> StoreResult<()> {
        tenants::mark_deleted(self, id, now).await
    }

    async fn erase_tenant(&mut self, id: &str) -> StoreResult<()> {
        tenants::erase_tenant(self, id).await
    }

    async fn insert_token(&mut self, token: &TokenRecord) -> StoreResult<()> {
        tenants::insert_token(self, token).await
    }

    async fn revoke_tokens(
        &mut self,
        tenant: &str,
        prefix: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        tenants::revoke(self, tenant, prefix, now).await
    }

    async fn live_token_count(&mut self, tenant: &str, now: OffsetDateTime) -> StoreResult<i64> {
        tenants::live_token_count(self, tenant, now).await
    }

    async fn mark_expiring_tokens(
        &mut self,
        tenant: &str,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<TokenRecord>> {
        tenants::mark_expiring(self, tenant, before, now).await
    }

    async fn user_state(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(i64, bool, Value)>> {
        let row: Option<(i64, i64, String)> = db::query_as(
            "SELECT pk, deleted, doc FROM resources WHERE tenant_id = ? AND kind = 'User' AND id = ?",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *self)
        .await
        .map_err(backend)?;
        row.map(|(pk, deleted, doc)| Ok((pk, deleted != 0, parse_doc(&doc)?)))
            .transpose()
    }

    async fn events_naming(&mut self, tenant: &str, id: &str) -> StoreResult<Vec<(i64, Value)>> {
        let rows: Vec<(i64, String)> = db::query_as(
            "SELECT seq, data FROM events WHERE tenant_id = ? AND instr(data, ?) > 0 ORDER BY seq",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&mut *self)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(seq, data)| Ok((seq, parse_doc(&data)?)))
            .collect()
    }

    async fn rewrite_event_data(
        &mut self,
        tenant: &str,
        seq: i64,
        data: &Value,
    ) -> StoreResult<()> {
        db::query("UPDATE events SET data = ? WHERE tenant_id = ? AND seq = ?")
            .bind(json_text(data)?)
            .bind(tenant)
            .bind(seq)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn scrub_log(&mut self, tenant: &str, id: &str, needles: &[String]) -> StoreResult<u64> {
        let (sql, args) = crate::domain::erasure::scrub_log_statement(tenant, id, needles, |c| {
            format!("instr(lower({c}), ?) > 0")
        });
        let mut q = db::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        Ok(q.execute(&mut *self)
            .await
            .map_err(backend)?
            .rows_affected())
    }

    async fn guard_forget_name(&mut self, tenant: &str, id: &str) -> StoreResult<()> {
        db::query(
            "UPDATE deprovision_guard_held SET user_name = NULL WHERE tenant_id = ? AND user_id = ?",
        )
        .bind(tenant)
        .bind(id)
        .execute(&mut *self)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn replace_email_claims(
        &mut self,
        tenant: &str,
        pk: i64,
        values: &[String],
    ) -> StoreResult<Vec<String>> {
        db::query("DELETE FROM email_claims WHERE resource_pk = ?")
            .bind(pk)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        let mut inserted = Vec::with_capacity(values.len());
        for chunk in values.chunks(CHUNK / 3) {
            let sql = format!(
                "INSERT INTO email_claims (tenant_id, value_lc, resource_pk) VALUES {} \
                 ON CONFLICT DO NOTHING RETURNING value_lc",
                vec!["(?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = db::query_scalar(&sql);
            for v in chunk {
                q = q.bind(tenant).bind(v).bind(pk);
            }
            let done: Vec<String> = q.fetch_all(&mut *self).await.map_err(backend)?;
            inserted.extend(done);
        }
        Ok(inserted)
    }

    async fn claimed_emails(
        &mut self,
        tenant: &str,
        values: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut held = Vec::new();
        for chunk in values.chunks(CHUNK) {
            let sql = format!(
                "SELECT value_lc FROM email_claims WHERE tenant_id = ? AND value_lc IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = db::query_scalar(&sql).bind(tenant);
            for v in chunk {
                q = q.bind(v);
            }
            let found: Vec<String> = q.fetch_all(&mut *self).await.map_err(backend)?;
            held.extend(found);
        }
        Ok(held)
    }

    async fn email_duplicates(
        &mut self,
        tenant: &str,
        mode: EmailUniqueness,
        limit: u64,
    ) -> StoreResult<(u64, Vec<DuplicateRow>)> {
        let Some(counted) = crate::domain::emails::counted_sql(mode) else {
            return Ok((0, Vec::new()));
        };
        let total: i64 = db::query_scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT value_lc FROM ({counted}) \
             GROUP BY value_lc HAVING COUNT(*) > 1)"
        ))
        .bind(tenant)
        .fetch_one(&mut *self)
        .await
        .map_err(backend)?;
        if total == 0 {
            return Ok((0, Vec::new()));
        }
        let found: Vec<DuplicateRow> = db::query_as(&format!(
            "WITH c AS ({counted}), \
             d AS (SELECT value_lc FROM c GROUP BY value_lc HAVING COUNT(*) > 1 \
                   ORDER BY value_lc LIMIT ?2) \
             SELECT c.value_lc, r.id, COALESCE(r.user_name_lc, '') FROM c \
             JOIN d ON d.value_lc = c.value_lc JOIN resources r ON r.pk = c.resource_pk \
             ORDER BY c.value_lc, r.id"
        ))
        .bind(tenant)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self)
        .await
        .map_err(backend)?;
        Ok((u64::try_from(total).unwrap_or(0), found))
    }

    async fn refill_email_claims(
        &mut self,
        tenant: &str,
        mode: EmailUniqueness,
    ) -> StoreResult<()> {
        db::query("DELETE FROM email_claims WHERE tenant_id = ?")
            .bind(tenant)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        if let Some(counted) = crate::domain::emails::counted_sql(mode) {
            db::query(&format!(
                "INSERT INTO email_claims (tenant_id, value_lc, resource_pk) \
                 SELECT ?1, value_lc, resource_pk FROM ({counted})"
            ))
            .bind(tenant)
            .execute(&mut *self)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }

    crate::review_sql::review_rows!();

    crate::custom_index_sql::custom_index_rows!();
}
