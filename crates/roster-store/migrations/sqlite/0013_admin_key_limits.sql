-- Issue 12: admin keys may expire (with a warning before) and may be limited to scopes.
-- `scopes` is a JSON array of scope names; NULL = every scope (keys made before this).
-- `expiry_warned_at` records the one warning sent before `expires_at`.
ALTER TABLE admin_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE admin_keys ADD COLUMN scopes TEXT;
ALTER TABLE admin_keys ADD COLUMN expiry_warned_at INTEGER;
