-- Large uploads are written in batches to a staging area before they become visible: `stages`
-- holds one row per document being stored, `staged_chunks` its chunks so far. Nothing else reads
-- them; committing a stage moves its chunks into `chunks`, their vectors into `chunk_vectors`
-- and their entries into the change log in one transaction. A stage whose lease ran out (its
-- writer crashed) is deleted by any instance.
CREATE TABLE stages (
    id          BIGSERIAL PRIMARY KEY,
    collection  TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

CREATE TABLE staged_chunks (
    stage_id  BIGINT NOT NULL REFERENCES stages (id) ON DELETE CASCADE,
    ordinal   INTEGER NOT NULL,
    text      TEXT NOT NULL,
    locator   TEXT NOT NULL,
    tokens    INTEGER NOT NULL,
    -- Any dimension: checked against chunk_vectors when the stage is committed.
    embedding vector,
    PRIMARY KEY (stage_id, ordinal)
);
