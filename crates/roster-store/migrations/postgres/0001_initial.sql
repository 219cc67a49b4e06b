-- Roster's PostgreSQL schema, version 1: what SQLite's migrations 0001–0011 built, in one step.
-- Forward-only: never edit a released file, add a new one (and, for a change that older nodes
-- cannot run against, expand first and contract a release later: docs/deployment.md).
--
-- The same shape as SQLite's, so that the store core's SQL and the filter translator read the
-- same columns on both backends:
-- - times are BIGINT unix milliseconds (UTC), as on SQLite: what the store compares, sorts and
--   pages on, with no time-zone conversion in between;
-- - documents and JSON lists are TEXT holding JSON, returned byte for byte as stored (a `jsonb`
--   column would reorder the attributes of every document);
-- - flags are BOOLEAN; counts and keys BIGINT;
-- - the text that filters compare and sort (ids, folded names, email values) is COLLATE "C":
--   byte order, as SQLite and the store's in-memory evaluator compare, whatever the database's
--   default collation is.
--
-- Ready to be distributed by tenant (Citus, distribution column `tenant_id`): every table of
-- tenant data has `tenant_id` first in its primary key and in every unique constraint, and its
-- foreign keys stay within one tenant. The global tables (no tenant, or every tenant) are
-- listed in docs/deployment.md: tenants itself, auth_epoch, admin_keys, webhooks, audit_log,
-- console_sessions, console_setup_links, console_operators, meta.

CREATE TABLE tenants (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    idp         TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Per-tenant settings: one JSON object, read into roster_store::TenantSettings.
    settings    TEXT   NOT NULL DEFAULT '{}',
    -- A tenant deleted with its data retained; NULL = live.
    deleted_at  BIGINT,
    -- Insertion order, for listings that SQLite orders by rowid.
    ord         BIGINT GENERATED ALWAYS AS IDENTITY
);

-- One row per tenant that ever wrote: the write lock of the tenant and its event counter.
-- Every write transaction of a tenant locks this row first (`INSERT … ON CONFLICT DO UPDATE`),
-- which serialises the tenant's writers the way SQLite's database-wide write lock serialises
-- all of them, and `seq` is the last event seq handed out: updated under that lock and rolled
-- back with its transaction, so seqs are gap-free and in commit order. No foreign key to
-- tenants: the history of a tenant outlives the tenant.
CREATE TABLE tenant_writes (
    tenant_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    seq        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    tenant_id         TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    prefix            TEXT COLLATE "C" NOT NULL,
    hash              TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    last_used_at      BIGINT,
    revoked_at        BIGINT,
    expiry_warned_at  BIGINT,
    ord               BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant_id, prefix)
);

-- A token is found by its prefix before its tenant is known (the prefix is random).
CREATE INDEX tokens_prefix ON tokens (prefix);
CREATE INDEX tokens_tenant ON tokens (tenant_id, created_at);
CREATE INDEX tokens_live_expiry ON tokens (tenant_id, expires_at) WHERE revoked_at IS NULL;

CREATE TABLE resources (
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    pk               BIGINT GENERATED ALWAYS AS IDENTITY,
    kind             TEXT COLLATE "C" NOT NULL CHECK (kind IN ('User', 'Group')),
    id               TEXT COLLATE "C" NOT NULL,
    version          BIGINT  NOT NULL,
    doc              TEXT    NOT NULL,
    password_hash    TEXT,
    user_name_lc     TEXT COLLATE "C",
    external_id      TEXT COLLATE "C",
    display_name_lc  TEXT COLLATE "C",
    -- NULL when the document has no `active` (so `active pr` and `active eq false` differ).
    active           BOOLEAN,
    created          BIGINT  NOT NULL,
    last_modified    BIGINT  NOT NULL,
    -- A deprovisioned User: retained for audit and restore, invisible to SCIM.
    deleted          BOOLEAN NOT NULL DEFAULT FALSE,
    -- FALSE: an app user or group not (yet) managed by SCIM, invisible to SCIM.
    managed          BOOLEAN NOT NULL DEFAULT TRUE,
    -- Roles assigned directly by the app (a JSON array of names, sorted, without duplicates).
    roles            TEXT    NOT NULL DEFAULT '[]',
    -- Whatever the app keeps beside a user or group (a JSON object); never sent to SCIM.
    app_metadata     TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, pk),
    UNIQUE (tenant_id, kind, id)
);

