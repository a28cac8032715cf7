-- Identity merges: links between HCP records that are the same person.
-- Nothing is moved: reads combine a survivor with the records merged into
-- it, so undoing a merge (setting reverted_at) splits everything back.

CREATE TABLE hcp_merge (
    id           INTEGER PRIMARY KEY,
    survivor_num INTEGER NOT NULL REFERENCES hcp(num),
    merged_num   INTEGER NOT NULL REFERENCES hcp(num),
    reason       TEXT NOT NULL,
    merged_by    TEXT NOT NULL,
    merged_at    INTEGER NOT NULL,
    reverted_by  TEXT,
    reverted_at  INTEGER,
    CHECK (survivor_num <> merged_num)
);
-- A record is merged into at most one survivor at a time.
CREATE UNIQUE INDEX hcp_merge_active ON hcp_merge (merged_num) WHERE reverted_at IS NULL;
CREATE INDEX hcp_merge_survivor ON hcp_merge (survivor_num) WHERE reverted_at IS NULL;

-- Only the revert columns may change, once.
CREATE TRIGGER hcp_merge_revert_only BEFORE UPDATE ON hcp_merge
WHEN OLD.reverted_at IS NOT NULL
  OR NEW.id IS NOT OLD.id OR NEW.survivor_num IS NOT OLD.survivor_num
  OR NEW.merged_num IS NOT OLD.merged_num OR NEW.reason IS NOT OLD.reason
  OR NEW.merged_by IS NOT OLD.merged_by OR NEW.merged_at IS NOT OLD.merged_at
BEGIN SELECT RAISE(ABORT, 'a merge can only be reverted, once'); END;
CREATE TRIGGER hcp_merge_no_delete BEFORE DELETE ON hcp_merge
BEGIN SELECT RAISE(ABORT, 'merges are never deleted'); END;
