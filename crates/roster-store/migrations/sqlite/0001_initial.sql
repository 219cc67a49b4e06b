-- Roster's SQLite schema, version 1. Migrations are forward-only: never edit a released file,
-- add a new one.
--
-- Timestamps are integer unix milliseconds (UTC). Resources keep their SCIM document as JSON in
-- `doc`; the indexed columns beside it are derived from `doc` by the store on every write
-- (caseExact=false values folded with scim_proto::filter::fold_case), so filters on them run
-- as index lookups.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    idp         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    prefix        TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants(id),
    hash          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) STRICT;

CREATE INDEX tokens_tenant ON tokens (tenant_id, created_at);

CREATE TABLE resources (
    pk               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT    NOT NULL REFERENCES tenants(id),
    kind             TEXT    NOT NULL CHECK (kind IN ('User', 'Group')),
    id               TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    doc              TEXT    NOT NULL,
    password_hash    TEXT,
    user_name_lc     TEXT,
    external_id      TEXT,
    display_name_lc  TEXT,
    -- NULL when the document has no `active` (so `active pr` and `active eq false` differ).
    active           INTEGER,
    created          INTEGER NOT NULL,
    last_modified    INTEGER NOT NULL,
    -- 1 = a deprovisioned User: retained for audit and restore, invisible to SCIM.
    deleted          INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    UNIQUE (tenant_id, kind, id)
) STRICT;

-- Covers deprovisioned Users too: a later create with the same userName restores them.
CREATE UNIQUE INDEX resources_user_name ON resources (tenant_id, user_name_lc) WHERE kind = 'User';
CREATE INDEX resources_external_id ON resources (tenant_id, kind, external_id);
CREATE INDEX resources_display_name ON resources (tenant_id, kind, display_name_lc);
CREATE INDEX resources_active ON resources (tenant_id, kind, active);
CREATE INDEX resources_last_modified ON resources (tenant_id, kind, last_modified);
CREATE INDEX resources_created ON resources (tenant_id, kind, created);

-- One row per element of a User's `emails` (values folded: emails are caseExact=false).
CREATE TABLE emails (
    resource_pk  INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,
    tenant_id    TEXT    NOT NULL,
    value_lc     TEXT,
    type_lc      TEXT,
    is_primary   INTEGER
) STRICT;

CREATE INDEX emails_value ON emails (tenant_id, value_lc);
CREATE INDEX emails_resource ON emails (resource_pk);

-- Group membership, one row per (group, member User): adding one member to a huge group is one
-- indexed insert. `member_id` is the member's SCIM id, denormalised for filters and listing.
CREATE TABLE members (
    group_pk   INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,
    member_pk  INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,
    tenant_id  TEXT    NOT NULL,
    member_id  TEXT    NOT NULL,
    PRIMARY KEY (group_pk, member_pk)
) STRICT, WITHOUT ROWID;

CREATE INDEX members_group_member_id ON members (group_pk, member_id);
CREATE INDEX members_member ON members (member_pk);
CREATE INDEX members_tenant_member_id ON members (tenant_id, member_id);
