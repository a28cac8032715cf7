-- The tables that folds derive from the event log (features, the folded
-- per-event indexes and their mark) move to a file of their own,
-- `omnigate-folds.db` beside this one, so that a fold thread writes them
-- while ingest appends to the log: SQLite locks each file separately
-- (docs/store.md, "How events are stored"). That file is a cache of the
-- log: the first open after this migration rebuilds it by folding the whole
-- log, with the same rules, hence the same values.

DROP TABLE event_fold;
DROP TABLE event_run;
DROP TABLE event_id_run;
DROP TABLE event_hcp_run;
DROP TABLE feature_channel;
DROP TABLE content_seen;

-- The log itself gets smaller rows, so that ingest binds, writes and fsyncs
-- less per event: the event type and channel as small codes (their names in
-- `event_type_code` and `channel_code`, which the store completes at open
-- with every name it knows), and the batch's id and reception time once per
-- batch (`event_batch`) instead of once per event.

CREATE TABLE event_type_code (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE channel_code (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO event_type_code (name) SELECT DISTINCT type FROM event ORDER BY type;
INSERT INTO channel_code (name) SELECT DISTINCT channel FROM event ORDER BY channel;

CREATE TABLE event_batch (
    num         INTEGER PRIMARY KEY,
    batch_id    TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TRIGGER event_batch_no_update BEFORE UPDATE ON event_batch
BEGIN SELECT RAISE(ABORT, 'event batches are append-only'); END;
CREATE TRIGGER event_batch_no_delete BEFORE DELETE ON event_batch
BEGIN SELECT RAISE(ABORT, 'event batches are append-only'); END;
CREATE INDEX event_batch_upgrade ON event_batch (batch_id, received_at);
INSERT INTO event_batch (batch_id, received_at)
SELECT batch_id, received_at FROM event GROUP BY batch_id, received_at ORDER BY min(seq);

CREATE TABLE event_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    hcp_num     INTEGER NOT NULL,
    type        INTEGER NOT NULL,
    channel     INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    attributes  TEXT NOT NULL,
    batch       INTEGER NOT NULL
);
INSERT INTO event_log (seq, id, hcp_num, type, channel, occurred_at, attributes, batch)
SELECT e.seq, e.id, e.hcp_num, t.code, c.code, e.occurred_at, e.attributes, b.num
FROM event e
JOIN event_type_code t ON t.name = e.type
JOIN channel_code c ON c.name = e.channel
JOIN event_batch b ON b.batch_id = e.batch_id AND b.received_at = e.received_at
ORDER BY e.seq;
DROP INDEX event_batch_upgrade;

-- Drops the old triggers with it.
DROP TABLE event;
ALTER TABLE event_log RENAME TO event;
CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- The log with names, for reading it by hand.
CREATE VIEW event_named AS
SELECT e.seq, e.id, e.hcp_num, t.name AS type, c.name AS channel, e.occurred_at,
       b.received_at, e.attributes, b.batch_id
FROM event e
JOIN event_type_code t ON t.code = e.type
JOIN channel_code c ON c.code = e.channel
JOIN event_batch b ON b.num = e.batch;
