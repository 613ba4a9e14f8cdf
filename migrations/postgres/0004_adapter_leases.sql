-- Several instances on one database: each chat adapter connection is held by one instance at a
-- time. The lease itself is a session-level advisory lock on a connection of its own; this
-- table says who holds it (for the status page) and since when (so that the next holder knows
-- from when unfinished events are its business).
CREATE TABLE adapter_leases (
    adapter_key TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    holder TEXT NOT NULL,
    lease TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL
);

-- Chat events (by their platform id) that a holder took charge of: claimed, then done. A claim
-- left by a holder that died is taken over by the next one, with the note it left (where its
-- reply is).
CREATE TABLE adapter_events (
    adapter_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    lease TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    note TEXT NOT NULL DEFAULT '',
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at TIMESTAMPTZ,
    PRIMARY KEY (adapter_key, event_id)
);
CREATE INDEX adapter_events_done ON adapter_events (adapter_key, done_at) WHERE state = 'done';

-- Small state an adapter keeps for its connection (the email adapter's progress in its mailbox).
CREATE TABLE adapter_state (
    adapter_key TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (adapter_key, key)
);
