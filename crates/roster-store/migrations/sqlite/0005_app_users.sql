-- Roster's SQLite schema, version 5 (issue 4): existing app users and groups (not managed by
-- SCIM), directly assigned roles and app metadata, role mappings, and the mass-deprovisioning
-- guard. Forward-only, like every migration. Timestamps are integer unix milliseconds (UTC).
--
-- The new tables have no foreign key to `tenants`, like `events`: they must never block the
-- removal of a tenant, whose erasure deletes their rows explicitly.

-- 0 = an app user or group imported or created through the admin API and not (yet) managed by
-- SCIM. Such rows are invisible to SCIM (every SCIM read and write filters `managed = 1`) until
-- a SCIM create matches them (same userName or primary email; same displayName for a group),
-- which turns them into managed rows in place: same pk, same id, history kept. userName stays
-- unique across both, which is what makes the match possible.
ALTER TABLE resources ADD COLUMN managed INTEGER NOT NULL DEFAULT 1 CHECK (managed IN (0, 1));
-- Roles assigned directly by the app (a JSON array of names, sorted, without duplicates). Kept
-- while a user is deactivated or deprovisioned, so that reactivation restores them.
ALTER TABLE resources ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
-- Whatever the app wants to keep beside a user or group (a JSON object); never sent to SCIM.
ALTER TABLE resources ADD COLUMN app_metadata TEXT NOT NULL DEFAULT '{}';

-- The unmanaged rows only (few, and none in most tenants): a SCIM create checks for them with
-- one probe of this small index before looking for an email match.
CREATE INDEX resources_unmanaged ON resources (tenant_id, kind) WHERE managed = 0;

-- Rows of one tenant and kind in pk (creation) order: the admin API's keyset pagination.
-- (SQLite appends the rowid, which `pk` is, to every index.)
CREATE INDEX resources_tenant_kind ON resources (tenant_id, kind);

-- A group → role names. `match_by` says which attribute of a group selects it; `match_value`
-- is compared with the group's indexed column (`id`, `external_id`, or `display_name_lc`,
-- hence folded for displayName), so a user's mapped roles come from indexed joins.
CREATE TABLE role_mappings (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    match_by     TEXT    NOT NULL CHECK (match_by IN ('id', 'externalId', 'displayName')),
    match_value  TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    roles        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, match_by, match_value)
) STRICT;

-- The mass-deprovisioning guard, one row per tenant that ever had a counted deactivation.
-- `state`: armed (counting), tripped (refusing; waiting for an operator), confirmed (the batch
-- may proceed until a quiet window passes), rejected (refusing until a quiet window passes).
CREATE TABLE deprovision_guard (
    tenant_id     TEXT    NOT NULL PRIMARY KEY,
    state         TEXT    NOT NULL CHECK (state IN ('armed', 'tripped', 'confirmed', 'rejected')),
    -- Active managed users when the current window's first deactivation was counted.
    base_active   INTEGER NOT NULL DEFAULT 0,
    window_start  INTEGER,
    tripped_at    INTEGER,
    decided_at    INTEGER,
    decided_by    TEXT,
    -- confirmed / rejected: when the state ends unless another deactivation extends it.
    until         INTEGER,
    trips         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Counted deactivations and deletions per tenant and minute: the sliding window is the sum of
-- at most `window_minutes` rows, so a check never scans the tenant.
CREATE TABLE deprovision_guard_counts (
    tenant_id  TEXT    NOT NULL,
    minute     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, minute)
) STRICT, WITHOUT ROWID;

-- The users counted in the current window: a user deactivated, reactivated and deactivated
-- again (as identity providers' test cycles do) is one user losing access, counted once.
CREATE TABLE deprovision_guard_users (
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX deprovision_guard_users_at ON deprovision_guard_users (tenant_id, at);

-- The deactivations and deletions refused while the guard is tripped or rejected: what an
-- operator confirms or rejects.
CREATE TABLE deprovision_guard_held (
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    user_name  TEXT,
    operation  TEXT    NOT NULL CHECK (operation IN ('deactivate', 'delete')),
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT, WITHOUT ROWID;
