-- SQLite evaluates `x IN ('a', 'b', 'c')` (a list of more than two constants)
-- by building a temporary table each time the statement runs; in a CHECK
-- constraint or a trigger that is at every insert and update of the row
-- (about 3 us each, seven per dispatch sent). These are the same constraints
-- written as chains of equalities, which cost nothing of the kind.
--
-- A CHECK constraint is rewritten in the stored schema text: SQLite's
-- documented procedure for schema changes that leave the stored rows as
-- they are (ALTER TABLE, "making other kinds of table schema changes").
-- The host bumps `schema_version` after this migration, so that every
-- connection reads the new schema, and checks that no such list is left.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (purpose IN (''promotional'', ''medical'', ''service''))',
    'CHECK (purpose = ''promotional'' OR purpose = ''medical'' OR purpose = ''service'')')
WHERE type = 'table' AND name = 'consent';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''opt-in'', ''opt-out'', ''double-opt-in-pending''))',
    'CHECK (status = ''opt-in'' OR status = ''opt-out'' OR status = ''double-opt-in-pending'')')
WHERE type = 'table' AND name = 'consent';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN
        (''draft'', ''in-review'', ''approved'', ''changes-requested'', ''expired'', ''withdrawn''))',
    'CHECK (state = ''draft'' OR state = ''in-review'' OR state = ''approved'' OR state = ''changes-requested'' OR state = ''expired'' OR state = ''withdrawn'')')
WHERE type = 'table' AND name = 'content_version';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (role IN (''medical'', ''legal'', ''regulatory''))',
    'CHECK (role = ''medical'' OR role = ''legal'' OR role = ''regulatory'')')
WHERE type = 'table' AND name = 'sign_off';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''queued'', ''sending'', ''sent'', ''failed'', ''cancelled''))',
    'CHECK (state = ''queued'' OR state = ''sending'' OR state = ''sent'' OR state = ''failed'' OR state = ''cancelled'')')
WHERE type = 'table' AND name = 'dispatch';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN
                           (''draft'', ''scheduled'', ''running'', ''paused'', ''completed'', ''cancelled''))',
    'CHECK (state = ''draft'' OR state = ''scheduled'' OR state = ''running'' OR state = ''paused'' OR state = ''completed'' OR state = ''cancelled'')')
WHERE type = 'table' AND name = 'campaign';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (outcome IN
                      (''pending'', ''holdout'', ''dispatched'', ''suppressed'', ''failed'', ''unreached''))',
    'CHECK (outcome = ''pending'' OR outcome = ''holdout'' OR outcome = ''dispatched'' OR outcome = ''suppressed'' OR outcome = ''failed'' OR outcome = ''unreached'')')
WHERE type = 'table' AND name = 'campaign_member';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''open'', ''done'', ''dismissed''))',
    'CHECK (state = ''open'' OR state = ''done'' OR state = ''dismissed'')')
WHERE type = 'table' AND name = 'suggestion';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''active'', ''paused'', ''retired''))',
    'CHECK (state = ''active'' OR state = ''paused'' OR state = ''retired'')')
WHERE type = 'table' AND name = 'journey_rule';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN
                           (''pending'', ''dispatched'', ''suppressed'', ''failed'', ''cancelled'', ''done''))',
    'CHECK (state = ''pending'' OR state = ''dispatched'' OR state = ''suppressed'' OR state = ''failed'' OR state = ''cancelled'' OR state = ''done'')')
WHERE type = 'table' AND name = 'journey_action';

PRAGMA writable_schema = OFF;

DROP TRIGGER dispatch_state_forward;
CREATE TRIGGER dispatch_state_forward BEFORE UPDATE OF state ON dispatch
WHEN NOT (
     (OLD.state = 'queued'
      AND (NEW.state = 'sending' OR NEW.state = 'cancelled' OR NEW.state = 'failed'))
  OR (OLD.state = 'sending'
      AND (NEW.state = 'sent' OR NEW.state = 'failed' OR NEW.state = 'queued'))
  OR (OLD.state = NEW.state)
)
BEGIN SELECT RAISE(ABORT, 'dispatch state cannot go back'); END;
