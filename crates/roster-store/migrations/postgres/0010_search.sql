-- Issue 14 (lists): search users and groups by text *contained* in their name, userName or
-- emails ("Anderson" finds "Ann Anderson"), through a trigram index instead of a scan.
--
-- `roster_search_text(doc)` is the lower-cased search text of a stored document: userName,
-- displayName, name.givenName/familyName/formatted and every emails[].value, separated by
-- spaces. A GIN index with `gin_trgm_ops` (the pg_trgm extension) on it answers
-- `roster_search_text(doc) LIKE '%text%'` for texts of 3 characters or more. Being an
-- expression index, every write path keeps it current in its own transaction.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner may
-- create it (PostgreSQL 13 and later); on older servers a superuser must run
-- `CREATE EXTENSION pg_trgm` once (docs/deployment.md).
--
-- Expand only: a previous release neither reads the function nor the index.
-- roster: expand-only

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE OR REPLACE FUNCTION roster_search_text(doc TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(concat_ws(' ',
        d ->> 'userName', d ->> 'displayName',
        d #>> '{name,givenName}', d #>> '{name,familyName}', d #>> '{name,formatted}',
        (SELECT string_agg(e ->> 'value', ' ')
         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d -> 'emails') = 'array'
                                        THEN d -> 'emails' ELSE '[]'::jsonb END) e
         WHERE jsonb_typeof(e) = 'object')))
    FROM (SELECT doc::jsonb AS d) x
$$;

CREATE INDEX IF NOT EXISTS resources_search
    ON resources USING gin (roster_search_text(doc) gin_trgm_ops);

-- Group members in name order, a page at a time: each membership row carries its member's
-- folded userName (`member_name`), set by a trigger as the row is inserted and kept current
-- when the user's userName changes; the index pages a group's members by (name, id) without
-- reading the others ('' for a member without a userName).
ALTER TABLE members ADD COLUMN IF NOT EXISTS member_name TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE OR REPLACE FUNCTION roster_members_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.member_name := coalesce((SELECT r.user_name_lc FROM resources r
                                 WHERE r.tenant_id = NEW.tenant_id AND r.pk = NEW.member_pk), '');
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS members_name_insert ON members;
CREATE TRIGGER members_name_insert BEFORE INSERT ON members
    FOR EACH ROW EXECUTE FUNCTION roster_members_name();

CREATE OR REPLACE FUNCTION roster_members_rename() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE members SET member_name = coalesce(NEW.user_name_lc, '')
    WHERE tenant_id = NEW.tenant_id AND member_pk = NEW.pk;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS members_name_rename ON resources;
CREATE TRIGGER members_name_rename AFTER UPDATE OF user_name_lc ON resources
    FOR EACH ROW WHEN (NEW.user_name_lc IS DISTINCT FROM OLD.user_name_lc)
    EXECUTE FUNCTION roster_members_rename();

UPDATE members m SET member_name = coalesce(r.user_name_lc, '')
FROM resources r WHERE r.tenant_id = m.tenant_id AND r.pk = m.member_pk
  AND m.member_name <> coalesce(r.user_name_lc, '');

CREATE INDEX IF NOT EXISTS members_group_name
    ON members (tenant_id, group_pk, member_name, member_id);
