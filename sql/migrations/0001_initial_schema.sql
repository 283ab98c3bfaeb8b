-- ExpertConnect initial schema.
-- Applied by `python server.py migrate` in one transaction (no BEGIN/COMMIT here).
-- Conventions: bigint identity keys; timestamptz everywhere (stored UTC); every constraint
-- named <table>_<what>_<kind> so an error names the rule it broke.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ---------------------------------------------------------------- users and their tokens
CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    username         text        NOT NULL,
    email            text        NOT NULL,
    password_hash    text        NOT NULL,
    first_name       text        NOT NULL DEFAULT '',
    last_name        text        NOT NULL DEFAULT '',
    bio              text        NOT NULL DEFAULT '',
    profile_picture  text        NOT NULL DEFAULT '',
    date_joined      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_format_check CHECK (username ~ '^[A-Za-z0-9_.@+-]{3,150}$'),
    CONSTRAINT users_email_length_check CHECK (length(email) BETWEEN 3 AND 254),
    -- Only http(s) URLs are kept; the server never fetches them.
    CONSTRAINT users_profile_picture_url_check
        CHECK (profile_picture = '' OR profile_picture ~* '^https?://')
);
COMMENT ON TABLE users IS 'Everyone on the platform; any user can be booked as an expert.';
-- Usernames and emails are unique regardless of case: "JohnDoe" and "johndoe" are one account.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- How a person is named in meetings, messages and reviews: "First Last", else the username.
CREATE FUNCTION user_display_name(u users) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username);

CREATE TABLE revoked_tokens (
    jti         uuid        NOT NULL,
    user_id     bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (jti),
    CONSTRAINT revoked_tokens_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);
COMMENT ON TABLE revoked_tokens IS
    'JWT ids revoked by logout. A row past expires_at is dead weight: the token has expired anyway.';
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);
CREATE INDEX revoked_tokens_user_id_idx ON revoked_tokens (user_id);

-- ---------------------------------------------------------------- skills and availability
CREATE TABLE categories (
    id    bigint GENERATED ALWAYS AS IDENTITY,
    name  text NOT NULL,
    CONSTRAINT categories_pkey PRIMARY KEY (id),
    CONSTRAINT categories_name_key UNIQUE (name)
);
COMMENT ON TABLE categories IS 'Fields of expertise; skills and meetings belong to one.';
INSERT INTO categories (name) VALUES
    ('Software Development'),
    ('Career Development'),
    ('Data Science'),
    ('Design'),
    ('Business'),
    ('Marketing'),
    ('Finance'),
    ('Languages');

CREATE TABLE user_skills (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    user_id            bigint NOT NULL,
    category_id        bigint NOT NULL,
    skill_name         text   NOT NULL,
    proficiency_level  text   NOT NULL,
    CONSTRAINT user_skills_pkey PRIMARY KEY (id),
    CONSTRAINT user_skills_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_skills_category_id_fkey FOREIGN KEY (category_id)
        REFERENCES categories (id),
    CONSTRAINT user_skills_proficiency_level_check
        CHECK (proficiency_level IN ('beginner', 'intermediate', 'advanced', 'expert'))
);
COMMENT ON TABLE user_skills IS 'What a user offers as an expert.';
-- A user lists a skill once per category, whatever its case.
CREATE UNIQUE INDEX user_skills_user_category_skill_key
    ON user_skills (user_id, category_id, lower(skill_name));
CREATE INDEX user_skills_category_id_idx ON user_skills (category_id);

-- A range of times of day, so that overlapping availability can be excluded by the schema.
CREATE TYPE timerange AS RANGE (subtype = time);

