-- The pre-screen of a content version, recorded with its submission for
-- review (one per version: a version is submitted once).

CREATE TABLE content_prescreen (
    version        TEXT PRIMARY KEY NOT NULL REFERENCES content_version(hash),
    policy_version TEXT NOT NULL,
    submitted_by   TEXT NOT NULL,
    submitted_at   INTEGER NOT NULL,
    -- Canonical JSON of the report; its sha256 is in the submission's audit
    -- entry.
    report         TEXT NOT NULL,
    sha256         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER content_prescreen_no_update BEFORE UPDATE ON content_prescreen
BEGIN SELECT RAISE(ABORT, 'pre-screens are immutable'); END;
CREATE TRIGGER content_prescreen_no_delete BEFORE DELETE ON content_prescreen
BEGIN SELECT RAISE(ABORT, 'pre-screens are never deleted'); END;

-- Listing an item's versions.
CREATE INDEX content_version_item ON content_version (item_id, created_at);