-- Covers deprovisioned Users too: a later create with the same userName restores them.
CREATE UNIQUE INDEX resources_user_name ON resources (tenant_id, user_name_lc) WHERE kind = 'User';
CREATE INDEX resources_external_id ON resources (tenant_id, kind, external_id);
CREATE INDEX resources_display_name ON resources (tenant_id, kind, display_name_lc);
CREATE INDEX resources_active ON resources (tenant_id, kind, active);
CREATE INDEX resources_last_modified ON resources (tenant_id, kind, last_modified);
CREATE INDEX resources_created ON resources (tenant_id, kind, created);
CREATE INDEX resources_unmanaged ON resources (tenant_id, kind) WHERE NOT managed;
-- Rows of one tenant and kind in pk (creation) order: keyset pagination.
CREATE INDEX resources_tenant_kind ON resources (tenant_id, kind, pk);
-- A row by its key alone (the store's joins from membership and email rows).
CREATE INDEX resources_pk ON resources (pk);

-- One row per element of a User's `emails` (values folded: emails are caseExact=false).
CREATE TABLE emails (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    -- A key of its own: a User may list the same address twice.
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    resource_pk  BIGINT NOT NULL,
    value_lc     TEXT COLLATE "C",
    type_lc      TEXT COLLATE "C",
    is_primary   BOOLEAN,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, resource_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE
);

CREATE INDEX emails_value ON emails (tenant_id, value_lc);
CREATE INDEX emails_resource ON emails (resource_pk);

-- Group membership, one row per (group, member User). `member_id` is the member's SCIM id,
-- denormalised for filters and listing.
CREATE TABLE members (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    group_pk   BIGINT NOT NULL,
    member_pk  BIGINT NOT NULL,
    member_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, group_pk, member_pk),
    FOREIGN KEY (tenant_id, group_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, member_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE
);

CREATE INDEX members_group ON members (group_pk, member_pk);
CREATE INDEX members_group_member_id ON members (group_pk, member_id);
CREATE INDEX members_member ON members (member_pk);
CREATE INDEX members_tenant_member_id ON members (tenant_id, member_id);

-- Each group's number of members, kept by the triggers below in the transaction of every
-- membership change, so that a group's size reads one row. A row per group.
CREATE TABLE member_counts (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    group_pk   BIGINT NOT NULL,
    n          BIGINT NOT NULL CHECK (n >= 0),
    PRIMARY KEY (tenant_id, group_pk),
    FOREIGN KEY (tenant_id, group_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE
);

CREATE FUNCTION member_counts_new_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO member_counts (tenant_id, group_pk, n) VALUES (NEW.tenant_id, NEW.pk, 0);
    RETURN NULL;
END $$;

CREATE TRIGGER member_counts_new_group AFTER INSERT ON resources
    FOR EACH ROW WHEN (NEW.kind = 'Group') EXECUTE FUNCTION member_counts_new_group();

-- Statement-level, with the changed rows as a table: adding 1,000 members updates the count
-- once, not 1,000 times. Memberships are only inserted (ON CONFLICT DO NOTHING: a skipped row
-- is not in the transition table) and deleted, never updated.
CREATE FUNCTION member_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE member_counts c SET n = c.n + d.k
    FROM (SELECT tenant_id, group_pk, COUNT(*) AS k FROM added GROUP BY tenant_id, group_pk) d
    WHERE c.tenant_id = d.tenant_id AND c.group_pk = d.group_pk;
    RETURN NULL;
END $$;

CREATE FUNCTION member_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE member_counts c SET n = c.n - d.k
    FROM (SELECT tenant_id, group_pk, COUNT(*) AS k FROM removed GROUP BY tenant_id, group_pk) d
    WHERE c.tenant_id = d.tenant_id AND c.group_pk = d.group_pk;
    RETURN NULL;
END $$;

CREATE TRIGGER member_counts_add AFTER INSERT ON members
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION member_counts_add();
CREATE TRIGGER member_counts_remove AFTER DELETE ON members
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION member_counts_remove();

-- Statistics soon after a bulk change: an identity provider's first sync adds a tenant's whole
-- directory in minutes, and until the table is analysed the planner takes it for nearly empty
-- and may walk a whole tenant through the wrong index (an id lookup through the userName
-- index). PostgreSQL's default waits for 10% of the table to change.
ALTER TABLE resources SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000);
ALTER TABLE members SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000);
ALTER TABLE emails SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000);

