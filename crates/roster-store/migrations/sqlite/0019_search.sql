-- Issue 14 (lists): search users and groups by text *contained* in their name, userName or
-- emails ("Anderson" finds "Ann Anderson"), through an index instead of a scan.
--
-- `resource_search` is an FTS5 table with the trigram tokenizer (case-insensitive): a
-- MATCH of a quoted phrase of 3 characters or more finds the rows whose text contains it.
-- Its rowid is `resources.pk`. The triggers below keep it in step with `resources` inside the
-- statement that changes a row, so every write path (SCIM, app users, imports, the review's
-- discard, erasure, copies) updates it in the same transaction without knowing it exists.
-- The search text: userName, displayName, name.givenName/familyName/formatted, every
-- emails[].value, separated by spaces. The table holds no tenant: a search joins it to
-- `resources` on pk and filters the tenant there.
--
-- Expand only: a previous release neither reads nor writes this table (its writes fire the
-- triggers too, the triggers live in the database).
-- roster: expand-only

CREATE VIRTUAL TABLE IF NOT EXISTS resource_search USING fts5(body, tokenize = 'trigram');

CREATE TRIGGER IF NOT EXISTS resource_search_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_search (rowid, body) VALUES (new.pk,
        coalesce(json_extract(new.doc, '$.userName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.displayName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.givenName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.familyName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.formatted'), '') || ' ' ||
        coalesce((SELECT group_concat(json_extract(e.value, '$.value'), ' ')
                  FROM json_each(new.doc, '$.emails') e WHERE e.type = 'object'), ''));
END;

-- Only when a searched field changed: a PATCH of `active` (the most common write after
-- create) leaves the trigram rows alone.
CREATE TRIGGER IF NOT EXISTS resource_search_update AFTER UPDATE OF doc ON resources
WHEN json_extract(old.doc, '$.userName') IS NOT json_extract(new.doc, '$.userName')
  OR json_extract(old.doc, '$.displayName') IS NOT json_extract(new.doc, '$.displayName')
  OR json_extract(old.doc, '$.name') IS NOT json_extract(new.doc, '$.name')
  OR json_extract(old.doc, '$.emails') IS NOT json_extract(new.doc, '$.emails')
BEGIN
    DELETE FROM resource_search WHERE rowid = old.pk;
    INSERT INTO resource_search (rowid, body) VALUES (new.pk,
        coalesce(json_extract(new.doc, '$.userName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.displayName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.givenName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.familyName'), '') || ' ' ||
        coalesce(json_extract(new.doc, '$.name.formatted'), '') || ' ' ||
        coalesce((SELECT group_concat(json_extract(e.value, '$.value'), ' ')
                  FROM json_each(new.doc, '$.emails') e WHERE e.type = 'object'), ''));
END;

CREATE TRIGGER IF NOT EXISTS resource_search_delete AFTER DELETE ON resources BEGIN
    DELETE FROM resource_search WHERE rowid = old.pk;
END;

INSERT INTO resource_search (rowid, body)
SELECT r.pk,
    coalesce(json_extract(r.doc, '$.userName'), '') || ' ' ||
    coalesce(json_extract(r.doc, '$.displayName'), '') || ' ' ||
    coalesce(json_extract(r.doc, '$.name.givenName'), '') || ' ' ||
    coalesce(json_extract(r.doc, '$.name.familyName'), '') || ' ' ||
    coalesce(json_extract(r.doc, '$.name.formatted'), '') || ' ' ||
    coalesce((SELECT group_concat(json_extract(e.value, '$.value'), ' ')
              FROM json_each(r.doc, '$.emails') e WHERE e.type = 'object'), '')
FROM resources r WHERE r.pk NOT IN (SELECT rowid FROM resource_search);

-- Group members in name order, a page at a time: each membership row carries its member's
-- folded userName (`member_name`), set by a trigger as the row is inserted and kept current
-- when the user's userName changes; the index pages a group's members by (name, id) without
-- reading the others ('' for a member without a userName).
ALTER TABLE members ADD COLUMN member_name TEXT NOT NULL DEFAULT '';

CREATE TRIGGER IF NOT EXISTS members_name_insert AFTER INSERT ON members BEGIN
    UPDATE members SET member_name = coalesce((SELECT r.user_name_lc FROM resources r WHERE r.pk = new.member_pk), '')
    WHERE group_pk = new.group_pk AND member_pk = new.member_pk;
END;

CREATE TRIGGER IF NOT EXISTS members_name_rename AFTER UPDATE OF user_name_lc ON resources
WHEN new.user_name_lc IS NOT old.user_name_lc BEGIN
    UPDATE members SET member_name = coalesce(new.user_name_lc, '') WHERE member_pk = new.pk;
END;

UPDATE members SET member_name = coalesce((SELECT r.user_name_lc FROM resources r WHERE r.pk = members.member_pk), '');

CREATE INDEX IF NOT EXISTS members_group_name ON members (group_pk, member_name, member_id);
