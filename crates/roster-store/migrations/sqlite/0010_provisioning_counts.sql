-- Successful reads (GET and POST .search answered 2xx or 304) are not logged one row each:
-- they are counted per tenant, route and minute. A writer adds its in-memory counts with an
-- upsert, so two flushes of the same minute, or two processes, add up. `minute` is the start
-- of the minute (ms since the epoch), `last_at` the arrival of the newest counted request and
-- `last_status` its status. The unique key leads with (tenant_id, minute) so that "the newest
-- minute of a tenant" and a tenant's counts by time read the index; `id` is the API's cursor.
CREATE TABLE provisioning_reads (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    minute       INTEGER NOT NULL,
    route        TEXT    NOT NULL,
    count        INTEGER NOT NULL CHECK (count >= 0),
    last_status  INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, minute, route)
) STRICT;

-- Pruned by age with the provisioning log.
CREATE INDEX provisioning_reads_minute ON provisioning_reads (minute);

-- Provisioning-log rows that could not be queued (the queue stayed full for the whole bounded
-- wait), counted per tenant and minute, so that a gap in the log is visible where the log is
-- read rather than only in the server's own log.
CREATE TABLE provisioning_dropped (
    id         INTEGER PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    minute     INTEGER NOT NULL,
    count      INTEGER NOT NULL CHECK (count >= 0),
    UNIQUE (tenant_id, minute)
) STRICT;

CREATE INDEX provisioning_dropped_minute ON provisioning_dropped (minute);