-- The outbox. Every store write appends its events here in the same transaction as the change;
-- `seq` comes from tenant_writes (above). No foreign key to tenants.
CREATE TABLE events (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    occurred_at  BIGINT NOT NULL,
    data         TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, id)
);

CREATE INDEX events_type ON events (tenant_id, type, seq);

-- Other nodes' feed readers and webhook workers wake when events commit (LISTEN roster_events;
-- PostgreSQL delivers the notification at the commit, once per transaction).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roster_events', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
CREATE INDEX events_id ON events (id);

-- Operator API keys for the admin API. Only the SHA-256 of a key is stored. Global.
CREATE TABLE admin_keys (
    prefix        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    hash          TEXT   NOT NULL,
    name          TEXT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    ord           BIGINT GENERATED ALWAYS AS IDENTITY
);

-- Webhook endpoints. `tenant_id` NULL = every tenant, so the table is global. `event_types`
-- is a JSON array of type names (NULL = every type). Secrets are stored recoverably because
-- signing needs them.
CREATE TABLE webhooks (
    id                   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id            TEXT COLLATE "C" REFERENCES tenants (id),
    url                  TEXT    NOT NULL,
    description          TEXT,
    event_types          TEXT,
    secret               TEXT    NOT NULL,
    previous_secret      TEXT,
    previous_expires_at  BIGINT,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           BIGINT  NOT NULL,
    ord                  BIGINT GENERATED ALWAYS AS IDENTITY
);

-- One delivery stream per (tenant, webhook): the last delivered seq and the retry state.
CREATE TABLE webhook_streams (
    tenant_id        TEXT COLLATE "C" NOT NULL,
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    cursor           BIGINT NOT NULL,
    state            TEXT   NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'parked')),
    generation       BIGINT NOT NULL DEFAULT 0,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    failing_since    BIGINT,
    last_error       TEXT,
    last_attempt_at  BIGINT,
    last_success_at  BIGINT,
    PRIMARY KEY (tenant_id, webhook_id)
);

CREATE INDEX webhook_streams_webhook ON webhook_streams (webhook_id);

-- One row per SCIM write or failure. Written off the request path; pruned by age.
CREATE TABLE provisioning_log (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    id             BIGINT GENERATED ALWAYS AS IDENTITY,
    at             BIGINT NOT NULL,
    request_id     TEXT   NOT NULL,
    idp            TEXT,
    user_agent     TEXT,
    method         TEXT   NOT NULL,
    path           TEXT   NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT COLLATE "C",
    name           TEXT,
    name_lc        TEXT COLLATE "C",
    status         BIGINT NOT NULL,
    scim_type      TEXT,
    detail         TEXT,
    hint           TEXT,
    changed        TEXT,
    duration_ms    BIGINT NOT NULL,
    body           TEXT,
    source_addr    TEXT,
    token_prefix   TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX provisioning_log_at ON provisioning_log (at);
CREATE INDEX provisioning_log_resource ON provisioning_log (tenant_id, resource_id);
CREATE INDEX provisioning_log_name ON provisioning_log (tenant_id, name_lc);
CREATE INDEX provisioning_log_failures ON provisioning_log (tenant_id, id) WHERE status >= 400;

-- Successful reads counted per tenant, route and minute (docs/provisioning-log.md).
CREATE TABLE provisioning_reads (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    minute       BIGINT NOT NULL,
    route        TEXT   NOT NULL,
    count        BIGINT NOT NULL CHECK (count >= 0),
    last_status  BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, minute, route)
);