CREATE TABLE user_availability (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint   NOT NULL,
    day_of_week  smallint NOT NULL,
    start_time   time     NOT NULL,
    end_time     time     NOT NULL,
    CONSTRAINT user_availability_pkey PRIMARY KEY (id),
    CONSTRAINT user_availability_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    -- 0 = Sunday .. 6 = Saturday, as EXTRACT(DOW) and JavaScript's getDay() count.
    CONSTRAINT user_availability_day_of_week_check CHECK (day_of_week BETWEEN 0 AND 6),
    CONSTRAINT user_availability_time_order_check CHECK (end_time > start_time),
    -- No two slots of one user overlap on the same day (touching end to start is allowed).
    CONSTRAINT user_availability_no_overlap_excl EXCLUDE USING gist (
        user_id WITH =, day_of_week WITH =, timerange(start_time, end_time) WITH &&)
);
COMMENT ON TABLE user_availability IS 'Weekly recurring hours in which a user accepts meetings.';
-- The exclusion constraint's gist index also serves "slots of user X" lookups.

-- ---------------------------------------------------------------- meetings and reviews
CREATE TABLE meetings (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    title            text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    requester_id     bigint      NOT NULL,
    expert_id        bigint      NOT NULL,
    category_id      bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    scheduled_start  timestamptz NOT NULL,
    scheduled_end    timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meetings_pkey PRIMARY KEY (id),
    CONSTRAINT meetings_requester_id_fkey FOREIGN KEY (requester_id) REFERENCES users (id),
    CONSTRAINT meetings_expert_id_fkey FOREIGN KEY (expert_id) REFERENCES users (id),
    CONSTRAINT meetings_category_id_fkey FOREIGN KEY (category_id) REFERENCES categories (id),
    CONSTRAINT meetings_status_check
        CHECK (status IN ('pending', 'confirmed', 'completed', 'cancelled')),
    CONSTRAINT meetings_not_self_check CHECK (requester_id <> expert_id),
    CONSTRAINT meetings_time_order_check CHECK (scheduled_end > scheduled_start)
);
COMMENT ON TABLE meetings IS
    'A booking of an expert by a requester. Status moves pending -> confirmed -> completed, '
    'or to cancelled from pending/confirmed; the transitions are enforced by the application.';
-- Meeting lists are "mine as requester" and "mine as expert", newest first.
CREATE INDEX meetings_requester_id_id_idx ON meetings (requester_id, id DESC);
CREATE INDEX meetings_expert_id_id_idx ON meetings (expert_id, id DESC);

CREATE TABLE reviews (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    meeting_id   bigint      NOT NULL,
    reviewer_id  bigint      NOT NULL,
    reviewee_id  bigint      NOT NULL,
    rating       smallint    NOT NULL,
    review_text  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_pkey PRIMARY KEY (id),
    CONSTRAINT reviews_meeting_id_fkey FOREIGN KEY (meeting_id) REFERENCES meetings (id),
    CONSTRAINT reviews_reviewer_id_fkey FOREIGN KEY (reviewer_id) REFERENCES users (id),
    CONSTRAINT reviews_reviewee_id_fkey FOREIGN KEY (reviewee_id) REFERENCES users (id),
    CONSTRAINT reviews_rating_check CHECK (rating BETWEEN 1 AND 5),
    CONSTRAINT reviews_not_self_check CHECK (reviewer_id <> reviewee_id),
    -- One review per reviewer per meeting.
    CONSTRAINT reviews_meeting_reviewer_key UNIQUE (meeting_id, reviewer_id)
);
COMMENT ON TABLE reviews IS
    'A participant''s rating of the other participant of a completed meeting.';
CREATE INDEX reviews_reviewee_id_id_idx ON reviews (reviewee_id, id DESC);

-- ---------------------------------------------------------------- credits and payments
CREATE TABLE credit_accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    user_id     bigint      NOT NULL,
    balance     integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT credit_accounts_user_id_key UNIQUE (user_id),
    CONSTRAINT credit_accounts_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    -- Nobody can spend credits they do not have.
    CONSTRAINT credit_accounts_balance_nonnegative_check CHECK (balance >= 0)
);
COMMENT ON TABLE credit_accounts IS
    'One per user. balance always equals the signed sum of the user''s credit_transactions: '
    'both change in the same transaction.';

