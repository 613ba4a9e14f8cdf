-- The attempt token of the upload that stored a document: when a connection drops during a
-- COMMIT that went through, the retried attempt finds its own token and reports the upload as
-- stored instead of as a duplicate of itself.
ALTER TABLE documents ADD COLUMN insert_token TEXT;

-- Claims on pending embeddings, so that several instances back-filling at once embed different
-- chunks: the instance that claimed a chunk, and until when the claim keeps the others away.
ALTER TABLE chunks ADD COLUMN claimed_by TEXT;
ALTER TABLE chunks ADD COLUMN claimed_until TIMESTAMPTZ;
