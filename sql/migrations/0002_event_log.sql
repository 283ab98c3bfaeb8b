-- The per-user event log behind real-time delivery.
-- Every frame pushed to a user's sockets is first a row here, written in the same transaction
-- as its cause (the message, the notification), and pushed only after that commits. A client
-- that reconnects with ?last_event_id=N is replayed every row of its user with seq > N.

CREATE TABLE user_event_counters (
    user_id   bigint NOT NULL,
    last_seq  bigint NOT NULL,
    -- Events up to this seq were purged by retention; replay from before it cannot be complete.
    purged_through  bigint NOT NULL DEFAULT 0,
    CONSTRAINT user_event_counters_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_event_counters_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);
COMMENT ON TABLE user_event_counters IS
    'The last event sequence number given out per user. Bumping it row-locks the user''s '
    'counter until commit, so a user''s events commit in sequence order and a client resuming '
    'after N can never miss an event that committed later with a smaller number. '
    'Writers bump counters in ascending user_id order, so they cannot deadlock.';

CREATE TABLE user_events (
    user_id     bigint      NOT NULL,
    seq         bigint      NOT NULL,
    event_type  text        NOT NULL,
    peer_id     bigint,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_events_pkey PRIMARY KEY (user_id, seq),
    CONSTRAINT user_events_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_events_event_type_check
        CHECK (event_type IN ('message.receive', 'notification.receive', 'message.read'))
);
COMMENT ON TABLE user_events IS
    'Frames for one user, numbered 1, 2, 3... per user (seq). payload is the frame as pushed, '
    'without its event_id (= seq). peer_id is the other party of a chat event, so a chat '
    'socket replays only its own conversation. Rows older than realtime.retention_days are purged.';
COMMENT ON COLUMN user_events.peer_id IS 'For message events: the other user of the conversation.';
-- Replay reads (user_id, seq > N) in order through the primary key; the purge uses this one.
CREATE INDEX user_events_created_at_idx ON user_events (created_at);
