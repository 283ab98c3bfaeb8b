-- Safe retries (issue 12): the stored answers of requests sent with an Idempotency-Key, and the
-- client's own id of a chat message, so that a retried send stores nothing twice.
-- Applied in one transaction by the migration runner (no BEGIN/COMMIT here).

-- ---------------------------------------------------------------- Idempotency-Key
-- A row is written by the request that did the work, in the transaction of that work (the
-- payment, the booking, the message ...), just before it commits: the row exists exactly when
-- the effect does. A request still running has no row. It holds a transaction-scoped advisory
-- lock on hashtextextended(key, user_id) instead (taken by claim_idempotency_key below), which
-- PostgreSQL releases at commit, at rollback and when the backend's client dies: a crash can
-- never leave a key stuck "in progress", and there is no lease to tune.
CREATE TABLE idempotency_keys (
    user_id       bigint      NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status        smallint    NOT NULL,
    body          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    -- The header's rule: 1..255 printable ASCII characters.
    CONSTRAINT idempotency_keys_key_check CHECK (key ~ '^[\x20-\x7e]{1,255}$'),
    CONSTRAINT idempotency_keys_request_hash_check CHECK (octet_length(request_hash) = 32),
    -- Only what committed is stored: a refusal (4xx) rolled its work back, and 5xx and 429 are
    -- never stored, so a retry of those runs anew.
    CONSTRAINT idempotency_keys_status_check CHECK (status BETWEEN 200 AND 299)
);
COMMENT ON TABLE idempotency_keys IS
    'The answer of each request sent with an Idempotency-Key, per user, written in the same '
    'transaction as the request''s effect; a retry with the same key and request gets it again. '
    'Kept idempotency.retention_hours, then pruned by the periodic sweep.';
COMMENT ON COLUMN idempotency_keys.key IS
    'The client''s Idempotency-Key header. Keys are per user: two users may send the same one.';
COMMENT ON COLUMN idempotency_keys.request_hash IS
    'sha256 of the method, the path and the JSON body in canonical form (keys sorted, no '
    'white space): the same key with another request is refused (422).';
COMMENT ON COLUMN idempotency_keys.status IS 'The HTTP status answered (2xx).';
COMMENT ON COLUMN idempotency_keys.body IS
    'The JSON body answered, exactly as sent (text, not jsonb, which would reorder its keys).';
-- The sweep deletes rows past the retention window, oldest first.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- The first statement of a keyed request's transaction: try the key's lock without waiting,
-- then read a stored answer. In PL/pgSQL each statement of a VOLATILE function takes a fresh
-- snapshot, so the read happens after the lock is held and sees the answer of a request that
-- held it and committed a moment ago; in one plain SELECT the snapshot would predate the lock
-- and that answer could be missed (and the work done twice). Not locked: another request with
-- the key is running (the caller answers 409); locked and no row: do the work.
CREATE FUNCTION claim_idempotency_key(
    p_user_id bigint, p_key text,
    OUT locked boolean, OUT request_hash bytea, OUT status smallint, OUT body text)
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    locked := pg_try_advisory_xact_lock(hashtextextended(p_key, p_user_id));
    IF locked THEN
        SELECT k.request_hash, k.status, k.body INTO request_hash, status, body
        FROM idempotency_keys k
        WHERE k.user_id = p_user_id AND k.key = p_key;
    END IF;
END
$$;
COMMENT ON FUNCTION claim_idempotency_key(bigint, text) IS
    'Lock an Idempotency-Key of a user for this transaction (without waiting) and read its '
    'stored answer; see idempotency_keys.';

-- ---------------------------------------------------------------- client_msg_id
ALTER TABLE messages ADD COLUMN client_msg_id text;
ALTER TABLE messages ADD CONSTRAINT messages_client_msg_id_length_check
    CHECK (char_length(client_msg_id) BETWEEN 1 AND 64);
COMMENT ON COLUMN messages.client_msg_id IS
    'The sender''s own id of the message (message.send client_msg_id), NULL if none was given. '
    'A second send with the same id stores nothing and answers the original message.';
-- Duplicates are refused here, never by a check-then-insert. A partial unique index rather than
-- a UNIQUE constraint: messages without an id (every REST message unless it sends one) stay
-- out of it, so the hottest insert maintains no extra index entry for them.
CREATE UNIQUE INDEX messages_sender_client_msg_id_key ON messages (sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
