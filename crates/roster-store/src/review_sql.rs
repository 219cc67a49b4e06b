//! The statements of the first-sync review ([`crate::domain::review`]), the same on SQLite and
//! PostgreSQL (both drivers take `?N` placeholders; a value is written in the column's own
//! type, so a copy between a table and its `review_*` twin needs no conversion). Where they
//! differ, a function takes the difference.
//!
//! `?1` is always the tenant. The copy tables carry no foreign keys, so they keep rows the
//! review deletes; a column added to `resources`, `members` or `emails` must be added to
//! [`RESOURCE_COPY_COLS`] and the twins' migrations.

/// The columns of `resources` the review copies (all of them).
pub(crate) const RESOURCE_COPY_COLS: &str = "tenant_id, pk, kind, id, version, doc, \
    password_hash, user_name_lc, external_id, display_name_lc, active, created, last_modified, \
    deleted, managed, roles, app_metadata";

/// Opens the tenant's review.
pub(crate) const OPEN_SQL: &str = "INSERT INTO review_cycles (tenant_id) VALUES (?1)";

/// The statements that copy the tenant's directory when its review opens.
pub(crate) fn copy_sql() -> [String; 3] {
    [
        format!(
            "INSERT INTO review_resources ({RESOURCE_COPY_COLS}) \
             SELECT {RESOURCE_COPY_COLS} FROM resources WHERE tenant_id = ?1"
        ),
        "INSERT INTO review_members (tenant_id, group_pk, member_pk, member_id) \
         SELECT tenant_id, group_pk, member_pk, member_id FROM members WHERE tenant_id = ?1"
            .to_owned(),
        "INSERT INTO review_emails (tenant_id, resource_pk, value_lc, type_lc, is_primary) \
         SELECT tenant_id, resource_pk, value_lc, type_lc, is_primary FROM emails \
         WHERE tenant_id = ?1"
            .to_owned(),
    ]
}

/// Whether the tenant's review is open.
pub(crate) const IS_OPEN_SQL: &str = "SELECT 1 FROM review_cycles WHERE tenant_id = ?1";

/// Everything the tenant's review keeps.
pub(crate) const CLOSE_SQL: [&str; 5] = [
    "DELETE FROM review_cycles WHERE tenant_id = ?1",
    "DELETE FROM held_events WHERE tenant_id = ?1",
    "DELETE FROM review_resources WHERE tenant_id = ?1",
    "DELETE FROM review_members WHERE tenant_id = ?1",
    "DELETE FROM review_emails WHERE tenant_id = ?1",
];

/// Holds one event after the tenant's others: `?2` id, `?3` type, `?4` time (ms), `?5` data.
/// The tenant's writes are serialised (SQLite's write lock, PostgreSQL's tenant lock), so
/// `MAX + 1` is free.
pub(crate) const HOLD_SQL: &str = "\
    INSERT INTO held_events (tenant_id, hseq, id, type, occurred_at, data) \
    SELECT ?1, COALESCE(MAX(hseq), 0) + 1, ?2, ?3, ?4, ?5 FROM held_events WHERE tenant_id = ?1";

/// The held events after hseq `?2`, at most `?3`, in order.
pub(crate) const HELD_SQL: &str = "\
    SELECT tenant_id, hseq, id, type, occurred_at, data FROM held_events \
    WHERE tenant_id = ?1 AND hseq > ?2 ORDER BY hseq LIMIT ?3";

/// How many events are held.
pub(crate) const HELD_COUNT_SQL: &str = "SELECT COUNT(*) FROM held_events WHERE tenant_id = ?1";

/// A User as the copy holds it: `?2` pk.
pub(crate) const REVIEWED_USER_SQL: &str = "\
    SELECT managed, active, deleted, roles FROM review_resources \
    WHERE tenant_id = ?1 AND pk = ?2 AND kind = 'User'";

/// The groups the User `?2` was a member of, as role mappings select them.
pub(crate) const REVIEWED_GROUPS_SQL: &str = "\
    SELECT g.id, g.external_id, g.display_name_lc FROM review_members m \
    JOIN review_resources g ON g.tenant_id = m.tenant_id AND g.pk = m.group_pk \
    WHERE m.tenant_id = ?1 AND m.member_pk = ?2 ORDER BY g.id";

/// Deletes what SCIM created since the review opened (managed rows the copy lacks); their
/// emails, memberships and claims go with them.
pub(crate) const DROP_CREATED_SQL: &str = "\
    DELETE FROM resources WHERE tenant_id = ?1 AND managed = TRUE AND NOT EXISTS ( \
      SELECT 1 FROM review_resources s WHERE s.tenant_id = ?1 AND s.pk = resources.pk)";