CREATE TABLE payments (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    user_id            bigint        NOT NULL,
    payment_method     text          NOT NULL,
    amount             numeric(12,2) NOT NULL,
    currency           char(3)       NOT NULL DEFAULT 'USD',
    status             text          NOT NULL,
    credits_purchased  integer       NOT NULL,
    transaction_id     text          NOT NULL,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT payments_pkey PRIMARY KEY (id),
    CONSTRAINT payments_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT payments_payment_method_check
        CHECK (payment_method IN ('credit_card', 'debit_card', 'paypal', 'bank_transfer')),
    CONSTRAINT payments_amount_positive_check CHECK (amount > 0),
    CONSTRAINT payments_credits_positive_check CHECK (credits_purchased > 0),
    CONSTRAINT payments_status_check CHECK (status IN ('pending', 'completed', 'failed')),
    CONSTRAINT payments_transaction_id_key UNIQUE (transaction_id)
);
COMMENT ON TABLE payments IS 'Credit purchases (simulated processor: always completed).';
CREATE INDEX payments_user_id_id_idx ON payments (user_id, id DESC);

CREATE TABLE credit_transactions (
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    user_id             bigint      NOT NULL,
    transaction_type    text        NOT NULL,
    amount              integer     NOT NULL,
    description         text        NOT NULL,
    related_meeting_id  bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_transactions_pkey PRIMARY KEY (id),
    CONSTRAINT credit_transactions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT credit_transactions_related_meeting_id_fkey FOREIGN KEY (related_meeting_id)
        REFERENCES meetings (id),
    -- initial/purchased/earned add to the balance, spent takes from it; amount is unsigned.
    CONSTRAINT credit_transactions_type_check
        CHECK (transaction_type IN ('initial', 'purchased', 'spent', 'earned')),
    CONSTRAINT credit_transactions_amount_positive_check CHECK (amount > 0)
);
COMMENT ON TABLE credit_transactions IS
    'The append-only credit ledger. Never updated or deleted; the balance is derived from it.';
CREATE INDEX credit_transactions_user_id_id_idx ON credit_transactions (user_id, id DESC);
CREATE INDEX credit_transactions_related_meeting_id_idx
    ON credit_transactions (related_meeting_id) WHERE related_meeting_id IS NOT NULL;

-- ---------------------------------------------------------------- messages and notifications
CREATE TABLE messages (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    sender_id    bigint      NOT NULL,
    receiver_id  bigint      NOT NULL,
    content      text        NOT NULL,
    is_read      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_sender_id_fkey FOREIGN KEY (sender_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT messages_receiver_id_fkey FOREIGN KEY (receiver_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT messages_not_self_check CHECK (sender_id <> receiver_id),
    CONSTRAINT messages_content_not_empty_check CHECK (length(content) > 0)
);
COMMENT ON TABLE messages IS 'Direct messages between two users.';
-- A conversation is read as the UNION ALL of both directions, each served by this index.
CREATE INDEX messages_sender_receiver_id_idx ON messages (sender_id, receiver_id, id DESC);
-- "All my messages" = sent by me UNION ALL received by me.
CREATE INDEX messages_sender_id_id_idx ON messages (sender_id, id DESC);
CREATE INDEX messages_receiver_id_id_idx ON messages (receiver_id, id DESC);

CREATE TABLE notifications (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    user_id            bigint      NOT NULL,
    title              text        NOT NULL,
    content            text        NOT NULL,
    notification_type  text        NOT NULL,
    related_id         bigint,
    is_read            boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_pkey PRIMARY KEY (id),
    CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT notifications_type_check CHECK (notification_type IN (
        'meeting_request', 'meeting_confirmed', 'meeting_completed', 'meeting_cancelled',
        'new_message', 'new_review', 'credits_received'))
);
COMMENT ON TABLE notifications IS
    'What happened to a user. related_id points at the meeting, message or review it is about.';
CREATE INDEX notifications_user_id_id_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_user_id_unread_idx ON notifications (user_id, id DESC)
    WHERE NOT is_read;
