-- Events become an append-only log in commit order (`seq`), so that a batch
-- writes a few consecutive pages. The indexes that ingest kept per event
-- (unique id, per HCP) and the feature tables are written by folds instead:
-- many events at once, the indexes as sorted runs (host/store/src/runs.rs).
-- `event_fold` says up to which `seq` they are complete; the events after
-- it are indexed in memory (host/store/src/hot.rs).
--
-- Existing events move to the log with everything they derive: the feature
-- tables are emptied and the mark set to 0, so that the first open folds
-- the whole log and rebuilds them (the same rules, so the same values).

CREATE TABLE event_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    hcp_num     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    attributes  TEXT NOT NULL,
    batch_id    TEXT NOT NULL
);
-- In the old table's key order (no sort of the whole table needed); the
-- order of `seq` among existing events carries no meaning.
INSERT INTO event_log (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id)
SELECT id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id
FROM event ORDER BY id;

-- Drops the old index and triggers with it.
DROP TABLE event;
ALTER TABLE event_log RENAME TO event;

CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Folded runs: their event counts, their ids in chunks of sorted
-- (id, seq) pairs keyed by the chunk's greatest id, their timelines as one
-- row of `seq`s per HCP. Merging runs rewrites these rows; the events they
-- index never change.
CREATE TABLE event_run (
    run    INTEGER PRIMARY KEY,
    events INTEGER NOT NULL
);
CREATE TABLE event_id_run (
    run     INTEGER NOT NULL,
    last_id TEXT NOT NULL,
    chunk   BLOB NOT NULL,
    PRIMARY KEY (run, last_id)
) WITHOUT ROWID;
CREATE TABLE event_hcp_run (
    run     INTEGER NOT NULL,
    hcp_num INTEGER NOT NULL,
    seqs    BLOB NOT NULL,
    PRIMARY KEY (run, hcp_num)
) WITHOUT ROWID;

-- Rebuilt from the log by the first fold.
DELETE FROM feature_channel;
DELETE FROM content_seen;

-- One row.
CREATE TABLE event_fold (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    folded_seq INTEGER NOT NULL
);
INSERT INTO event_fold (one, folded_seq) VALUES (1, 0);
CREATE TRIGGER event_fold_forward BEFORE UPDATE ON event_fold
WHEN NEW.folded_seq < OLD.folded_seq OR NEW.one IS NOT OLD.one
BEGIN SELECT RAISE(ABORT, 'the fold mark only moves forward'); END;
CREATE TRIGGER event_fold_no_delete BEFORE DELETE ON event_fold
BEGIN SELECT RAISE(ABORT, 'the fold mark is never deleted'); END;
