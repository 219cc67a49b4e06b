//! The statements of [`crate::delivery`], the same on SQLite and PostgreSQL (both drivers
//! take `?N` placeholders; times are unix milliseconds in BIGINT columns; `enabled` is bound
//! as 0 or 1 and compared, so that it is a boolean in PostgreSQL and an integer in SQLite).

use crate::delivery::{StreamLag, WebhookAttempt};
use crate::stored_form::from_ms;
use crate::StoreResult;

/// Pauses or resumes webhook `?1`: `?2` is 1 (resume) or 0 (pause).
pub(crate) const SET_ENABLED_SQL: &str =
    "UPDATE webhooks SET enabled = (?2 = CAST(1 AS BIGINT)) WHERE id = ?1";

/// Stores one attempt.
pub(crate) const INSERT_ATTEMPT_SQL: &str = "\
    INSERT INTO webhook_attempts (tenant_id, webhook_id, at, first_seq, last_seq, event_id, \
        status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Deletes the attempts of webhook `?1` older than its newest `?2`.
pub(crate) const PRUNE_ATTEMPTS_SQL: &str = "\
    DELETE FROM webhook_attempts WHERE webhook_id = ?1 AND id < \
    (SELECT MIN(k.id) FROM (SELECT id FROM webhook_attempts WHERE webhook_id = ?1 \
        ORDER BY id DESC LIMIT ?2) k)";

/// The attempts of webhook `?1`, of tenant `?2` (`''`: every tenant), with an id below `?3`,
/// newest first, at most `?4`.
pub(crate) const LIST_ATTEMPTS_SQL: &str = "\
    SELECT id, webhook_id, tenant_id, at, first_seq, last_seq, event_id, status, error, \
        duration_ms FROM webhook_attempts \
    WHERE webhook_id = ?1 AND (?2 = '' OR tenant_id = ?2) AND id < ?3 \
    ORDER BY id DESC LIMIT ?4";

/// A row of [`LIST_ATTEMPTS_SQL`].
pub(crate) type AttemptRow = (
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    Option<String>,
    i64,
);

pub(crate) fn attempt_from(row: AttemptRow) -> StoreResult<WebhookAttempt> {
    let (id, webhook_id, tenant_id, at, first_seq, last_seq, event_id, status, error, ms) = row;
    Ok(WebhookAttempt {
        id,
        webhook_id,
        tenant_id,
        at: from_ms(at)?,
        first_seq,
        last_seq,
        event_id,
        status: status.and_then(|s| u16::try_from(s).ok()),
        error,
        duration_ms: u64::try_from(ms).unwrap_or(0),
    })
}

/// The lag of the streams of webhook `?1` (`''`: all) and tenant `?2` (`''`: all): the
/// tenant's newest seq (the events' key gives it from one index entry) minus the cursor.
pub(crate) const STREAM_LAGS_SQL: &str = "\
    SELECT s.webhook_id, s.tenant_id, \
    COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.tenant_id = s.tenant_id), 0) - s.cursor \
    FROM webhook_streams s WHERE (?1 = '' OR s.webhook_id = ?1) AND (?2 = '' OR s.tenant_id = ?2) \
    ORDER BY s.webhook_id, s.tenant_id";

/// A row of [`STREAM_LAGS_SQL`].
pub(crate) type LagRow = (String, String, i64);

pub(crate) fn lag_from((webhook_id, tenant_id, lag): LagRow) -> StreamLag {
    StreamLag {
        webhook_id,
        tenant_id,
        lag: u64::try_from(lag).unwrap_or(0),
    }
}

/// The [`DeliveryStore`](crate::delivery::DeliveryStore) of a backend, the same text on both:
/// `$store` reads through its field `$reader` and writes through its method `$write`.
macro_rules! delivery_store {
    ($store:ty, $reader:ident, $write:ident) => {
        #[async_trait::async_trait]
        impl $crate::delivery::DeliveryStore for $store {
            #[tracing::instrument(skip_all)]
            async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> StoreResult<()> {
                use $crate::delivery_sql::SET_ENABLED_SQL;
                let mut tx = self.$write().await?;
                let done = db::query(SET_ENABLED_SQL)
                    .bind(id)
                    .bind(i64::from(enabled))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn record_webhook_attempt(
                &self,
                a: &$crate::delivery::WebhookAttempt,
                keep: u64,
            ) -> StoreResult<()> {
                use $crate::delivery_sql::{INSERT_ATTEMPT_SQL, PRUNE_ATTEMPTS_SQL};
                let mut tx = self.$write().await?;
                db::query(INSERT_ATTEMPT_SQL)
                    .bind(a.tenant_id.as_str())
                    .bind(a.webhook_id.as_str())
                    .bind(to_ms(a.at))
                    .bind(a.first_seq)
                    .bind(a.last_seq)
                    .bind(a.event_id.as_str())
                    .bind(a.status.map(i64::from))
                    .bind(a.error.as_deref())
                    .bind(to_i64(a.duration_ms))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                db::query(PRUNE_ATTEMPTS_SQL)
                    .bind(a.webhook_id.as_str())
                    .bind(to_i64(keep.max(1)))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn list_webhook_attempts(
                &self,
                webhook_id: &str,
                tenant: Option<&str>,
                before: Option<i64>,
                limit: u64,
            ) -> StoreResult<Vec<$crate::delivery::WebhookAttempt>> {
                use $crate::delivery_sql::{attempt_from, AttemptRow, LIST_ATTEMPTS_SQL};
                let rows: Vec<AttemptRow> = db::query_as(LIST_ATTEMPTS_SQL)
                    .bind(webhook_id)
                    .bind(tenant.unwrap_or(""))
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(to_i64(limit))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(backend)?;
                rows.into_iter().map(attempt_from).collect()
            }

            #[tracing::instrument(skip_all)]
            async fn stream_lags(
                &self,
                webhook_id: Option<&str>,
                tenant: Option<&str>,
            ) -> StoreResult<Vec<$crate::delivery::StreamLag>> {
                use $crate::delivery_sql::{lag_from, LagRow, STREAM_LAGS_SQL};
                let rows: Vec<LagRow> = db::query_as(STREAM_LAGS_SQL)
                    .bind(webhook_id.unwrap_or(""))
                    .bind(tenant.unwrap_or(""))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(backend)?;
                Ok(rows.into_iter().map(lag_from).collect())
            }
        }
    };
}

pub(crate) use delivery_store;
