-- The web console (issue 6): server-side sessions, one-time setup links and operator accounts.
-- Only hashes of secrets are stored: SHA-256 of session ids and link tokens (high-entropy
-- random values), Argon2id of operator passwords.

CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    -- NULL: an operator session (every tenant); otherwise the one tenant this session may see.
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    -- 'admin-key:<prefix>', 'operator:<email>' or 'setup-link:<tenant>'.
    actor       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_actor ON console_sessions (actor);

CREATE TABLE console_setup_links (
    hash        TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE console_operators (
    email               TEXT PRIMARY KEY NOT NULL,
    password_hash       TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    last_sign_in_at     INTEGER,
    failed_attempts     INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER
);
