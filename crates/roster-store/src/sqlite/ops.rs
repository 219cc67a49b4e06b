//! SQLite implementation of the operator-side stores: webhooks and delivery streams, the
//! provisioning log, the audit log and admin keys.

use crate::sqlite::db;
use serde_json::Value;
use time::OffsetDateTime;

use super::outbox::opt_json;
use super::query::to_ms;
use super::{backend, db_err, from_ms, opt_from_ms, to_i64, SqliteStore, Tx};
use crate::health::{dense_hours, HealthStore, HourCount, TenantHealth};
use crate::health_sql::{
    health_from, health_since, hour_deltas, hour_from, prune_bound, Bind, HealthRow, HourDelta,
    HourRow, HOURLY_SQL, PRUNE_HOURLY_SQL, TENANTS_HEALTH_SQL, TENANT_HEALTH_SQL, UPSERT_HOUR_SQL,
};
use crate::ops::{
    minute_of, AdminKeyRecord, AuditEntry, DeliveryResult, DroppedCount, LogQuery, LogStore,
    ProvisioningEntry, ReadCount, ReadQuery, SecretTexts, Webhook, WebhookStore, WebhookStream,
};
use crate::stored_form::{
    key_from, stream_from, KeyRow, StreamRow, KEY_COLS, LEASE_STREAM_SQL, RELEASE_LEASES_SQL,
    STREAM_COLS,
};
use crate::{StoreError, StoreResult};

const WEBHOOK_COLS: &str = "id, tenant_id, url, description, event_types, secret, \
    previous_secret, previous_expires_at, enabled, created_at";
type WebhookRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn webhook_from(row: WebhookRow) -> StoreResult<Webhook> {
    let (id, tenant_id, url, description, types, secret, prev, prev_until, enabled, created) = row;
    let event_types: Vec<String> = match types {
        Some(t) => serde_json::from_str(&t).map_err(backend)?,
        None => Vec::new(),
    };
    Ok(Webhook {
        id,
        tenant_id,
        url,
        description,
        event_types,
        secret,
        previous_secret: prev,
        previous_expires_at: opt_from_ms(prev_until)?,
        enabled: enabled != 0,
        created_at: from_ms(created)?,
    })
}

async fn streams_where(
    tx: &mut Tx,
    webhook_id: &str,
    tenant: Option<&str>,
) -> StoreResult<Vec<WebhookStream>> {
    let rows: Vec<StreamRow> = db::query_as(&format!(
        "SELECT {STREAM_COLS} FROM webhook_streams WHERE webhook_id = ? \
         AND (? IS NULL OR tenant_id = ?) ORDER BY tenant_id"
    ))
    .bind(webhook_id)
    .bind(tenant)
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    rows.into_iter().map(stream_from).collect()
}

