-- ucm schema, version 2 (PostgreSQL): the staged source of each pipeline (last known good) and
-- the run statuses of the fetch stage and the scheduler.

CREATE TABLE staged_sources (
    pipeline TEXT PRIMARY KEY NOT NULL,
    -- The source URL with any password masked.
    url TEXT NOT NULL,
    -- The staged copy in the data directory.
    path TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    size BIGINT NOT NULL,
    contacts BIGINT NOT NULL
);

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('succeeded', 'failed', 'refused', 'dry_run', 'unchanged', 'skipped'));
