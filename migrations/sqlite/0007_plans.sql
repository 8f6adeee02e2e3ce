-- ucm schema, version 7: plans. A dry run, or a run a guard refused, stores what it would
-- change as a plan; `ucm apply` lands exactly those changes if nothing they were computed
-- against has moved (src/plan.rs).

CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- RFC 3339, UTC: created_at + [merge] plan_ttl_hours. Expired plans are pruned.
    expires_at TEXT NOT NULL,
    -- 'awaiting_approval' when a guard refused the run that made it.
    status TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_approval', 'applied', 'discarded')),
    -- Why the guard refused the run (awaiting approval only).
    reason TEXT,
    -- The run that computed the plan, and the run that applied it.
    run_id INTEGER,
    applied_run_id INTEGER,
    source TEXT,
    source_sha256 TEXT,
    -- The directory CSV the run reloaded the directory from, if any (apply reloads it).
    directory_csv TEXT,
    -- The base fingerprint: what the plan was computed against.
    base_table TEXT NOT NULL,
    base_directory TEXT NOT NULL,
    base_policy TEXT NOT NULL,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    -- The computing run's report as JSON (counts, rejections), without the change list.
    report TEXT NOT NULL
);
CREATE INDEX plans_by_pipeline ON plans (pipeline, id);

-- A plan's changes in order: the row updated or deleted, and the change as JSON (action,
-- origin, identity, and each field's old and new value with the side it came from).
CREATE TABLE plan_changes (
    plan_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    row_id INTEGER,
    action TEXT NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    change TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
