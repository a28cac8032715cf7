-- A version's row holds its whole body (several KB, on overflow pages), and
-- `state` is stored after it: reading the state from the row walks the
-- body's overflow chain. The gate reads a version's state, and its item's
-- latest approved version, for every dispatch; these covering indexes
-- answer both without touching the body. Queries name them with INDEXED BY
-- (the planner prefers the primary key otherwise).
CREATE INDEX content_version_state ON content_version (hash, state);
CREATE INDEX content_version_item_state ON content_version (item_id, created_at, hash, state);
