-- The newest failures of a tenant (the console's "failed requests in the last 24 hours", the
-- provisioning log filtered to failures) without walking every success: failures are rare,
-- so this partial index stays small however long the log grows.
CREATE INDEX provisioning_log_failures ON provisioning_log (tenant_id, id) WHERE status >= 400;
