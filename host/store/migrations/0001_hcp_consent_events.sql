-- HCP profiles, the consent ledger, engagement events and the features
-- derived from them.

CREATE TABLE hcp (
    -- Internal key of the event and feature tables: integer keys keep their
    -- rows and index pages small and their comparisons cheap. Never shown.
    num         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    market      TEXT NOT NULL,
    -- Every non-contact field, as canonical JSON (HcpProfile without contact).
    doc         TEXT NOT NULL,
    -- Contact details live in their own columns so that they can be erased
    -- or encrypted without touching the rest; never copied into audit_log.
    email       TEXT,
    phone       TEXT,
    wechat_id   TEXT,
    updated_at  INTEGER NOT NULL
);

-- Append-only: no code path updates or deletes a consent record.
CREATE TABLE consent (
    id          INTEGER PRIMARY KEY,
    hcp_id      TEXT NOT NULL REFERENCES hcp(id),
    channel     TEXT NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('promotional', 'medical', 'service')),
    market      TEXT NOT NULL,
    -- '' means every product, so that the scope index can use equality.
    product     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('opt-in', 'opt-out', 'double-opt-in-pending')),
    source      TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL
);
-- The current state at a scope is the last row of this index.
CREATE INDEX consent_scope ON consent (hcp_id, channel, purpose, market, product, recorded_at, id);

CREATE TRIGGER consent_no_update BEFORE UPDATE ON consent
BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent
BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;

-- Append-only; the id is the source's idempotency key. No foreign key on
-- hcp_num: ingest checks each HCP once per batch in the same transaction,
-- which saves a lookup per event.
CREATE TABLE event (
    id          TEXT PRIMARY KEY NOT NULL,
    hcp_num     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    attributes  TEXT NOT NULL,
    batch_id    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX event_hcp ON event (hcp_num, occurred_at);

CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Derived features, kept current on ingest so that reading them is two
-- index lookups. `ring` holds touches per UTC day for the 32 days ending at
-- `ring_day` (see src/window.rs): 7- and 30-day counts are exact at read
-- time without a row per day.
CREATE TABLE feature_channel (
    hcp_num       INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    last_touch_at INTEGER,
    sends         INTEGER NOT NULL DEFAULT 0,
    opens         INTEGER NOT NULL DEFAULT 0,
    clicks        INTEGER NOT NULL DEFAULT 0,
    attended      INTEGER NOT NULL DEFAULT 0,
    ring_day      INTEGER,
    ring          BLOB NOT NULL,
    PRIMARY KEY (hcp_num, channel)
) WITHOUT ROWID;

CREATE TABLE content_seen (
    hcp_num         INTEGER NOT NULL,
    content_version TEXT NOT NULL,
    first_seen_at   INTEGER NOT NULL,
    PRIMARY KEY (hcp_num, content_version)
) WITHOUT ROWID;
