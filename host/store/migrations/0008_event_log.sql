-- Events become an append-only log in commit order (`seq`), so that a batch
-- writes a few consecutive pages. The indexes that ingest used to keep per
-- event (unique id, per HCP) become tables written in bulk by a fold, with
-- the feature tables; `event_fold` says up to which `seq` they are complete.
-- Events after it are indexed in memory (see host/store/src/hot.rs).

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
-- Existing events in id order (the old table's key: no sort needed).
INSERT INTO event_log (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id)
SELECT id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id
FROM event ORDER BY id;

-- The idempotency key: an id is stored once.
CREATE TABLE event_id (
    id  TEXT PRIMARY KEY NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO event_id (id, seq) SELECT id, seq FROM event_log ORDER BY seq;

-- Drops the old index (whose name the timeline takes) and triggers with it.
DROP TABLE event;

-- An HCP's timeline.
CREATE TABLE event_hcp (
    hcp_num INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (hcp_num, seq)
) WITHOUT ROWID;
INSERT INTO event_hcp (hcp_num, seq) SELECT hcp_num, seq FROM event_log ORDER BY hcp_num, seq;

ALTER TABLE event_log RENAME TO event;

CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_id_no_update BEFORE UPDATE ON event_id
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_id_no_delete BEFORE DELETE ON event_id
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_hcp_no_update BEFORE UPDATE ON event_hcp
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_hcp_no_delete BEFORE DELETE ON event_hcp
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- One row. The existing features were computed from every existing event.
CREATE TABLE event_fold (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    folded_seq INTEGER NOT NULL
);
INSERT INTO event_fold (one, folded_seq) SELECT 1, coalesce(max(seq), 0) FROM event;
CREATE TRIGGER event_fold_forward BEFORE UPDATE ON event_fold
WHEN NEW.folded_seq < OLD.folded_seq OR NEW.one IS NOT OLD.one
BEGIN SELECT RAISE(ABORT, 'the fold mark only moves forward'); END;
CREATE TRIGGER event_fold_no_delete BEFORE DELETE ON event_fold
BEGIN SELECT RAISE(ABORT, 'the fold mark is never deleted'); END;
