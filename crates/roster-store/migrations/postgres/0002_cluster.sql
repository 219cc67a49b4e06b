-- Issue 11: several `roster serve` processes on one database.
--
-- A webhook stream is delivered by one process at a time: the process that holds its lease
-- (`lease_owner`, a node id chosen at start, until `lease_until`, ms since the epoch). A node
-- renews its leases while it works and clears them on shutdown; a node that dies loses them
-- when they run out, and another node takes the stream over from its cursor.
--
-- Periodic jobs (log pruning, token-expiry warnings) run once per period across all
-- processes: a process runs a job only if it moves the job's `last_run_at` forward by at least
-- the period in one conditional write.
--
-- Expand only: old binaries ignore the new columns and table.
-- roster: expand-only

ALTER TABLE webhook_streams ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE webhook_streams ADD COLUMN lease_until BIGINT;

CREATE TABLE jobs (
    name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    last_run_at  BIGINT NOT NULL,
    node         TEXT    NOT NULL
);
