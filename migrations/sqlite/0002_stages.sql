-- Large uploads are written in batches to a staging area before they become visible: `stages`
-- holds one row per document being stored, `staged_chunks` its chunks so far. Nothing else reads
-- them; committing a stage moves its chunks into `chunks` (and the change log) in one
-- transaction. A stage whose lease ran out (its writer crashed) is deleted.
CREATE TABLE stages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    collection  TEXT NOT NULL,
    -- Unix seconds after which the stage may be deleted.
    lease_until INTEGER NOT NULL
);

CREATE TABLE staged_chunks (
    stage_id  INTEGER NOT NULL REFERENCES stages (id) ON DELETE CASCADE,
    ordinal   INTEGER NOT NULL,
    text      TEXT NOT NULL,
    locator   TEXT NOT NULL,
    tokens    INTEGER NOT NULL,
    embedding BLOB,
    PRIMARY KEY (stage_id, ordinal)
);
