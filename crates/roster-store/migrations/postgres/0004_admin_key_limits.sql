-- Issue 12: admin keys may expire (with a warning before) and may be limited to scopes.
-- `scopes` is a JSON array of scope names; NULL = every scope (keys made before this).
-- `expiry_warned_at` records the one warning sent before `expires_at`.
--
-- Expand only: nullable columns the previous release neither reads nor writes (its keys get
-- NULL: no expiry, every scope).
-- roster: expand-only

ALTER TABLE admin_keys ADD COLUMN IF NOT EXISTS expires_at BIGINT;
ALTER TABLE admin_keys ADD COLUMN IF NOT EXISTS scopes TEXT;
ALTER TABLE admin_keys ADD COLUMN IF NOT EXISTS expiry_warned_at BIGINT;
