-- Issue 14: a value a console session's next page shows once, sealed under a key derived from
-- the session's id (see the SQLite migration 0017). A global table, like `console_sessions`.
--
-- Expand only: the previous release neither reads nor writes it.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS console_once (
    id_hash     TEXT COLLATE "C" NOT NULL REFERENCES console_sessions(id_hash) ON DELETE CASCADE,
    key         TEXT COLLATE "C" NOT NULL,
    sealed      TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (id_hash, key)
);

CREATE INDEX IF NOT EXISTS console_once_expiry ON console_once (expires_at);
