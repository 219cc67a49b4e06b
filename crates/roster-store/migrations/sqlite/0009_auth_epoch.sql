-- Issue 10: the authentication cache's generation counter. Servers keep tokens, tenants and
-- admin keys in memory so that a request needs no database round trip to authenticate; every
-- change to those rows bumps this counter in the transaction of the change (the triggers below),
-- and each server reads the counter a few times a second and empties its cache when it moved.
-- That is how a token revoked by another process (the `roster` CLI, another node) stops working
-- within a second. Triggers rather than a line in each store method: a write path added later
-- (or a hand-run UPDATE) cannot forget the bump.
--
-- `last_used_at` is left out on purpose: it is bookkeeping, written by a background flush, and
-- must not empty every cache once a minute. So is `expiry_warned_at`. Expiry itself is checked
-- against the clock on every request, not through this counter.
--
-- One row; no `tenant_id` column, so erasing a tenant leaves it alone.

CREATE TABLE auth_epoch (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    n   INTEGER NOT NULL
) STRICT;

INSERT INTO auth_epoch (id, n) VALUES (1, 0);

CREATE TRIGGER auth_epoch_tenant_insert AFTER INSERT ON tenants
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

-- Every column of a tenant is part of what the cache holds (name, idp, settings, deleted_at).
CREATE TRIGGER auth_epoch_tenant_update AFTER UPDATE ON tenants
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_tenant_delete AFTER DELETE ON tenants
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_token_insert AFTER INSERT ON tokens
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_token_update
AFTER UPDATE OF prefix, tenant_id, hash, created_at, expires_at, revoked_at ON tokens
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_token_delete AFTER DELETE ON tokens
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_key_insert AFTER INSERT ON admin_keys
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_key_update
AFTER UPDATE OF prefix, hash, name, created_at, revoked_at ON admin_keys
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER auth_epoch_key_delete AFTER DELETE ON admin_keys
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
END;
