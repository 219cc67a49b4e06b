-- Issue 15: server-wide values that every process on the database must agree on, one row per
-- key (see `roster_store::meta`). `roster serve` records its public URL here and the `roster`
-- CLI reads it, so that the base URLs and setup links the CLI prints are the ones the server
-- answers on. A NULL value means "recorded as absent".

CREATE TABLE meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT
) STRICT;
