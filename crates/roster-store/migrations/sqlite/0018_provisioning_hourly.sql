-- Issue 14: requests and failures per tenant and hour, the rollup behind the console's health
-- columns and its 7-day chart. Written in the same transaction as the provisioning-log rows
-- and the read counts it sums (an upsert `requests = requests + n` per (tenant, hour)), so
-- the health of a page of tenants is a bounded read of a few rows per tenant, never a scan of
-- the log. `hour` is the start of the hour (unix ms, UTC). `failures` counts statuses 400 and
-- above, `unauthorized` the 401s among them, `server_errors` the 5xx. `last_at`/`last_status`
-- are the newest request's of the hour; `last_success_at` the newest below 400 (NULL: none).
-- Pruned by age with the provisioning log (kept at least 7 days).
CREATE TABLE provisioning_hourly (
    tenant_id        TEXT    NOT NULL,
    hour             INTEGER NOT NULL,
    requests         INTEGER NOT NULL CHECK (requests >= 0),
    failures         INTEGER NOT NULL CHECK (failures >= 0),
    unauthorized     INTEGER NOT NULL CHECK (unauthorized >= 0),
    server_errors    INTEGER NOT NULL CHECK (server_errors >= 0),
    last_at          INTEGER NOT NULL,
    last_status      INTEGER NOT NULL,
    last_success_at  INTEGER,
    PRIMARY KEY (tenant_id, hour)
) STRICT, WITHOUT ROWID;

CREATE INDEX provisioning_hourly_hour ON provisioning_hourly (hour);

-- The health of a tenant reads its webhook streams; their key leads with the webhook.
CREATE INDEX webhook_streams_tenant ON webhook_streams (tenant_id);

-- What is already logged and counted. A 401 or 429 row is the sample of refused requests
-- that `provisioning_reads` counts (route `refused from …`): taken from the counts only (SQLite gives the bare `status` of the row with MAX(at)).
INSERT INTO provisioning_hourly (tenant_id, hour, requests, failures, unauthorized,
    server_errors, last_at, last_status, last_success_at)
SELECT tenant_id, at - at % 3600000, COUNT(*), SUM(status >= 400), SUM(status = 401),
    SUM(status >= 500), MAX(at), status, MAX(CASE WHEN status < 400 THEN at END)
FROM provisioning_log WHERE status NOT IN (401, 429) GROUP BY tenant_id, at - at % 3600000;

INSERT INTO provisioning_hourly (tenant_id, hour, requests, failures, unauthorized,
    server_errors, last_at, last_status, last_success_at)
SELECT tenant_id, minute - minute % 3600000, SUM(count),
    SUM(CASE WHEN last_status >= 400 THEN count ELSE 0 END),
    SUM(CASE WHEN last_status = 401 THEN count ELSE 0 END),
    SUM(CASE WHEN last_status >= 500 THEN count ELSE 0 END),
    MAX(last_at), last_status, MAX(CASE WHEN last_status < 400 THEN last_at END)
FROM provisioning_reads WHERE true GROUP BY tenant_id, minute - minute % 3600000
ON CONFLICT (tenant_id, hour) DO UPDATE SET
    requests = requests + excluded.requests,
    failures = failures + excluded.failures,
    unauthorized = unauthorized + excluded.unauthorized,
    server_errors = server_errors + excluded.server_errors,
    last_status = CASE WHEN excluded.last_at >= last_at THEN excluded.last_status
        ELSE last_status END,
    last_at = MAX(last_at, excluded.last_at),
    last_success_at = CASE WHEN last_success_at IS NULL
        OR excluded.last_success_at > last_success_at
        THEN excluded.last_success_at ELSE last_success_at END;
