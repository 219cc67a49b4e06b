-- Each group's number of members, kept by triggers in the transaction of every membership
-- change, so that showing a group's size (the admin API, the console) reads one row instead of
-- counting 100,000 membership rows. A row per group, created with the group.

CREATE TABLE member_counts (
    group_pk  INTEGER PRIMARY KEY REFERENCES resources(pk) ON DELETE CASCADE,
    n         INTEGER NOT NULL CHECK (n >= 0)
) STRICT;

INSERT INTO member_counts (group_pk, n)
    SELECT r.pk, (SELECT COUNT(*) FROM members m WHERE m.group_pk = r.pk)
    FROM resources r WHERE r.kind = 'Group';

CREATE TRIGGER member_counts_new_group AFTER INSERT ON resources WHEN NEW.kind = 'Group'
BEGIN
    INSERT INTO member_counts (group_pk, n) VALUES (NEW.pk, 0);
END;

-- Memberships are only ever inserted (INSERT OR IGNORE: an ignored row fires nothing) and
-- deleted, never updated or replaced.
CREATE TRIGGER member_counts_add AFTER INSERT ON members
BEGIN
    UPDATE member_counts SET n = n + 1 WHERE group_pk = NEW.group_pk;
END;

CREATE TRIGGER member_counts_remove AFTER DELETE ON members
BEGIN
    UPDATE member_counts SET n = n - 1 WHERE group_pk = OLD.group_pk;
END;
