-- Issue 13: the tenant setting `email_uniqueness` (`off`, `primary`, `any`). While it is not
-- `off`, each email a counted user holds (its primary one, or every one) has a row here, and
-- the primary key refuses a second user with the same email: the rule holds under concurrent
-- writes because the index enforces it, not a check before the write. Counted users are
-- active, deactivated and unmanaged app users; a deprovisioned user's rows are removed, an
-- erased user's go with it. Empty for tenants with the setting `off`.
CREATE TABLE email_claims (
    tenant_id    TEXT    NOT NULL,
    value_lc     TEXT    NOT NULL,
    resource_pk  INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, value_lc)
) STRICT, WITHOUT ROWID;

CREATE INDEX email_claims_resource ON email_claims (resource_pk);
