-- Issue 14: the role catalogue (see the SQLite migration 0021). A global table, like
-- `console_operators`: the roles are the host app's, the same for every tenant.
--
-- Expand only: the previous release neither reads nor writes it.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS role_catalogue (
    name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
