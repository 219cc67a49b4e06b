//! The stored form of rows, shared by both backends: the columns a resource, tenant, token or
//! admin key is read with, and how those columns become the crate's types (times as unix
//! milliseconds, documents and role lists as JSON text), plus the few statements whose SQL is
//! the same on SQLite and PostgreSQL. A backend's own files keep what differs.

use scim_proto::schema::ResourceKind;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::rows::{AppRow, Candidate, LiveRow};
use crate::ops::{AdminKeyRecord, StreamState, WebhookStream};
use crate::{StoreError, StoreResult, StoredResource, Tenant, TokenRecord};

/// A conversion of a stored value failed: the row is not what Roster wrote.
fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// `resources` columns read for a [`StoredResource`].
pub(crate) const RESOURCE_COLS: &str = "r.pk, r.id, r.version, r.doc, r.created, r.last_modified";
pub(crate) type ResourceRow = (i64, String, i64, String, i64, i64);

/// `(id, name, idp, created_at, settings)` as selected from `tenants`.
pub(crate) type TenantRow = (String, String, String, i64, String);

pub(crate) fn tenant_from_row(
    (id, name, idp, created, settings): TenantRow,
) -> StoreResult<Tenant> {
    Ok(Tenant {
        id,
        name,
        idp,
        created_at: from_ms(created)?,
        settings: serde_json::from_str(&settings).map_err(backend)?,
    })
}

pub(crate) fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(backend)
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> StoreResult<Option<OffsetDateTime>> {
    ms.map(from_ms).transpose()
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn stored(kind: ResourceKind, row: ResourceRow) -> StoreResult<(i64, StoredResource)> {
    let (pk, id, version, doc, created, last_modified) = row;
    Ok((
        pk,
        StoredResource {
            id,
            kind,
            doc: serde_json::from_str(&doc).map_err(backend)?,
            version,
            created: from_ms(created)?,
            last_modified: from_ms(last_modified)?,
        },
    ))
}

pub(crate) const TOKEN_COLS: &str =
    "prefix, tenant_id, hash, created_at, expires_at, last_used_at, revoked_at";
pub(crate) type TokenRow = (String, String, String, i64, i64, Option<i64>, Option<i64>);

pub(crate) fn token_from(row: TokenRow) -> StoreResult<TokenRecord> {
    let (prefix, tenant_id, hash, created, expires, used, revoked) = row;
    Ok(TokenRecord {
        prefix,
        tenant_id,
        hash,
        created_at: from_ms(created)?,
        expires_at: from_ms(expires)?,
        last_used_at: opt_from_ms(used)?,
        revoked_at: opt_from_ms(revoked)?,
    })
}

pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) fn json_text(v: &Value) -> StoreResult<String> {
    serde_json::to_string(v).map_err(backend)
}

pub(crate) fn parse_doc(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(backend)
}

/// The stored form of a roles list: a JSON array of strings, sorted, without duplicates.
pub(crate) fn parse_roles(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(backend)
}

/// The stored form of a roles list: a JSON array of strings, sorted, without duplicates.
pub(crate) fn roles_text(roles: &[String]) -> StoreResult<String> {
    let set: std::collections::BTreeSet<&String> = roles.iter().collect();
    serde_json::to_string(&set).map_err(backend)
}

pub(crate) type AppCols = (i64, String, i64, bool, String);

pub(crate) fn app_row((pk, id, version, managed, doc): AppCols) -> StoreResult<AppRow> {
    Ok(AppRow {
        pk,
        id,
        version,
        managed,
        doc: parse_doc(&doc)?,
    })
}

pub(crate) type CandidateRow = (i64, String, i64, Option<String>, Option<String>);

pub(crate) fn candidate(
    (pk, id, created, external_id, doc): CandidateRow,
) -> StoreResult<Candidate> {
    Ok(Candidate {
        pk,
        id,
        created: from_ms(created)?,
        external_id,
        doc: doc.as_deref().map(parse_doc).transpose()?,
    })
}

