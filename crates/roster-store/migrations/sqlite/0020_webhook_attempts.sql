-- Issue 14: the delivery attempts of each webhook endpoint, for the console's webhooks page and
-- `GET /api/v1/webhooks/{id}/attempts`: when, which events (seq range and the first event's
-- id), the receiver's status (NULL: no answer, a transport error), the error in words (NULL:
-- delivered) and how long it took. The newest 100 per endpoint are kept; older ones are
-- deleted as new ones are recorded. Goes with its endpoint.
--
-- Expand only: the previous release neither reads nor writes this table.
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    webhook_id   TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    first_seq    INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    event_id     TEXT    NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL CHECK (duration_ms >= 0)
) STRICT;

CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
