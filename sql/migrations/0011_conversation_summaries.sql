-- The conversations list (GET /api/conversations/, issue 14) read from a summary kept by the
-- database: one row per user and person they exchanged messages with, holding that
-- conversation's newest message and how many of the peer's messages the user has not read.
-- Before this, the list read every message of the user to find those two things, so its cost
-- grew with the user's history (10x slower at 1M rows than on an empty database); now it reads
-- one index range of `limit` rows.
-- Applied in one transaction by the migration runner (no BEGIN/COMMIT here).

CREATE TABLE conversations (
    user_id          bigint  NOT NULL,
    peer_id          bigint  NOT NULL,
    last_message_id  bigint  NOT NULL,
    unread_count     integer NOT NULL DEFAULT 0,
    CONSTRAINT conversations_pkey PRIMARY KEY (user_id, peer_id),
    CONSTRAINT conversations_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT conversations_peer_id_fkey FOREIGN KEY (peer_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT conversations_not_self_check CHECK (user_id <> peer_id),
    CONSTRAINT conversations_unread_count_check CHECK (unread_count >= 0)
);
COMMENT ON TABLE conversations IS
    'One row per user and peer they exchanged messages with: the newest message between the '
    'two and how many messages from the peer the user has not read. Derived from messages and '
    'kept exact by the triggers on messages (messages_count_inserted, messages_count_read, '
    'messages_count_deleted, messages_count_truncated): never written by the application.';
COMMENT ON COLUMN conversations.last_message_id IS
    'The largest messages.id between user_id and peer_id, either direction. No foreign key: '
    'a deleted message is replaced here by the next newest (messages_count_deleted), and the '
    'row goes when the last one does.';
COMMENT ON COLUMN conversations.unread_count IS
    'Messages sent by peer_id to user_id with is_read false.';
-- The list: a user's conversations, most recent exchange first, limited. A user's messages
-- each belong to one peer, so last_message_id never repeats within a user_id.
CREATE INDEX conversations_user_id_last_message_id_idx
    ON conversations (user_id, last_message_id DESC);

-- Why triggers, not the application's statements: every writer of messages stays exact with
-- nothing to remember: insert_message and mark_read, the FastAPI peer and the seeding of the
-- benchmark and tests (set-based INSERTs), psql, and the cascades of a user's deletion. The
-- application's hot statement (insert_message) is unchanged and still one round trip; the
-- trigger adds one upsert of two rows to it.
--
-- Concurrency: counts are kept by adding to them (unread_count + n) and the newest message by
-- GREATEST, both in INSERT ... ON CONFLICT DO UPDATE, so two messages between the same pair at
-- once neither lose a count nor move last_message_id back. Rows are upserted in (user_id,
-- peer_id) order, so two writers of the same two rows take their locks in the same order.

-- INSERT: one statement-level trigger over the inserted rows (a transition table), so a bulk
-- INSERT of a million messages is one set-based upsert, not a million. It runs at the end of
-- the statement, after insert_message's CTEs have locked the users' event counters.
CREATE FUNCTION messages_count_inserted() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO conversations AS c (user_id, peer_id, last_message_id, unread_count)
    SELECT user_id, peer_id, max(id), count(*) FILTER (WHERE unread)
    FROM (SELECT sender_id AS user_id, receiver_id AS peer_id, id, false AS unread
          FROM inserted
          UNION ALL
          SELECT receiver_id, sender_id, id, NOT is_read
          FROM inserted) sides
    GROUP BY user_id, peer_id
    ORDER BY user_id, peer_id
    ON CONFLICT (user_id, peer_id) DO UPDATE
        SET last_message_id = GREATEST(c.last_message_id, EXCLUDED.last_message_id),
            unread_count = c.unread_count + EXCLUDED.unread_count;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION messages_count_inserted() IS
    'Trigger: adds inserted messages to both parties'' conversations rows.';
CREATE TRIGGER messages_count_inserted
    AFTER INSERT ON messages REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION messages_count_inserted();

-- is_read: a row trigger deferred to COMMIT. mark_read updates the messages, then records its
-- events (locking the users' event counters) before it commits; insert_message locks those
-- counters first and the conversations rows second. Counting the read messages at COMMIT keeps
-- that order (counters, then conversations) in both, where an immediate trigger would take the
-- conversations row first and could deadlock with a send in the same pair. A message deleted
-- later in the same transaction was counted by messages_count_deleted's recount: skipped.
CREATE FUNCTION messages_count_read() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE conversations
    SET unread_count = unread_count + CASE WHEN NEW.is_read THEN -1 ELSE 1 END
    WHERE user_id = NEW.receiver_id AND peer_id = NEW.sender_id
      AND EXISTS (SELECT 1 FROM messages WHERE id = NEW.id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION messages_count_read() IS
    'Trigger: moves the receiver''s unread_count when a message''s is_read changes.';
CREATE CONSTRAINT TRIGGER messages_count_read
    AFTER UPDATE OF is_read ON messages
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.is_read <> NEW.is_read)
    EXECUTE FUNCTION messages_count_read();

-- A message keeps its two parties: moving one would move it between four conversations rows,
-- and no writer needs that (delete it and insert another instead).
CREATE FUNCTION messages_refuse_new_parties() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'a message keeps its sender and receiver (message %)', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'messages_parties_fixed';
END
$$;
COMMENT ON FUNCTION messages_refuse_new_parties() IS
    'Trigger: refuses a change of a message''s sender_id or receiver_id (see conversations).';
CREATE TRIGGER messages_parties_fixed
    BEFORE UPDATE OF sender_id, receiver_id ON messages
    FOR EACH ROW WHEN (OLD.sender_id <> NEW.sender_id OR OLD.receiver_id <> NEW.receiver_id)
    EXECUTE FUNCTION messages_refuse_new_parties();

-- DELETE (in practice the cascades of a user's deletion, which also delete that user's
-- conversations rows through their foreign keys): the pairs touched are recounted from the
-- messages left, and a pair with none left loses its rows. Only UPDATE and DELETE here, never
-- INSERT: the row of a user being deleted must not come back. The rows are locked first, in
-- order, and counted by a second statement (a fresh snapshot in a VOLATILE function), so a
-- concurrent send in the same pair is either in the count or adds to it after us.
CREATE FUNCTION messages_count_deleted() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1
    FROM conversations c
    WHERE (c.user_id, c.peer_id) IN (SELECT sender_id, receiver_id FROM deleted
                                     UNION ALL
                                     SELECT receiver_id, sender_id FROM deleted)
    ORDER BY c.user_id, c.peer_id
    FOR UPDATE;
    WITH touched AS (
        SELECT sender_id AS user_id, receiver_id AS peer_id FROM deleted
        UNION
        SELECT receiver_id, sender_id FROM deleted),
    counted AS (
        SELECT t.user_id, t.peer_id, n.last_id, n.unread
        FROM touched t
        CROSS JOIN LATERAL (
            SELECT max(id) AS last_id, count(*) FILTER (WHERE unread)::int AS unread
            FROM (SELECT id, false AS unread FROM messages
                  WHERE sender_id = t.user_id AND receiver_id = t.peer_id
                  UNION ALL
                  SELECT id, NOT is_read FROM messages
                  WHERE sender_id = t.peer_id AND receiver_id = t.user_id) m) n),
    emptied AS (
        DELETE FROM conversations c
        USING counted k
        WHERE c.user_id = k.user_id AND c.peer_id = k.peer_id AND k.last_id IS NULL)
    UPDATE conversations c
    SET last_message_id = k.last_id, unread_count = k.unread
    FROM counted k
    WHERE c.user_id = k.user_id AND c.peer_id = k.peer_id AND k.last_id IS NOT NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION messages_count_deleted() IS
    'Trigger: recounts the conversations rows of the pairs whose messages were deleted.';
CREATE TRIGGER messages_count_deleted
    AFTER DELETE ON messages REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION messages_count_deleted();

CREATE FUNCTION messages_count_truncated() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM conversations;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION messages_count_truncated() IS
    'Trigger: no messages, no conversations.';
CREATE TRIGGER messages_count_truncated
    AFTER TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_count_truncated();

-- The count from scratch: the backfill below, and the repair after a bulk load that bypassed
-- the triggers (session_replication_role = replica, as bench/run.py's scale seeding does).
CREATE FUNCTION rebuild_conversations() RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    -- Writers of messages wait until the caller's transaction ends: none may slip between
    -- this count and the triggers that go on from it.
    LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM conversations;
    INSERT INTO conversations (user_id, peer_id, last_message_id, unread_count)
    SELECT user_id, peer_id, max(id), count(*) FILTER (WHERE unread)
    FROM (SELECT sender_id AS user_id, receiver_id AS peer_id, id, false AS unread
          FROM messages
          UNION ALL
          SELECT receiver_id, sender_id, id, NOT is_read
          FROM messages) sides
    GROUP BY user_id, peer_id;
END
$$;
COMMENT ON FUNCTION rebuild_conversations() IS
    'Recounts conversations from messages, with writers of messages held off until the '
    'caller''s transaction ends. Only needed after writes that bypassed the triggers.';

-- The backfill: every pair's newest message and unread count, from the messages there are.
SELECT rebuild_conversations();
