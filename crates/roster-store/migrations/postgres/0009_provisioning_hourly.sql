-- Issue 14: requests and failures per tenant and hour (see the SQLite migration 0018 for the
-- meaning of each column). Written with the provisioning-log rows and read counts it sums.
--
-- Expand only: the previous release neither reads nor writes this table. Rows and reads that
-- a node of the previous release logs during a rolling upgrade are not counted in it.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS provisioning_hourly (
    tenant_id        TEXT COLLATE "C" NOT NULL,
    hour             BIGINT NOT NULL,
    requests         BIGINT NOT NULL CHECK (requests >= 0),
    failures         BIGINT NOT NULL CHECK (failures >= 0),
    unauthorized     BIGINT NOT NULL CHECK (unauthorized >= 0),
    server_errors    BIGINT NOT NULL CHECK (server_errors >= 0),
    last_at          BIGINT NOT NULL,
    last_status      BIGINT NOT NULL,
    last_success_at  BIGINT,
    PRIMARY KEY (tenant_id, hour)
);

CREATE INDEX IF NOT EXISTS provisioning_hourly_hour ON provisioning_hourly (hour);

-- What is already logged and counted. A 401 or 429 row is the sample of refused requests
-- that `provisioning_reads` counts (route `refused from …`): taken from the counts only.
INSERT INTO provisioning_hourly AS h (tenant_id, hour, requests, failures, unauthorized,
    server_errors, last_at, last_status, last_success_at)
SELECT tenant_id, at - at % 3600000, COUNT(*), COUNT(*) FILTER (WHERE status >= 400),
    COUNT(*) FILTER (WHERE status = 401), COUNT(*) FILTER (WHERE status >= 500), MAX(at),
    (array_agg(status ORDER BY at DESC, id DESC))[1], MAX(at) FILTER (WHERE status < 400)
FROM provisioning_log WHERE status NOT IN (401, 429) GROUP BY tenant_id, at - at % 3600000
ON CONFLICT (tenant_id, hour) DO NOTHING;

INSERT INTO provisioning_hourly AS h (tenant_id, hour, requests, failures, unauthorized,
    server_errors, last_at, last_status, last_success_at)
SELECT tenant_id, minute - minute % 3600000, SUM(count)::bigint,
    COALESCE(SUM(count) FILTER (WHERE last_status >= 400), 0)::bigint,
    COALESCE(SUM(count) FILTER (WHERE last_status = 401), 0)::bigint,
    COALESCE(SUM(count) FILTER (WHERE last_status >= 500), 0)::bigint,
    MAX(last_at), (array_agg(last_status ORDER BY last_at DESC, id DESC))[1],
    MAX(last_at) FILTER (WHERE last_status < 400)
FROM provisioning_reads GROUP BY tenant_id, minute - minute % 3600000
ON CONFLICT (tenant_id, hour) DO UPDATE SET
    requests = h.requests + excluded.requests,
    failures = h.failures + excluded.failures,
    unauthorized = h.unauthorized + excluded.unauthorized,
    server_errors = h.server_errors + excluded.server_errors,
    last_status = CASE WHEN excluded.last_at >= h.last_at THEN excluded.last_status
        ELSE h.last_status END,
    last_at = GREATEST(h.last_at, excluded.last_at),
    last_success_at = GREATEST(h.last_success_at, excluded.last_success_at);
