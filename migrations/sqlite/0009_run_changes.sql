-- ucm schema, version 9: the change list of each landed run, for the console's run pages.
-- A run records its first [merge] run_changes_kept changes (the rest are counted in its
-- report); lists of runs older than [merge] run_changes_ttl_hours are pruned. A plan's
-- changes stay in plan_changes: a plan's apply run shows those.
CREATE TABLE run_changes (
    run_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    row_id INTEGER,
    action TEXT NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    -- As plan_changes.change (src/plan/mod.rs, StoredChange).
    change TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
