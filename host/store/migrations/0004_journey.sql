-- Journey stages per HCP per brand, the rule counters that move them, and
-- the history of moves.

CREATE TABLE journey_stage (
    hcp_num INTEGER NOT NULL,
    brand   TEXT NOT NULL,
    stage   TEXT NOT NULL,
    PRIMARY KEY (hcp_num, brand)
) WITHOUT ROWID;

-- Events counted per rule so far; a rule fires when its count reaches its
-- min_count.
CREATE TABLE journey_counter (
    hcp_num INTEGER NOT NULL,
    brand   TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (hcp_num, brand, rule_id)
) WITHOUT ROWID;

CREATE TABLE journey_transition (
    id         INTEGER PRIMARY KEY,
    hcp_num    INTEGER NOT NULL,
    brand      TEXT NOT NULL,
    from_stage TEXT,
    to_stage   TEXT NOT NULL,
    cause      TEXT NOT NULL,   -- a rule id, or 'manual'
    event_id   TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX journey_transition_hcp ON journey_transition (hcp_num, brand, id);

CREATE TRIGGER journey_transition_no_update BEFORE UPDATE ON journey_transition
BEGIN SELECT RAISE(ABORT, 'journey history is append-only'); END;
CREATE TRIGGER journey_transition_no_delete BEFORE DELETE ON journey_transition
BEGIN SELECT RAISE(ABORT, 'journey history is append-only'); END;