CREATE INDEX provisioning_reads_minute ON provisioning_reads (minute);

-- Provisioning-log rows that could not be queued, counted per tenant and minute.
CREATE TABLE provisioning_dropped (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    minute     BIGINT NOT NULL,
    count      BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, minute)
);

CREATE INDEX provisioning_dropped_minute ON provisioning_dropped (minute);

-- Administrative actions (admin API and command line). Append-only. Global (`tenant_id` may
-- be NULL).
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    tenant_id  TEXT COLLATE "C",
    target     TEXT,
    details    TEXT   NOT NULL
);

-- A group → role names (see SQLite's 0005).
CREATE TABLE role_mappings (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    match_by     TEXT COLLATE "C" NOT NULL CHECK (match_by IN ('id', 'externalId', 'displayName')),
    match_value  TEXT COLLATE "C" NOT NULL,
    value        TEXT   NOT NULL,
    roles        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, match_by, match_value)
);

CREATE INDEX role_mappings_id ON role_mappings (id);

-- The mass-deprovisioning guard (see SQLite's 0005).
CREATE TABLE deprovision_guard (
    tenant_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    state         TEXT   NOT NULL CHECK (state IN ('armed', 'tripped', 'confirmed', 'rejected')),
    base_active   BIGINT NOT NULL DEFAULT 0,
    window_start  BIGINT,
    tripped_at    BIGINT,
    decided_at    BIGINT,
    decided_by    TEXT,
    until         BIGINT,
    trips         BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE deprovision_guard_counts (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    minute     BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, minute)
);

CREATE TABLE deprovision_guard_users (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX deprovision_guard_users_at ON deprovision_guard_users (tenant_id, at);

CREATE TABLE deprovision_guard_held (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    user_name  TEXT,
    operation  TEXT   NOT NULL CHECK (operation IN ('deactivate', 'delete')),
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    attempts   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- The web console: sessions, one-time setup links and operator accounts (hashes of secrets
-- only). Global: a session or link is found by its secret's hash before any tenant is known.
CREATE TABLE console_sessions (
    id_hash     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" REFERENCES tenants (id) ON DELETE CASCADE,
    actor       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_actor ON console_sessions (actor);

CREATE TABLE console_setup_links (
    hash        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE console_operators (
    email                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    password_hash        TEXT   NOT NULL,
    created_at           BIGINT NOT NULL,
    password_changed_at  BIGINT NOT NULL,
    last_sign_in_at      BIGINT,
    failed_attempts      BIGINT NOT NULL DEFAULT 0,
    locked_until         BIGINT
);

-- Server-wide values every process on the database agrees on (see roster_store::meta).
CREATE TABLE meta (
    key    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value  TEXT
);

-- The authentication cache's generation counter (see SQLite's 0009): every change to tenants,
-- tokens (but their bookkeeping columns) and admin keys bumps it in the transaction of the
-- change and notifies `roster_auth`, so that every node empties its cache at once (LISTEN) or
-- within its next poll of the counter.
CREATE TABLE auth_epoch (
    id  BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    n   BIGINT NOT NULL
);

INSERT INTO auth_epoch (id, n) VALUES (1, 0);

CREATE FUNCTION auth_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
    PERFORM pg_notify('roster_auth', '');
    RETURN NULL;
END $$;

CREATE TRIGGER auth_epoch_tenants AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER auth_epoch_tokens_change AFTER INSERT OR DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER auth_epoch_tokens_update
    AFTER UPDATE OF prefix, tenant_id, hash, created_at, expires_at, revoked_at ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER auth_epoch_keys_change AFTER INSERT OR DELETE ON admin_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER auth_epoch_keys_update
    AFTER UPDATE OF prefix, hash, name, created_at, revoked_at ON admin_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
