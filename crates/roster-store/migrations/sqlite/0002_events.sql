-- Roster's SQLite schema, version 2: the outbox (events), webhooks and their delivery streams,
-- the provisioning log, the audit log and operator API keys. Forward-only, like every migration.
--
-- Timestamps are integer unix milliseconds (UTC), as in 0001.

-- The outbox. Every store write appends its events here in the same transaction as the change.
-- `seq` is per tenant, gap-free and increasing: it is assigned inside the write transaction as
-- MAX(seq)+1 while the single writer holds the database write lock (BEGIN IMMEDIATE), so commit
-- order is seq order and a reader polling `seq > cursor` never skips an event (docs/events.md).
-- No foreign key to tenants: the history of a tenant outlives the tenant.
CREATE TABLE events (
    tenant_id    TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    id           TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX events_type ON events (tenant_id, type, seq);

-- Operator API keys for the admin API (`/api/v1`). Only the SHA-256 of a key is stored.
CREATE TABLE admin_keys (
    prefix        TEXT    NOT NULL PRIMARY KEY,
    hash          TEXT    NOT NULL,
    name          TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) STRICT;

-- Webhook endpoints. `tenant_id` NULL = every tenant. `event_types` is a JSON array of type
-- names (NULL = every type). Secrets are stored recoverably because signing needs them (an
-- HMAC key cannot be hashed like a bearer token); `previous_secret` keeps signing during a
-- rotation until `previous_expires_at`.
CREATE TABLE webhooks (
    id                   TEXT    NOT NULL PRIMARY KEY,
    tenant_id            TEXT    REFERENCES tenants(id),
    url                  TEXT    NOT NULL,
    description          TEXT,
    event_types          TEXT,
    secret               TEXT    NOT NULL,
    previous_secret      TEXT,
    previous_expires_at  INTEGER,
    enabled              INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at           INTEGER NOT NULL
) STRICT;

-- One delivery stream per (webhook, tenant): the last delivered seq and the retry state.
-- `generation` is bumped by a manual redelivery so that a worker holding an older view of the
-- stream cannot overwrite it.
CREATE TABLE webhook_streams (
    webhook_id       TEXT    NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    tenant_id        TEXT    NOT NULL,
    cursor           INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'parked')),
    generation       INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    failing_since    INTEGER,
    last_error       TEXT,
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    PRIMARY KEY (webhook_id, tenant_id)
) STRICT, WITHOUT ROWID;

-- One row per SCIM request. Written off the request path by a batching writer; pruned by age.
CREATE TABLE provisioning_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    request_id     TEXT    NOT NULL,
    idp            TEXT,
    user_agent     TEXT,
    method         TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    name           TEXT,
    name_lc        TEXT,
    status         INTEGER NOT NULL,
    scim_type      TEXT,
    detail         TEXT,
    hint           TEXT,
    changed        TEXT,
    duration_ms    INTEGER NOT NULL,
    body           TEXT,
    source_addr    TEXT,
    token_prefix   TEXT
) STRICT;

CREATE INDEX provisioning_log_tenant ON provisioning_log (tenant_id, id);
CREATE INDEX provisioning_log_at ON provisioning_log (at);
CREATE INDEX provisioning_log_resource ON provisioning_log (tenant_id, resource_id);
CREATE INDEX provisioning_log_name ON provisioning_log (tenant_id, name_lc);

-- Administrative actions (admin API and command line). Append-only: nothing updates or deletes
-- these rows.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    tenant_id  TEXT,
    target     TEXT,
    details    TEXT    NOT NULL
) STRICT;
