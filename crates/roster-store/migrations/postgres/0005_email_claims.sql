-- Issue 13: the tenant setting `email_uniqueness` (`off`, `primary`, `any`). While it is not
-- `off`, each email a counted user holds (its primary one, or every one) has a row here, and
-- the primary key refuses a second user with the same email: the rule holds under concurrent
-- writes (of any node) because the index enforces it, not a check before the write. Counted
-- users are active, deactivated and unmanaged app users; a deprovisioned user's rows are
-- removed, an erased user's go with it (the foreign key cascades). Empty for tenants with the
-- setting `off`.
--
-- Expand only: the previous release neither reads nor writes this table. It cannot serve a
-- tenant whose setting is on (it refuses settings it does not know, as for `rate_limit`), so
-- it never changes the emails of a user whose claims live here; erasing one cascades.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS email_claims (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    value_lc     TEXT COLLATE "C" NOT NULL,
    resource_pk  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, value_lc),
    FOREIGN KEY (tenant_id, resource_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS email_claims_resource ON email_claims (tenant_id, resource_pk);
