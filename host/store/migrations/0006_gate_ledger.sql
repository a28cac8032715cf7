-- Gate decisions and the dispatch ledger.
--
-- Every gate decision is stored here (for listing and filtering) and as an
-- audit entry (for tamper evidence), in the same transaction. A decision
-- never changes. An allowed dispatch is entered in the ledger before any
-- adapter is called; only its state, detail and updated_at change, along
-- queued -> sending -> sent | failed, and queued -> cancelled.

CREATE TABLE decision (
    num            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    at             INTEGER NOT NULL,
    dispatch       TEXT NOT NULL,
    campaign       TEXT,
    hcp_num        INTEGER NOT NULL REFERENCES hcp(num),
    verdict        TEXT NOT NULL CHECK (verdict IN ('allow', 'block')),
    record         TEXT NOT NULL
) STRICT;
CREATE INDEX decision_hcp ON decision (hcp_num, num);
CREATE INDEX decision_campaign ON decision (campaign, num) WHERE campaign IS NOT NULL;
CREATE INDEX decision_verdict ON decision (verdict, num);

-- The rules that blocked or warned in a decision, for filtering by rule.
CREATE TABLE decision_rule (
    rule          TEXT NOT NULL,
    decision_num  INTEGER NOT NULL REFERENCES decision(num),
    PRIMARY KEY (rule, decision_num)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER decision_no_update BEFORE UPDATE ON decision
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decision_no_delete BEFORE DELETE ON decision
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decision_rule_no_update BEFORE UPDATE ON decision_rule
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decision_rule_no_delete BEFORE DELETE ON decision_rule
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

CREATE TABLE dispatch (
    num              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    idempotency_key  TEXT NOT NULL UNIQUE,
    campaign         TEXT,
    hcp_num          INTEGER NOT NULL REFERENCES hcp(num),
    channel          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    market           TEXT NOT NULL,
    product          TEXT,
    version          TEXT NOT NULL,
    decision         TEXT NOT NULL REFERENCES decision(id),
    planned_at       INTEGER NOT NULL,
    text_sha256      TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    detail           TEXT,
    updated_at       INTEGER NOT NULL
) STRICT;
-- Caps read an HCP's recent contacts.
CREATE INDEX dispatch_hcp ON dispatch (hcp_num, planned_at);
-- Withdrawal, expiry and opt-out cancel what is still queued.
CREATE INDEX dispatch_queued_version ON dispatch (version) WHERE state = 'queued';
CREATE INDEX dispatch_campaign ON dispatch (campaign, state) WHERE campaign IS NOT NULL;

CREATE TRIGGER dispatch_state_only BEFORE UPDATE ON dispatch
WHEN NEW.num IS NOT OLD.num OR NEW.id IS NOT OLD.id
  OR NEW.idempotency_key IS NOT OLD.idempotency_key OR NEW.campaign IS NOT OLD.campaign
  OR NEW.hcp_num IS NOT OLD.hcp_num OR NEW.channel IS NOT OLD.channel
  OR NEW.purpose IS NOT OLD.purpose OR NEW.market IS NOT OLD.market
  OR NEW.product IS NOT OLD.product OR NEW.version IS NOT OLD.version
  OR NEW.decision IS NOT OLD.decision OR NEW.planned_at IS NOT OLD.planned_at
  OR NEW.text_sha256 IS NOT OLD.text_sha256
BEGIN SELECT RAISE(ABORT, 'only a dispatch''s state may change'); END;
CREATE TRIGGER dispatch_state_forward BEFORE UPDATE OF state ON dispatch
WHEN NOT (
     (OLD.state = 'queued' AND NEW.state IN ('sending', 'cancelled', 'failed'))
  OR (OLD.state = 'sending' AND NEW.state IN ('sent', 'failed', 'queued'))
  OR (OLD.state = NEW.state)
)
BEGIN SELECT RAISE(ABORT, 'dispatch state cannot go back'); END;
CREATE TRIGGER dispatch_no_delete BEFORE DELETE ON dispatch
BEGIN SELECT RAISE(ABORT, 'dispatches are never deleted'); END;
