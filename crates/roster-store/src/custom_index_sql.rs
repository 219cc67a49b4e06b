//! The statements of the custom-attribute index ([`crate::domain::custom_index`]), the same on
//! SQLite and PostgreSQL (both drivers take `?N` placeholders). `?1` is always the tenant.

/// The tenants with an index being built (every tenant's: the backfill job's round).
pub(crate) const BUILDING_SQL: &str =
    "SELECT DISTINCT tenant_id FROM custom_indexes WHERE state = 'building' ORDER BY tenant_id";

/// The tenant's indexes.
pub(crate) const LIST_SQL: &str = "\
    SELECT kind, spec, state, backfill_after, failed_values FROM custom_indexes \
    WHERE tenant_id = ?1 ORDER BY kind, attr";

/// Inserts or replaces one index: `?2` kind, `?3` attr, `?4` spec, `?5` state, `?6` after,
/// `?7` failed values.
pub(crate) const PUT_SQL: &str = "\
    INSERT INTO custom_indexes (tenant_id, kind, attr, spec, state, backfill_after, failed_values) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (tenant_id, kind, attr) DO UPDATE SET spec = excluded.spec, \
    state = excluded.state, backfill_after = excluded.backfill_after, failed_values = excluded.failed_values";

/// Removes one index's values (`?2` attr; an attribute key names one kind's attribute).
pub(crate) const DROP_VALUES_SQL: &str =
    "DELETE FROM custom_values WHERE tenant_id = ?1 AND attr = ?2";

/// Removes one index (`?2` kind, `?3` attr).
pub(crate) const DROP_SQL: &str =
    "DELETE FROM custom_indexes WHERE tenant_id = ?1 AND kind = ?2 AND attr = ?3";

/// Removes resource `?2`'s values of attribute `?3`.
pub(crate) const CLEAR_SQL: &str =
    "DELETE FROM custom_values WHERE tenant_id = ?1 AND attr = ?3 AND resource_pk = ?2";

/// One value row: `?2` resource pk, `?3` attr, `?4` ord, `?5` v, `?6` present.
pub(crate) const INSERT_SQL: &str = "\
    INSERT INTO custom_values (tenant_id, resource_pk, attr, ord, v, present) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The resources of kind `?2` after pk `?3`, at most `?4`.
pub(crate) const AFTER_SQL: &str = "\
    SELECT pk, doc FROM resources WHERE tenant_id = ?1 AND kind = ?2 AND pk > ?3 \
    ORDER BY pk LIMIT ?4";

/// The custom-index [`Rows`](crate::domain::Rows) methods, the same text on both backends
/// (see [`crate::review_sql::review_rows`]): expanded inside each backend's `impl Rows`, where
/// `db`, `backend`, `parse_doc`, `custom_index_sql` and the domain types are in scope.
macro_rules! custom_index_rows {
    () => {
        async fn custom_indexes(
            &mut self,
            tenant: &str,
        ) -> StoreResult<Vec<crate::domain::custom_index::CustomIndex>> {
            use crate::domain::custom_index::{spec_from, CustomIndex, IndexState};
            let rows: Vec<(String, String, String, i64, i64)> =
                db::query_as(custom_index_sql::LIST_SQL)
                    .bind(tenant)
                    .fetch_all(&mut *self)
                    .await
                    .map_err(backend)?;
            rows.into_iter()
                .map(|(kind, spec, state, after, failed_values)| {
                    Ok(CustomIndex {
                        spec: spec_from(&kind, &spec)?,
                        state: IndexState::parse(&state),
                        after,
                        failed_values,
                    })
                })
                .collect()
        }

        async fn put_custom_index(
            &mut self,
            tenant: &str,
            index: &crate::domain::custom_index::CustomIndex,
        ) -> StoreResult<()> {
            db::query(custom_index_sql::PUT_SQL)
                .bind(tenant)
                .bind(index.spec.kind.as_str())
                .bind(index.spec.key())
                .bind(crate::domain::custom_index::spec_text(&index.spec)?)
                .bind(index.state.as_str())
                .bind(index.after)
                .bind(index.failed_values)
                .execute(&mut *self)
                .await
                .map_err(backend)?;
            Ok(())
        }

        async fn drop_custom_index(
            &mut self,
            tenant: &str,
            kind: ResourceKind,
            attr: &str,
        ) -> StoreResult<()> {
            db::query(custom_index_sql::DROP_VALUES_SQL)
                .bind(tenant)
                .bind(attr)
                .execute(&mut *self)
                .await
                .map_err(backend)?;
            db::query(custom_index_sql::DROP_SQL)
                .bind(tenant)
                .bind(kind.as_str())
                .bind(attr)
                .execute(&mut *self)
                .await
                .map_err(backend)?;
            Ok(())
        }

        async fn replace_custom_values(
            &mut self,
            tenant: &str,
            pk: i64,
            attrs: &[String],
            values: &[crate::domain::custom_index::ValueRow],
            fresh: bool,
        ) -> StoreResult<()> {
            if !fresh {
                for attr in attrs {
                    db::query(custom_index_sql::CLEAR_SQL)
                        .bind(tenant)
                        .bind(pk)
                        .bind(attr.as_str())
                        .execute(&mut *self)
                        .await
                        .map_err(backend)?;
                }
            }
            for v in values {
                db::query(custom_index_sql::INSERT_SQL)
                    .bind(tenant)
                    .bind(pk)
                    .bind(v.attr.as_str())
                    .bind(v.ord)
                    .bind(v.v.as_deref())
                    .bind(v.present)
                    .execute(&mut *self)
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }

        async fn resources_after(
            &mut self,
            tenant: &str,
            kind: ResourceKind,
            after: i64,
            limit: u64,
        ) -> StoreResult<Vec<(i64, Value)>> {
            let rows: Vec<(i64, String)> = db::query_as(custom_index_sql::AFTER_SQL)
                .bind(tenant)
                .bind(kind.as_str())
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *self)
                .await
                .map_err(backend)?;
            rows.into_iter()
                .map(|(pk, doc)| Ok((pk, parse_doc(&doc)?)))
                .collect()
        }
    };
}

pub(crate) use custom_index_rows;
