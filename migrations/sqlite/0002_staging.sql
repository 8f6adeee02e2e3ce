-- ucm schema, version 2: the staged source of each pipeline (last known good) and the run
-- statuses of the fetch stage and the scheduler.

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
    size INTEGER NOT NULL,
    contacts INTEGER NOT NULL
);

-- SQLite cannot change a CHECK constraint in place: rebuild runs with the wider status list.
CREATE TABLE runs_v2 (
    id INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'refused', 'dry_run', 'unchanged', 'skipped')),
    source TEXT,
    source_sha256 TEXT,
    contacts_read INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    report TEXT NOT NULL
);
INSERT INTO runs_v2 SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
