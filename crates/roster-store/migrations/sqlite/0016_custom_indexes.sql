-- Issue 13: the index behind a custom attribute declared `indexed`.
--
-- `custom_indexes` lists, per tenant, the custom attributes whose values are indexed: `attr`
-- is the folded `{urn}:{name}`, `spec` the declaration as the store encodes it (type,
-- caseExact, multiValued). `state` is `building` until the backfill (a background job that
-- walks the tenant's resources in pk order from `backfill_after`) has indexed every stored value, then
-- `ready`; only a ready index answers filters and sorts. `failed` when a stored value cannot
-- be indexed (`failed_values` of them, longer than the bound of an index key).
--
-- `custom_values` holds one row per value of such an attribute (an element of a multi-valued
-- one at its array position `ord`): `v` the value encoded so that text order is the
-- attribute's order (folded for caseExact=false strings; integers and dateTimes as fixed-width
-- hex), NULL for a value of the wrong JSON type; `present` whether it counts for `pr`.
-- Every write of a resource rewrites its rows in the same transaction.
CREATE TABLE custom_indexes (
    tenant_id      TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    attr           TEXT    NOT NULL,
    spec           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    backfill_after INTEGER NOT NULL DEFAULT 0,
    failed_values  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, kind, attr)
) STRICT, WITHOUT ROWID;

CREATE TABLE custom_values (
    tenant_id    TEXT    NOT NULL,
    attr         TEXT    NOT NULL,
    resource_pk  INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,
    ord          INTEGER NOT NULL,
    v            TEXT,
    present      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, attr, resource_pk, ord)
) STRICT, WITHOUT ROWID;

CREATE INDEX custom_values_v ON custom_values (tenant_id, attr, v);
CREATE INDEX custom_values_resource ON custom_values (resource_pk);
