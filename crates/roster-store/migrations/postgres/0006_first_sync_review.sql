-- Issue 13: the tenant setting `first_sync_review`. While a tenant's review is open (a row in
-- `review_cycles`), the events of its SCIM writes are held in `held_events` instead of being
-- appended to `events` (they get their seq when the review is approved), and the directory as
-- it was when the review opened is kept in the `review_*` tables, so that a discard can put it
-- back. Snapshot tables carry no foreign keys: they keep rows the review later deletes.
-- A column added to `resources`, `members` or `emails` later must be added here too (the
-- snapshot and the discard copy them column by column: sqlite/review.rs, postgres/review.rs).
--
-- Expand only: the previous release neither reads nor writes these tables. It refuses the
-- setting (it does not know it), so it never serves a tenant whose review is open.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS review_cycles (
    tenant_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS held_events (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    hseq         BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    occurred_at  BIGINT NOT NULL,
    data         TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, hseq)
);

CREATE TABLE IF NOT EXISTS review_resources (
    tenant_id        TEXT COLLATE "C" NOT NULL,
    pk               BIGINT  NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    version          BIGINT  NOT NULL,
    doc              TEXT    NOT NULL,
    password_hash    TEXT,
    user_name_lc     TEXT COLLATE "C",
    external_id      TEXT COLLATE "C",
    display_name_lc  TEXT COLLATE "C",
    active           BOOLEAN,
    created          BIGINT  NOT NULL,
    last_modified    BIGINT  NOT NULL,
    deleted          BOOLEAN NOT NULL,
    managed          BOOLEAN NOT NULL,
    roles            TEXT    NOT NULL,
    app_metadata     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, pk)
);

CREATE TABLE IF NOT EXISTS review_members (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    group_pk   BIGINT NOT NULL,
    member_pk  BIGINT NOT NULL,
    member_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, group_pk, member_pk)
);

CREATE INDEX IF NOT EXISTS review_members_member ON review_members (tenant_id, member_pk);

CREATE TABLE IF NOT EXISTS review_emails (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    -- A key of its own, as in `emails` (a User may list the same address twice).
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    resource_pk  BIGINT NOT NULL,
    value_lc     TEXT COLLATE "C",
    type_lc      TEXT COLLATE "C",
    is_primary   BOOLEAN,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX IF NOT EXISTS review_emails_resource ON review_emails (tenant_id, resource_pk);