pub(crate) type LiveCols = (
    i64,
    i64,
    i64,
    Option<bool>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(crate) fn live(
    (pk, version, created, active, external_id, display_name_lc, doc): LiveCols,
) -> StoreResult<LiveRow> {
    Ok(LiveRow {
        pk,
        version,
        created: from_ms(created)?,
        active,
        external_id,
        display_name_lc,
        doc: doc.as_deref().map(parse_doc).transpose()?,
    })
}

/// The mapped roles of the groups of `n` users (bound three times: with `by_tenant`, the tenant
/// then the users' pks, else the pks alone): for each way a mapping can select a group, the
/// members' rows, the group by pk, and the mapping by its unique
/// `(tenant_id, match_by, match_value)` index. Three exact lookups, rather than one join on an
/// `OR`, which SQLite answers by reading every mapping of the tenant.
///
/// `by_tenant` names the tenant in every table (PostgreSQL, for a database distributed by
/// tenant). SQLite's pks are global, and a `tenant_id` condition there makes it walk the
/// tenant's member rows through `(tenant_id, member_id)` instead of finding the users' rows by
/// `member_pk` (a login decision went from ~0.45× to 0.03× of the ceiling).
pub(crate) fn mapped_roles_sql(n: usize, by_tenant: bool) -> String {
    let m = marks(n);
    let (join, filter) = if by_tenant {
        (
            "g.tenant_id = m.tenant_id AND g.pk = m.group_pk",
            format!("m.tenant_id = ? AND m.member_pk IN ({m})"),
        )
    } else {
        ("g.pk = m.group_pk", format!("m.member_pk IN ({m})"))
    };
    [
        ("id", "g.id"),
        ("externalId", "g.external_id"),
        ("displayName", "g.display_name_lc"),
    ]
    .iter()
    .map(|(by, column)| {
        format!(
            "SELECT m.member_pk, rm.roles FROM members m \
                 JOIN resources g ON {join} \
                 JOIN role_mappings rm ON rm.tenant_id = g.tenant_id \
                 AND rm.match_by = '{by}' AND rm.match_value = {column} \
                 WHERE {filter}"
        )
    })
    .collect::<Vec<_>>()
    .join(" UNION ALL ")
}

/// The roles mapped to one group: `(tenant, id)`, `(tenant, externalId)`,
/// `(tenant, displayName folded)`, each an exact lookup of the unique index.
pub(crate) const GROUP_MAPPINGS_SQL: &str = "\
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'id' AND match_value = ? \
    UNION ALL \
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'externalId' AND match_value = ? \
    UNION ALL \
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'displayName' AND match_value = ?";

/// Parses a JSON text column that may be NULL.
pub(crate) fn opt_json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(backend))
        .transpose()
}

pub(crate) const KEY_COLS: &str =
    "prefix, hash, name, created_at, last_used_at, revoked_at, expires_at, scopes";
pub(crate) type KeyRow = (
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

pub(crate) fn key_from(row: KeyRow) -> StoreResult<AdminKeyRecord> {
    let (prefix, hash, name, created, used, revoked, expires, scopes) = row;
    Ok(AdminKeyRecord {
        prefix,
        hash,
        name,
        created_at: from_ms(created)?,
        last_used_at: opt_from_ms(used)?,
        revoked_at: opt_from_ms(revoked)?,
        expires_at: opt_from_ms(expires)?,
        scopes: scopes
            .map(|s| serde_json::from_str(&s).map_err(backend))
            .transpose()?,
    })
}

/// An admin key's scopes as stored: a JSON array, or NULL for every scope.
pub(crate) fn scopes_text(scopes: Option<&Vec<String>>) -> Option<String> {
    scopes.map(|s| serde_json::to_string(s).unwrap_or_else(|_| "[]".to_owned()))
}

/// `webhook_streams` columns read for a [`WebhookStream`].
pub(crate) const STREAM_COLS: &str = "webhook_id, tenant_id, cursor, state, generation, \
    attempts, next_attempt_at, failing_since, last_error, last_attempt_at, last_success_at, \
    lease_owner, lease_until";
pub(crate) type StreamRow = (
    String,
    String,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

pub(crate) fn stream_from(row: StreamRow) -> StoreResult<WebhookStream> {
    let (wh, tenant, cursor, state, generation, attempts, next, since, err, last, ok, owner, until) =
        row;
    Ok(WebhookStream {
        webhook_id: wh,
        tenant_id: tenant,
        cursor,
        state: if state == "parked" {
            StreamState::Parked
        } else {
            StreamState::Active
        },
        generation,
        attempts,
        next_attempt_at: opt_from_ms(next)?,
        failing_since: opt_from_ms(since)?,
        last_error: err,
        last_attempt_at: opt_from_ms(last)?,
        last_success_at: opt_from_ms(ok)?,
        lease_owner: owner,
        lease_until: opt_from_ms(until)?,
    })
}

/// Takes or renews a stream's lease: binds owner, until, tenant, webhook, owner, now. Matches
/// no row when another node's lease lasts beyond now (or the stream does not exist yet).
pub(crate) const LEASE_STREAM_SQL: &str = "UPDATE webhook_streams \
    SET lease_owner = ?, lease_until = ? \
    WHERE tenant_id = ? AND webhook_id = ? \
    AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)";

/// Ends a node's leases: binds the node.
pub(crate) const RELEASE_LEASES_SQL: &str = "UPDATE webhook_streams \
    SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?";

/// Claims a periodic job's run: binds job, now, node, and now minus the period. Changes a row
/// only when the job never ran or last ran at least a period ago.
pub(crate) const CLAIM_JOB_SQL: &str = "INSERT INTO jobs (name, last_run_at, node) \
    VALUES (?, ?, ?) \
    ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, node = excluded.node \
    WHERE jobs.last_run_at <= ?";