/// Frees the userNames of the rows about to be put back, so that two users who swapped names
/// during the review do not collide in the middle of the next statement.
pub(crate) const FREE_NAMES_SQL: &str = "\
    UPDATE resources SET user_name_lc = NULL WHERE tenant_id = ?1 AND EXISTS ( \
      SELECT 1 FROM review_resources s \
      WHERE s.tenant_id = ?1 AND s.pk = resources.pk AND s.version <> resources.version)";

/// Puts the copy's content back into rows that changed (another version), at version + 1 and
/// `lastModified` `?2`: a version is never reused, so an ETag the identity provider saw during
/// the review never matches the restored row.
pub(crate) const RESTORE_CHANGED_SQL: &str = "\
    UPDATE resources SET doc = s.doc, password_hash = s.password_hash, \
      user_name_lc = s.user_name_lc, external_id = s.external_id, \
      display_name_lc = s.display_name_lc, active = s.active, deleted = s.deleted, \
      managed = s.managed, roles = s.roles, app_metadata = s.app_metadata, \
      version = resources.version + 1, last_modified = ?2 \
    FROM review_resources s \
    WHERE resources.tenant_id = ?1 AND s.tenant_id = ?1 AND s.pk = resources.pk \
      AND s.version <> resources.version";

/// Reinserts rows of the copy that the review deleted, with their pk and id, at version + 1
/// and `lastModified` `?2`. `overriding` is PostgreSQL's `OVERRIDING SYSTEM VALUE` (its pk is
/// an identity column) or empty.
pub(crate) fn restore_deleted_sql(overriding: &str) -> String {
    format!(
        "INSERT INTO resources ({RESOURCE_COPY_COLS}) {overriding} \
         SELECT tenant_id, pk, kind, id, version + 1, doc, password_hash, user_name_lc, \
           external_id, display_name_lc, active, created, ?2, deleted, managed, roles, \
           app_metadata \
         FROM review_resources s WHERE s.tenant_id = ?1 AND NOT EXISTS ( \
           SELECT 1 FROM resources r WHERE r.tenant_id = ?1 AND r.pk = s.pk)"
    )
}

/// The rows put back: after the two statements above, exactly the copied rows whose version
/// differs from the copy's.
const RESTORED: &str = "SELECT s.pk FROM review_resources s JOIN resources r \
    ON r.tenant_id = s.tenant_id AND r.pk = s.pk WHERE s.tenant_id = ?1 AND r.version <> s.version";

/// The statements that give the rows put back their copied email rows.
pub(crate) fn restore_emails_sql() -> [String; 2] {
    [
        format!("DELETE FROM emails WHERE tenant_id = ?1 AND resource_pk IN ({RESTORED})"),
        format!(
            "INSERT INTO emails (resource_pk, tenant_id, value_lc, type_lc, is_primary) \
             SELECT resource_pk, tenant_id, value_lc, type_lc, is_primary FROM review_emails \
             WHERE tenant_id = ?1 AND resource_pk IN ({RESTORED})"
        ),
    ]
}

/// How many rows were put back.
pub(crate) fn restored_count_sql() -> String {
    format!("SELECT COUNT(*) FROM ({RESTORED}) x")
}

/// The statements that make the tenant's member rows the copy's.
pub(crate) const RESTORE_MEMBERS_SQL: [&str; 2] = [
    "DELETE FROM members WHERE tenant_id = ?1 AND NOT EXISTS ( \
       SELECT 1 FROM review_members s WHERE s.tenant_id = ?1 \
       AND s.group_pk = members.group_pk AND s.member_pk = members.member_pk)",
    "INSERT INTO members (group_pk, member_pk, tenant_id, member_id) \
     SELECT group_pk, member_pk, tenant_id, member_id FROM review_members WHERE tenant_id = ?1 \
     ON CONFLICT DO NOTHING",
];

