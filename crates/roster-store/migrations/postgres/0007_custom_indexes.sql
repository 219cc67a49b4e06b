-- Issue 13: the index behind a custom attribute declared `indexed` (see the SQLite migration
-- 0016 for the meaning of each column). Text is compared in the "C" collation, as every other
-- indexed column: byte order, which is the order the encoding of `v` relies on.
--
-- Expand only: the previous release neither reads nor writes these tables; a resource it
-- writes while an index is ready would keep stale rows, so declare `indexed` once every node
-- runs this release (docs/scim.md says so).
-- roster: expand-only

CREATE TABLE IF NOT EXISTS custom_indexes (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL,
    attr           TEXT COLLATE "C" NOT NULL,
    spec           TEXT   NOT NULL,
    state          TEXT COLLATE "C" NOT NULL,
    backfill_after BIGINT NOT NULL DEFAULT 0,
    failed_values  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, kind, attr)
);

CREATE TABLE IF NOT EXISTS custom_values (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    attr         TEXT COLLATE "C" NOT NULL,
    resource_pk  BIGINT  NOT NULL,
    ord          BIGINT  NOT NULL,
    v            TEXT COLLATE "C",
    present      BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, attr, resource_pk, ord),
    FOREIGN KEY (tenant_id, resource_pk) REFERENCES resources (tenant_id, pk) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS custom_values_v ON custom_values (tenant_id, attr, v);
CREATE INDEX IF NOT EXISTS custom_values_resource ON custom_values (tenant_id, resource_pk);
