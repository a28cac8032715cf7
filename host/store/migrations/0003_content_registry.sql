-- The MLR content registry.

CREATE TABLE content_item (
    id         TEXT PRIMARY KEY NOT NULL,
    author     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- The version that may be reviewed; older versions stay as they were.
    current    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE content_version (
    hash       TEXT PRIMARY KEY NOT NULL,
    item_id    TEXT NOT NULL REFERENCES content_item(id),
    author     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Canonical JSON of the body; sha256(body) = hash.
    body       TEXT NOT NULL,
    expires_at INTEGER,
    state      TEXT NOT NULL CHECK (state IN
        ('draft', 'in-review', 'approved', 'changes-requested', 'expired', 'withdrawn'))
) WITHOUT ROWID;
CREATE INDEX content_version_expiry ON content_version (state, expires_at);

-- A version's content never changes, only its state.
CREATE TRIGGER content_version_immutable BEFORE UPDATE OF hash, item_id, author, created_at, body, expires_at
ON content_version
BEGIN SELECT RAISE(ABORT, 'content versions are immutable'); END;
CREATE TRIGGER content_version_no_delete BEFORE DELETE ON content_version
BEGIN SELECT RAISE(ABORT, 'content versions are never deleted'); END;

CREATE TABLE sign_off (
    version   TEXT NOT NULL REFERENCES content_version(hash),
    role      TEXT NOT NULL CHECK (role IN ('medical', 'legal', 'regulatory')),
    reviewer  TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    PRIMARY KEY (version, role),
    UNIQUE (version, reviewer)
) WITHOUT ROWID;
