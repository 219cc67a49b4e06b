-- Issue 13: the tenant setting `first_sync_review`. While a tenant's review is open (a row in
-- `review_cycles`), the events of its SCIM writes are held in `held_events` instead of being
-- appended to `events` (they get their seq when the review is approved), and the directory as
-- it was when the review opened is kept in the `review_*` tables, so that a discard can put it
-- back. Snapshot tables carry no foreign keys: they keep rows the review later deletes.
-- A column added to `resources`, `members` or `emails` later must be added here too (the
-- snapshot and the discard copy them column by column: sqlite/review.rs, postgres/review.rs).
CREATE TABLE review_cycles (
    tenant_id   TEXT    NOT NULL PRIMARY KEY
) STRICT;

CREATE TABLE held_events (
    tenant_id    TEXT    NOT NULL,
    hseq         INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, hseq)
) STRICT, WITHOUT ROWID;

CREATE TABLE review_resources (
    tenant_id        TEXT    NOT NULL,
    pk               INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    doc              TEXT    NOT NULL,
    password_hash    TEXT,
    user_name_lc     TEXT,
    external_id      TEXT,
    display_name_lc  TEXT,
    active           INTEGER,
    created          INTEGER NOT NULL,
    last_modified    INTEGER NOT NULL,
    deleted          INTEGER NOT NULL,
    managed          INTEGER NOT NULL,
    roles            TEXT    NOT NULL,
    app_metadata     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, pk)
) STRICT, WITHOUT ROWID;

CREATE TABLE review_members (
    tenant_id  TEXT    NOT NULL,
    group_pk   INTEGER NOT NULL,
    member_pk  INTEGER NOT NULL,
    member_id  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, group_pk, member_pk)
) STRICT, WITHOUT ROWID;

CREATE INDEX review_members_member ON review_members (tenant_id, member_pk);

CREATE TABLE review_emails (
    tenant_id    TEXT    NOT NULL,
    resource_pk  INTEGER NOT NULL,
    value_lc     TEXT,
    type_lc      TEXT,
    is_primary   INTEGER
) STRICT;

CREATE INDEX review_emails_resource ON review_emails (tenant_id, resource_pk);