/// The first-sync review's [`Rows`](crate::domain::Rows) methods, the same text on both
/// backends: their drivers share one query API (`db::query`, `bind`, `fetch_*`) and these
/// statements are shared SQL (above). Expanded inside each backend's `impl Rows`, where `db`,
/// `backend`, `to_ms`, `from_ms`, `json_text`, `parse_doc`, `parse_roles` and `OVERRIDING`
/// (what an insert with explicit pks needs there) are in scope.
macro_rules! review_rows {
    () => {
        async fn review_is_open(&mut self, tenant: &str) -> StoreResult<bool> {
            let open: Option<i64> = db::query_scalar(review_sql::IS_OPEN_SQL)
                .bind(tenant)
                .fetch_optional(&mut *self)
                .await
                .map_err(backend)?;
            Ok(open.is_some())
        }

        async fn review_open(&mut self, tenant: &str) -> StoreResult<()> {
            db::query(review_sql::OPEN_SQL)
                .bind(tenant)
                .execute(&mut *self)
                .await
                .map_err(backend)?;
            for sql in review_sql::copy_sql() {
                db::query(&sql)
                    .bind(tenant)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }

        async fn review_hold(&mut self, tenant: &str, events: &[Event]) -> StoreResult<()> {
            for e in events {
                db::query(review_sql::HOLD_SQL)
                    .bind(tenant)
                    .bind(&e.id)
                    .bind(&e.event_type)
                    .bind(to_ms(e.occurred_at))
                    .bind(json_text(&e.data)?)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }

        async fn review_held(
            &mut self,
            tenant: &str,
            after: i64,
            limit: u64,
        ) -> StoreResult<Vec<Event>> {
            let rows: Vec<(String, i64, String, String, i64, String)> =
                db::query_as(review_sql::HELD_SQL)
                    .bind(tenant)
                    .bind(after)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *self)
                    .await
                    .map_err(backend)?;
            rows.into_iter()
                .map(|(tenant, seq, id, event_type, at, data)| {
                    Ok(Event {
                        tenant,
                        seq,
                        id,
                        event_type,
                        occurred_at: from_ms(at)?,
                        data: parse_doc(&data)?,
                    })
                })
                .collect()
        }

        async fn review_held_count(&mut self, tenant: &str) -> StoreResult<u64> {
            let n: i64 = db::query_scalar(review_sql::HELD_COUNT_SQL)
                .bind(tenant)
                .fetch_one(&mut *self)
                .await
                .map_err(backend)?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        async fn review_close(&mut self, tenant: &str) -> StoreResult<()> {
            for sql in review_sql::CLOSE_SQL {
                db::query(sql)
                    .bind(tenant)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }

        async fn review_restore(
            &mut self,
            tenant: &str,
            now: OffsetDateTime,
        ) -> StoreResult<(u64, u64)> {
            let now = to_ms(now);
            let deleted = db::query(review_sql::DROP_CREATED_SQL)
                .bind(tenant)
                .execute(&mut *self)
                .await
                .map_err(backend)?
                .rows_affected();
            db::query(review_sql::FREE_NAMES_SQL)
                .bind(tenant)
                .execute(&mut *self)
                .await
                .map_err(backend)?;
            let reinsert = review_sql::restore_deleted_sql(OVERRIDING);
            for sql in [review_sql::RESTORE_CHANGED_SQL, reinsert.as_str()] {
                db::query(sql)
                    .bind(tenant)
                    .bind(now)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            let emails = review_sql::restore_emails_sql();
            let members = review_sql::RESTORE_MEMBERS_SQL.map(str::to_owned);
            for sql in emails.iter().chain(members.iter()) {
                db::query(sql)
                    .bind(tenant)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            let restored: i64 = db::query_scalar(&review_sql::restored_count_sql())
                .bind(tenant)
                .fetch_one(&mut *self)
                .await
                .map_err(backend)?;
            Ok((deleted, u64::try_from(restored).unwrap_or(0)))
        }

        async fn reviewed_user(
            &mut self,
            tenant: &str,
            pk: i64,
        ) -> StoreResult<Option<ReviewedUser>> {
            let row: Option<(i64, Option<i64>, i64, String)> =
                db::query_as(review_sql::REVIEWED_USER_SQL)
                    .bind(tenant)
                    .bind(pk)
                    .fetch_optional(&mut *self)
                    .await
                    .map_err(backend)?;
            let Some((managed, active, deleted, roles)) = row else {
                return Ok(None);
            };
            let groups: Vec<(String, Option<String>, Option<String>)> =
                db::query_as(review_sql::REVIEWED_GROUPS_SQL)
                    .bind(tenant)
                    .bind(pk)
                    .fetch_all(&mut *self)
                    .await
                    .map_err(backend)?;
            Ok(Some(ReviewedUser {
                managed: managed != 0,
                active: active.map(|a| a != 0),
                deleted: deleted != 0,
                roles: parse_roles(&roles)?,
                groups: groups
                    .into_iter()
                    .map(|(id, external_id, display_name_lc)| GroupSel {
                        id,
                        external_id,
                        display_name_lc,
                    })
                    .collect(),
            }))
        }
    };
}
pub(crate) use review_rows;
