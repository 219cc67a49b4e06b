-- Issue 14: the delivery attempts of each webhook endpoint (see the SQLite migration 0020 for
-- the meaning of each column). The newest 100 per endpoint are kept. Keyed by tenant first,
-- as every per-tenant table.
--
-- Expand only: the previous release neither reads nor writes this table.
-- roster: expand-only

CREATE TABLE IF NOT EXISTS webhook_attempts (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    webhook_id   TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    at           BIGINT NOT NULL,
    first_seq    BIGINT NOT NULL,
    last_seq     BIGINT NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL,
    status       BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (tenant_id, webhook_id, id)
);

CREATE INDEX IF NOT EXISTS webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
