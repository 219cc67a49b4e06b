-- Issue 14: the role catalogue, the roles the host app declares (name and an optional
-- description). Roles are the app's, the same for every tenant: a global table, like
-- `console_operators`. Which of them a tenant's IT admin may grant is a tenant setting
-- (`grantable_roles`), not a row here. Expand only: the previous release never reads it.
CREATE TABLE role_catalogue (
    name         TEXT    NOT NULL PRIMARY KEY,
    description  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