/// Takes or renews the lease of one stream; whether `node` holds it now.
async fn lease(
    tx: &mut Tx,
    webhook_id: &str,
    tenant: &str,
    node: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> StoreResult<bool> {
    let done = db::query(LEASE_STREAM_SQL)
        .bind(node)
        .bind(to_ms(until))
        .bind(tenant)
        .bind(webhook_id)
        .bind(node)
        .bind(to_ms(now))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let types = if w.event_types.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&w.event_types).map_err(backend)?)
        };
        let mut tx = self.write().await?;
        db::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&w.id)
        .bind(&w.tenant_id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(types)
        .bind(&w.secret)
        .bind(&w.previous_secret)
        .bind(w.previous_expires_at.map(to_ms))
        .bind(i64::from(w.enabled))
        .bind(to_ms(w.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "webhook"))?;
        // Existing tenants start at their current last seq: the webhook receives what happens
        // from now on. Tenants created later get their stream at 0 (`ensure_stream`).
        db::query(
            "INSERT INTO webhook_streams (webhook_id, tenant_id, cursor) \
             SELECT ?, t.id, (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.tenant_id = t.id) \
             FROM tenants t WHERE ? IS NULL OR t.id = ?",
        )
        .bind(&w.id)
        .bind(&w.tenant_id)
        .bind(&w.tenant_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows: Vec<WebhookRow> = db::query_as(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks ORDER BY created_at, rowid"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(webhook_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let row: Option<WebhookRow> =
            db::query_as(&format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(webhook_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let done = db::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let done = db::query(
            "UPDATE webhooks SET previous_secret = secret, previous_expires_at = ?, secret = ? \
             WHERE id = ?",
        )
        .bind(to_ms(previous_until))
        .bind(secret)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn replace_webhook_secrets(
        &self,
        id: &str,
        old: &SecretTexts,
        new: &SecretTexts,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = db::query(
            "UPDATE webhooks SET secret = ?, previous_secret = ? \
             WHERE id = ? AND secret = ? AND previous_secret IS ?",
        )
        .bind(&new.secret)
        .bind(&new.previous_secret)
        .bind(id)
        .bind(&old.secret)
        .bind(&old.previous_secret)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn ensure_stream(&self, webhook_id: &str, tenant: &str) -> StoreResult<WebhookStream> {
        let mut tx = self.write().await?;
        db::query(
            "INSERT OR IGNORE INTO webhook_streams (webhook_id, tenant_id, cursor) VALUES (?, ?, 0)",
        )
        .bind(webhook_id)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "stream"))?;
        let stream = streams_where(&mut tx, webhook_id, Some(tenant))
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(backend)?;
        Ok(stream)
    }

    #[tracing::instrument(skip_all)]
    async fn list_streams(&self, webhook_id: Option<&str>) -> StoreResult<Vec<WebhookStream>> {
        let rows: Vec<StreamRow> = db::query_as(&format!(
            "SELECT {STREAM_COLS} FROM webhook_streams WHERE ? IS NULL OR webhook_id = ? \
             ORDER BY webhook_id, tenant_id"
        ))
        .bind(webhook_id)
        .bind(webhook_id)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(stream_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn lease_stream(
        &self,
        webhook_id: &str,
        tenant: &str,
        node: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<WebhookStream>> {
        let mut tx = self.write().await?;
        let mut taken = lease(&mut tx, webhook_id, tenant, node, now, until).await?;
        if !taken {
            // The stream may not exist yet (a tenant created after the webhook).
            let created = db::query(
                "INSERT INTO webhook_streams (webhook_id, tenant_id, cursor) VALUES (?, ?, 0) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(webhook_id)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err(e, "stream"))?;
            if created.rows_affected() > 0 {
                taken = lease(&mut tx, webhook_id, tenant, node, now, until).await?;
            }
        }
        let stream = streams_where(&mut tx, webhook_id, Some(tenant)).await?;
        tx.commit().await.map_err(backend)?;
        match stream.into_iter().next() {
            Some(s) if taken => Ok(Some(s)),
            Some(_) => Ok(None),
            // Gone with its webhook, or the tenant is gone.
            None => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let done = db::query(RELEASE_LEASES_SQL)
            .bind(node)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn record_delivery(
        &self,
        webhook_id: &str,
        tenant: &str,
        generation: i64,
        node: &str,
        result: &DeliveryResult,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = match result {
            DeliveryResult::Delivered { seq } => db::query(
                "UPDATE webhook_streams SET cursor = MAX(cursor, ?), attempts = 0, \
                 next_attempt_at = NULL, failing_since = NULL, last_attempt_at = ?, \
                 last_success_at = ? \
                 WHERE webhook_id = ? AND tenant_id = ? AND generation = ? AND state = 'active' \
                 AND (lease_owner IS NULL OR lease_owner = ?)",
            )
            .bind(seq)
            .bind(to_ms(now))
            .bind(to_ms(now))
            .bind(webhook_id)
            .bind(tenant)
            .bind(generation)
            .bind(node),
            DeliveryResult::Failed {
                attempts,
                next_attempt_at,
                failing_since,
                error,
                park,
            } => db::query(
                "UPDATE webhook_streams SET attempts = ?, next_attempt_at = ?, \
                 failing_since = ?, last_error = ?, last_attempt_at = ?, state = ?, \
                 lease_owner = ?, lease_until = CASE WHEN ? THEN NULL ELSE lease_until END \
                 WHERE webhook_id = ? AND tenant_id = ? AND generation = ? AND state = 'active' \
                 AND (lease_owner IS NULL OR lease_owner = ?)",
            )
            .bind(attempts)
            .bind(to_ms(*next_attempt_at))
            .bind(to_ms(*failing_since))
            .bind(error)
            .bind(to_ms(now))
            .bind(if *park { "parked" } else { "active" })
            // A parked stream is nobody's: whichever node sees it redelivered takes it.
            .bind((!*park).then_some(node))
            .bind(*park)
            .bind(webhook_id)
            .bind(tenant)
            .bind(generation)
            .bind(node),
        }
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn redeliver(
        &self,
        webhook_id: &str,
        tenant: Option<&str>,
        from_seq: Option<i64>,
    ) -> StoreResult<Vec<WebhookStream>> {
        let mut tx = self.write().await?;
        let hook: Option<(Option<String>,)> =
            db::query_as("SELECT tenant_id FROM webhooks WHERE id = ?")
                .bind(webhook_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some((scope,)) = hook else {
            return Err(StoreError::NotFound);
        };
        if let Some(t) = tenant {
            if scope.as_deref().is_some_and(|s| s != t) {
                return Err(StoreError::Invalid(format!(
                    "webhook {webhook_id} does not receive events of tenant \"{t}\""
                )));
            }
            // A stream that was never started (tenant created after the webhook, worker not
            // yet run) still gets a row, so `from_seq` applies to it.
            db::query(
                "INSERT OR IGNORE INTO webhook_streams (webhook_id, tenant_id, cursor) \
                 SELECT ?, id, 0 FROM tenants WHERE id = ?",
            )
            .bind(webhook_id)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        db::query(
            "UPDATE webhook_streams SET state = 'active', generation = generation + 1, \
             attempts = 0, next_attempt_at = NULL, failing_since = NULL, \
             cursor = COALESCE(?, cursor) \
             WHERE webhook_id = ? AND (? IS NULL OR tenant_id = ?)",
        )
        .bind(from_seq.map(|s| (s - 1).max(0)))
        .bind(webhook_id)
        .bind(tenant)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let streams = streams_where(&mut tx, webhook_id, tenant).await?;
        tx.commit().await.map_err(backend)?;
        Ok(streams)
    }
}

const LOG_COLS: &str = "id, at, tenant_id, request_id, idp, user_agent, method, path, \
    resource_type, resource_id, name, status, scim_type, detail, hint, changed, duration_ms, \
    body, source_addr, token_prefix";

fn log_from(row: &db::Row) -> StoreResult<ProvisioningEntry> {
    let g = |e: db::Error| backend(e);
    let changed: Option<String> = row.try_get("changed").map_err(g)?;
    let status: i64 = row.try_get("status").map_err(g)?;
    Ok(ProvisioningEntry {
        id: row.try_get("id").map_err(g)?,
        at: from_ms(row.try_get("at").map_err(g)?)?,
        tenant_id: row.try_get("tenant_id").map_err(g)?,
        request_id: row.try_get("request_id").map_err(g)?,
        idp: row.try_get("idp").map_err(g)?,
        user_agent: row.try_get("user_agent").map_err(g)?,
        method: row.try_get("method").map_err(g)?,
        path: row.try_get("path").map_err(g)?,
        resource_type: row.try_get("resource_type").map_err(g)?,
        resource_id: row.try_get("resource_id").map_err(g)?,
        name: row.try_get("name").map_err(g)?,
        status: u16::try_from(status).unwrap_or(0),
        scim_type: row.try_get("scim_type").map_err(g)?,
        detail: row.try_get("detail").map_err(g)?,
        hint: row.try_get("hint").map_err(g)?,
        changed: match changed {
            Some(c) => serde_json::from_str(&c).map_err(backend)?,
            None => Vec::new(),
        },
        duration_ms: row.try_get("duration_ms").map_err(g)?,
        body: opt_json(row.try_get("body").map_err(g)?)?,
        source_addr: row.try_get("source_addr").map_err(g)?,
        token_prefix: row.try_get("token_prefix").map_err(g)?,
    })
}

const READ_COLS: &str = "id, tenant_id, minute, route, count, last_status, last_at";
type ReadRow = (i64, String, i64, String, i64, i64, i64);

fn read_from(row: ReadRow) -> StoreResult<ReadCount> {
    let (id, tenant_id, minute, route, count, status, last_at) = row;
    Ok(ReadCount {
        id,
        tenant_id,
        route,
        minute: from_ms(minute)?,
        count: u64::try_from(count).unwrap_or(0),
        last_status: u16::try_from(status).unwrap_or(0),
        last_at: from_ms(last_at)?,
    })
}

#[async_trait::async_trait]
impl LogStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn append_provisioning(&self, entries: &[ProvisioningEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for e in entries {
            let changed = if e.changed.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&e.changed).map_err(backend)?)
            };
            let body = e
                .body
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(backend)?;
            db::query(
                "INSERT INTO provisioning_log (at, tenant_id, request_id, idp, user_agent, method, \
                 path, resource_type, resource_id, name, name_lc, status, scim_type, detail, hint, \
                 changed, duration_ms, body, source_addr, token_prefix) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(to_ms(e.at))
            .bind(&e.tenant_id)
            .bind(&e.request_id)
            .bind(&e.idp)
            .bind(&e.user_agent)
            .bind(&e.method)
            .bind(&e.path)
            .bind(&e.resource_type)
            .bind(&e.resource_id)
            .bind(&e.name)
            .bind(e.name.as_deref().map(scim_proto::filter::fold_case))
            .bind(i64::from(e.status))
            .bind(&e.scim_type)
            .bind(&e.detail)
            .bind(&e.hint)
            .bind(changed)
            .bind(e.duration_ms)
            .bind(body)
            .bind(&e.source_addr)
            .bind(&e.token_prefix)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        add_hours(&mut tx, &hour_deltas(entries, &[])).await?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn list_provisioning(
        &self,
        tenant: &str,
        q: &LogQuery,
    ) -> StoreResult<Vec<ProvisioningEntry>> {
        let (sql, binds) = crate::health_sql::log_query(LOG_COLS, q);
        let mut query = db::query(&sql).bind(tenant);
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(&self.reader).await.map_err(backend)?;
        rows.iter().map(log_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn prune_provisioning(&self, before: OffsetDateTime, batch: u64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let done = db::query(
            "DELETE FROM provisioning_log WHERE id IN \
             (SELECT id FROM provisioning_log WHERE at < ? ORDER BY at LIMIT ?)",
        )
        .bind(to_ms(before))
        .bind(to_i64(batch))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn add_provisioning_counts(
        &self,
        reads: &[ReadCount],
        dropped: &[DroppedCount],
    ) -> StoreResult<()> {
        if reads.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for r in reads {
            // Every SET expression sees the stored row: the newer request's status wins, and
            // `last_at` only moves forward, whichever flush arrives first.
            db::query(
                "INSERT INTO provisioning_reads \
                 (tenant_id, minute, route, count, last_status, last_at) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, minute, route) DO UPDATE SET \
                 count = count + excluded.count, \
                 last_status = CASE WHEN excluded.last_at >= last_at \
                     THEN excluded.last_status ELSE last_status END, \
                 last_at = MAX(last_at, excluded.last_at)",
            )
            .bind(&r.tenant_id)
            .bind(to_ms(minute_of(r.minute)))
            .bind(&r.route)
            .bind(to_i64(r.count))
            .bind(i64::from(r.last_status))
            .bind(to_ms(r.last_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        // Counted reads are requests too: the rollup's figure is complete.
        add_hours(&mut tx, &hour_deltas(&[], reads)).await?;
        for d in dropped {
            db::query(
                "INSERT INTO provisioning_dropped (tenant_id, minute, count) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id, minute) DO UPDATE SET count = count + excluded.count",
            )
            .bind(&d.tenant_id)
            .bind(to_ms(minute_of(d.minute)))
            .bind(to_i64(d.count))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn list_read_counts(&self, tenant: &str, q: &ReadQuery) -> StoreResult<Vec<ReadCount>> {
        // The cursor is the id of the page's last row: the next page continues after its
        // (minute, id). A cursor of another tenant, or of a pruned row, ends the listing.
        let rows: Vec<ReadRow> = db::query_as(&format!(
            "SELECT {READ_COLS} FROM provisioning_reads WHERE tenant_id = ?1 \
             AND (?2 IS NULL OR minute >= ?2) AND (?3 IS NULL OR minute < ?3) \
             AND (?4 IS NULL OR (minute, id) < \
                 ((SELECT minute FROM provisioning_reads WHERE id = ?4 AND tenant_id = ?1), ?4)) \
             ORDER BY minute DESC, id DESC LIMIT ?5"
        ))
        .bind(tenant)
        .bind(q.since.map(to_ms))
        .bind(q.until.map(to_ms))
        .bind(q.before)
        .bind(to_i64(q.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(read_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn latest_read(&self, tenant: &str) -> StoreResult<Option<ReadCount>> {
        // A row's `last_at` lies within its minute, so the newest request is in the newest
        // minute: two index probes, however long the table.
        let row: Option<ReadRow> = db::query_as(&format!(
            "SELECT {READ_COLS} FROM provisioning_reads WHERE tenant_id = ?1 AND minute = \
             (SELECT MAX(minute) FROM provisioning_reads WHERE tenant_id = ?1) \
             ORDER BY last_at DESC, id DESC LIMIT 1"
        ))
        .bind(tenant)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(read_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn count_dropped(
        &self,
        tenant: &str,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> StoreResult<u64> {
        let n: i64 = db::query_scalar(
            "SELECT COALESCE(SUM(count), 0) FROM provisioning_dropped WHERE tenant_id = ?1 \
             AND (?2 IS NULL OR minute >= ?2) AND (?3 IS NULL OR minute < ?3)",
        )
        .bind(tenant)
        .bind(since.map(to_ms))
        .bind(until.map(to_ms))
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    #[tracing::instrument(skip_all)]
    async fn prune_provisioning_counts(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let mut deleted = 0;
        for table in ["provisioning_reads", "provisioning_dropped"] {
            let left = batch.saturating_sub(deleted);
            if left == 0 {
                break;
            }
            let done = db::query(&format!(
                "DELETE FROM {table} WHERE id IN \
                 (SELECT id FROM {table} WHERE minute < ? ORDER BY minute LIMIT ?)"
            ))
            .bind(to_ms(before))
            .bind(to_i64(left))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    #[tracing::instrument(skip_all)]
    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.write().await?;
        db::query(
            "INSERT INTO audit_log (at, actor, action, tenant_id, target, details) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(to_ms(e.at))
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.tenant_id)
        .bind(&e.target)
        .bind(serde_json::to_string(&e.details).map_err(backend)?)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit(&self, before: Option<i64>, limit: u64) -> StoreResult<Vec<AuditEntry>> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = db::query_as(
            "SELECT id, at, actor, action, tenant_id, target, details FROM audit_log \
             WHERE ? IS NULL OR id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before)
        .bind(before)
        .bind(to_i64(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, at, actor, action, tenant_id, target, details)| {
                Ok(AuditEntry {
                    id,
                    at: from_ms(at)?,
                    actor,
                    action,
                    tenant_id,
                    target,
                    details: serde_json::from_str::<Value>(&details).map_err(backend)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()> {
        let mut tx = self.write().await?;
        db::query(
            "INSERT INTO admin_keys (prefix, hash, name, created_at, last_used_at, revoked_at, \
             expires_at, scopes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.name)
        .bind(to_ms(key.created_at))
        .bind(key.last_used_at.map(to_ms))
        .bind(key.revoked_at.map(to_ms))
        .bind(key.expires_at.map(to_ms))
        .bind(crate::stored_form::scopes_text(key.scopes.as_ref()))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "admin key"))?;
        let _auth = self.auth_change();
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn claim_admin_key_expiry_warnings(
        &self,
        now: OffsetDateTime,
        within: time::Duration,
    ) -> StoreResult<Vec<AdminKeyRecord>> {
        let mut tx = self.write().await?;
        let rows: Vec<KeyRow> = db::query_as(&format!(
            "UPDATE admin_keys SET expiry_warned_at = ? \
             WHERE revoked_at IS NULL AND expiry_warned_at IS NULL \
               AND expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ? \
             RETURNING {KEY_COLS}"
        ))
        .bind(to_ms(now))
        .bind(to_ms(now))
        .bind(to_ms(now + within))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let mut keys = rows
            .into_iter()
            .map(key_from)
            .collect::<StoreResult<Vec<_>>>()?;
        keys.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(keys)
    }

    #[tracing::instrument(skip_all)]
    async fn list_admin_keys(&self) -> StoreResult<Vec<AdminKeyRecord>> {
        let rows: Vec<KeyRow> = db::query_as(&format!(
            "SELECT {KEY_COLS} FROM admin_keys ORDER BY created_at DESC, rowid DESC"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(key_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn find_admin_key(&self, prefix: &str) -> StoreResult<Option<AdminKeyRecord>> {
        let row: Option<KeyRow> = db::query_as(&format!(
            "SELECT {KEY_COLS} FROM admin_keys WHERE prefix = ?"
        ))
        .bind(prefix)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(key_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_admin_key(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let done = db::query(
            "UPDATE admin_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
        )
        .bind(to_ms(now))
        .bind(prefix)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let _auth = self.auth_change();
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn touch_admin_key(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write().await?;
        db::query("UPDATE admin_keys SET last_used_at = ? WHERE prefix = ?")
            .bind(to_ms(now))
            .bind(prefix)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all, fields(n = uses.len()))]
    async fn touch_admin_keys(&self, uses: &[(String, OffsetDateTime)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        self.touch_last_used(super::LastUsed::AdminKeys, uses).await
    }
}

/// Adds the rollup's deltas in the caller's transaction (the one that writes what they count).
async fn add_hours(tx: &mut Tx, deltas: &[HourDelta]) -> StoreResult<()> {
    for d in deltas {
        db::query(UPSERT_HOUR_SQL)
            .bind(&d.tenant_id)
            .bind(d.hour)
            .bind(d.requests)
            .bind(d.failures)
            .bind(d.unauthorized)
            .bind(d.server_errors)
            .bind(d.last_at)
            .bind(d.last_status)
            .bind(d.last_success_at)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

crate::health_sql::health_store!(SqliteStore, reader, write);

crate::delivery_sql::delivery_store!(SqliteStore, reader, write);
