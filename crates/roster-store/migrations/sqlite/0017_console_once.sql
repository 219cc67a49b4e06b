-- Issue 14: a value a console session's next page shows once (a new SCIM token, a setup link),
-- after the POST that made it redirected (post, redirect, get). Kept in the database so that the
-- GET may reach any node. `sealed` is AES-256-GCM under a key derived from the session's id,
-- which the database does not hold (only its hash): the row is useless without the browser's
-- cookie. Taken (deleted) by the GET that shows it; expired rows go with every insert.
CREATE TABLE console_once (
    id_hash     TEXT    NOT NULL REFERENCES console_sessions(id_hash) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (id_hash, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX console_once_expiry ON console_once (expires_at);
