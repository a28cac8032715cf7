-- Campaigns, their audience members, and the lease of the process running
-- each.
--
-- A definition never changes once stored (a change is a new campaign); only
-- the state, its time and the lease move. A member row is written once when
-- the audience is resolved and then only moves forward from `pending`.

CREATE TABLE campaign (
    num                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    definition         TEXT NOT NULL,
    definition_sha256  TEXT NOT NULL,
    priority           INTEGER NOT NULL,
    state              TEXT NOT NULL CHECK (state IN
                           ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    resolved_at        INTEGER,
    lease_owner        TEXT,
    lease_until        INTEGER
) STRICT;

CREATE TRIGGER campaign_definition_fixed BEFORE UPDATE ON campaign
WHEN NEW.id IS NOT OLD.id OR NEW.definition IS NOT OLD.definition
  OR NEW.definition_sha256 IS NOT OLD.definition_sha256 OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'a campaign''s definition never changes'); END;
CREATE TRIGGER campaign_no_delete BEFORE DELETE ON campaign
BEGIN SELECT RAISE(ABORT, 'campaigns are never deleted'); END;

CREATE TABLE campaign_member (
    campaign_num  INTEGER NOT NULL REFERENCES campaign(num),
    hcp           TEXT NOT NULL,
    holdout       INTEGER NOT NULL CHECK (holdout IN (0, 1)),
    outcome       TEXT NOT NULL CHECK (outcome IN
                      ('pending', 'holdout', 'dispatched', 'suppressed', 'failed', 'unreached')),
    dispatch      TEXT,
    channel       TEXT,
    version       TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    retry_at      INTEGER,
    reasons       TEXT NOT NULL DEFAULT '[]',
    rationale     TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (campaign_num, hcp)
) STRICT, WITHOUT ROWID;
CREATE INDEX hcp_market ON hcp (market, id);
CREATE INDEX campaign_member_pending ON campaign_member (campaign_num, hcp) WHERE outcome = 'pending';
CREATE INDEX campaign_member_outcome ON campaign_member (campaign_num, outcome, updated_at);

CREATE TRIGGER campaign_member_forward BEFORE UPDATE OF outcome ON campaign_member
WHEN OLD.outcome <> 'pending' AND NEW.outcome <> OLD.outcome
BEGIN SELECT RAISE(ABORT, 'a campaign member''s outcome is final'); END;
CREATE TRIGGER campaign_member_no_delete BEFORE DELETE ON campaign_member
BEGIN SELECT RAISE(ABORT, 'campaign members are never deleted'); END;

-- Rep suggestions: the field channels' "delivery". The id is the dispatch's.
CREATE TABLE suggestion (
    id            TEXT PRIMARY KEY REFERENCES dispatch(id),
    hcp           TEXT NOT NULL,
    rep           TEXT,
    campaign      TEXT,
    version       TEXT NOT NULL,
    channel       TEXT NOT NULL,
    rationale     TEXT NOT NULL,
    notes         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'done', 'dismissed')),
    closed_by     TEXT,
    closed_at     INTEGER,
    close_reason  TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX suggestion_rep ON suggestion (rep, state, due_at);
CREATE INDEX suggestion_hcp ON suggestion (hcp, due_at);

CREATE TRIGGER suggestion_close_once BEFORE UPDATE ON suggestion
WHEN OLD.state <> 'open' OR NEW.id IS NOT OLD.id OR NEW.hcp IS NOT OLD.hcp
  OR NEW.version IS NOT OLD.version OR NEW.rationale IS NOT OLD.rationale
  OR NEW.notes IS NOT OLD.notes OR NEW.due_at IS NOT OLD.due_at
  OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a suggestion is closed once and never edited'); END;
CREATE TRIGGER suggestion_no_delete BEFORE DELETE ON suggestion
BEGIN SELECT RAISE(ABORT, 'suggestions are never deleted'); END;
