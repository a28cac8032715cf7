-- Event-triggered journeys and the actions they schedule.
--
-- A definition never changes once stored (a change is a new journey); only
-- its state moves. An action row is written when an event fires the journey
-- (before anything is done with it: a delayed action survives a restart)
-- and then only moves forward from `pending`.

CREATE TABLE journey_rule (
    num                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    definition         TEXT NOT NULL,
    definition_sha256  TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('active', 'paused', 'retired')),
    -- Only events after this position of the event log fire it.
    from_seq           INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE TRIGGER journey_rule_definition_fixed BEFORE UPDATE ON journey_rule
WHEN NEW.id IS NOT OLD.id OR NEW.definition IS NOT OLD.definition
  OR NEW.definition_sha256 IS NOT OLD.definition_sha256 OR NEW.created_at IS NOT OLD.created_at
  OR NEW.from_seq IS NOT OLD.from_seq
BEGIN SELECT RAISE(ABORT, 'a journey''s definition never changes'); END;
CREATE TRIGGER journey_rule_no_delete BEFORE DELETE ON journey_rule
BEGIN SELECT RAISE(ABORT, 'journeys are never deleted'); END;
CREATE TRIGGER journey_rule_retired_final BEFORE UPDATE OF state ON journey_rule
WHEN OLD.state = 'retired' AND NEW.state <> 'retired'
BEGIN SELECT RAISE(ABORT, 'a retired journey stays retired'); END;

CREATE TABLE journey_action (
    num                INTEGER PRIMARY KEY,
    journey_num        INTEGER NOT NULL REFERENCES journey_rule(num),
    hcp                TEXT NOT NULL,
    event              TEXT NOT NULL,
    event_seq          INTEGER NOT NULL,
    event_received_at  INTEGER NOT NULL,
    fired_at           INTEGER NOT NULL,
    due_at             INTEGER NOT NULL,
    -- JSON array of the channels it may go out on.
    channels           TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN
                           ('pending', 'dispatched', 'suppressed', 'failed', 'cancelled', 'done')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    dispatch           TEXT,
    channel            TEXT,
    reasons            TEXT NOT NULL DEFAULT '[]',
    updated_at         INTEGER NOT NULL,
    UNIQUE (journey_num, hcp, event)
) STRICT;
CREATE INDEX journey_action_due ON journey_action (due_at) WHERE state = 'pending';
CREATE INDEX journey_action_hcp ON journey_action (hcp, state);
CREATE INDEX journey_action_last ON journey_action (journey_num, hcp, fired_at);
CREATE INDEX journey_action_state ON journey_action (journey_num, state, num);

CREATE TRIGGER journey_action_forward BEFORE UPDATE OF state ON journey_action
WHEN OLD.state <> 'pending' AND NEW.state <> OLD.state
BEGIN SELECT RAISE(ABORT, 'a journey action''s outcome is final'); END;
CREATE TRIGGER journey_action_no_delete BEFORE DELETE ON journey_action
BEGIN SELECT RAISE(ABORT, 'journey actions are never deleted'); END;

-- How far journeys have read the event log (one row).
CREATE TABLE journey_cursor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
) STRICT;
INSERT INTO journey_cursor (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM event;
