-- Tenant lifecycle and token rules (issue 4). Forward-only, like every migration.

-- A tenant deleted with its data retained: invisible to the API and SCIM, its id reserved
-- until it is erased. NULL = live.
ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;

-- When `token.expiring` was emitted for the token: set in the same transaction as the event,
-- so each token is announced once however often (and by however many processes) the check runs.
ALTER TABLE tokens ADD COLUMN expiry_warned_at INTEGER;

-- Live tokens by expiry: the expiry check and the live-token count read only these.
CREATE INDEX tokens_live_expiry ON tokens (tenant_id, expires_at) WHERE revoked_at IS NULL;
