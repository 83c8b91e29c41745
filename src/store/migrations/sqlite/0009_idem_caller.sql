-- Idempotency keys belong to the caller who sent them (the user and the API key), not to the
-- whole organization: two callers choosing the same key must not see each other's answers.
-- SQLite cannot change a primary key in place, so the table is rebuilt. Rows written before
-- this had no caller; they keep an empty one that no request matches, and expire within a day.
CREATE TABLE idempotency_keys_new (
    org_id        TEXT NOT NULL,
    caller        TEXT NOT NULL,                -- "<user id>/<api key id>", either part may be empty
    idem_key      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status_code   INTEGER NOT NULL DEFAULT 0,   -- 0 while the first request is still running
    response      TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (org_id, caller, idem_key)
) WITHOUT ROWID;
INSERT INTO idempotency_keys_new (org_id, caller, idem_key, user_id, request_hash, status_code, response, created_at)
    SELECT org_id, '', idem_key, user_id, request_hash, status_code, response, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
