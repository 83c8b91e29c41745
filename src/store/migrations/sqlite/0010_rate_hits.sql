-- 0009: the admissions of the durable rate limits (auth/ratelimit_store.c),
-- so a window survives a restart or a crash. One row per limiter (scope,
-- e.g. 'day'), key (bucket, e.g. 'user:<id>') and millisecond: n admissions
-- at at_ms. Rows a window old are deleted by the limiter's writer.
CREATE TABLE rate_hits (
    scope  TEXT NOT NULL,
    bucket TEXT NOT NULL,
    at_ms  INTEGER NOT NULL,
    n      INTEGER NOT NULL CHECK (n >= 1),
    PRIMARY KEY (scope, bucket, at_ms)
) WITHOUT ROWID;
CREATE INDEX rate_hits_by_time ON rate_hits (scope, at_ms);
