-- Credits that follow the meeting (issue 12): experts' prices, payments held on the meeting
-- until it is completed (released to the expert) or cancelled (refunded to the requester),
-- automatic completion and reminders found by the periodic sweep.
-- Applied in one transaction by the migration runner (no BEGIN/COMMIT here).

-- ---------------------------------------------------------------- prices
-- user_display_name(users) pins the users row type (see 0003): dropped and recreated, unchanged.
DROP FUNCTION user_display_name(users);

ALTER TABLE users ADD COLUMN credits_per_hour integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD CONSTRAINT users_credits_per_hour_nonnegative_check
    CHECK (credits_per_hour >= 0);
COMMENT ON COLUMN users.credits_per_hour IS
    'The expert''s price; 0 = no price (payments of any amount). A meeting copies the price '
    'it costs into meetings.price_credits when it is booked.';

CREATE FUNCTION user_display_name(u users) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username);

-- ---------------------------------------------------------------- escrow on the meeting
-- The held credits live on the meeting row itself: every change of status and every payment
-- already row-locks it, so a payment, a completion, a cancellation and the sweeps take turns
-- there, and the statement that moves the status also moves payment_status (exactly once).
ALTER TABLE meetings
    ADD COLUMN price_credits bigint,
    ADD COLUMN paid_credits bigint NOT NULL DEFAULT 0,
    ADD COLUMN payment_status text NOT NULL DEFAULT 'none',
    ADD COLUMN reminded_at timestamptz;
COMMENT ON COLUMN meetings.price_credits IS
    'ceil(expert''s credits_per_hour x duration in hours), fixed at booking; NULL = no price.';
COMMENT ON COLUMN meetings.paid_credits IS
    'Credits the requester paid for this meeting (each payment is a spent row in '
    'credit_transactions). Payments made before 0009 were delivered at once and are not counted.';
COMMENT ON COLUMN meetings.payment_status IS
    'none: nothing paid. held: paid_credits wait on the meeting (the expert does not have them). '
    'released: paid to the expert (an earned row). refunded: returned to the requester (a refund '
    'row). The sum of every balance plus every held paid_credits equals all credits ever minted.';
COMMENT ON COLUMN meetings.reminded_at IS
    'When the meeting_reminder notifications were written; set once, by the sweep that claimed it.';
ALTER TABLE meetings
    ADD CONSTRAINT meetings_price_credits_nonnegative_check
        CHECK (price_credits IS NULL OR price_credits >= 0),
    -- A priced meeting is never paid more than its price.
    ADD CONSTRAINT meetings_paid_within_price_check
        CHECK (price_credits IS NULL OR paid_credits <= price_credits),
    -- Held credits belong to an open meeting, released ones to a completed one, refunded ones to
    -- a cancelled one: whoever changes a paid meeting's status must settle it in the same
    -- statement, or this refuses the change.
    ADD CONSTRAINT meetings_payment_status_check CHECK (
        (payment_status = 'none' AND paid_credits = 0)
        OR (payment_status = 'held' AND paid_credits > 0 AND status IN ('pending', 'confirmed'))
        OR (payment_status = 'released' AND paid_credits > 0 AND status = 'completed')
        OR (payment_status = 'refunded' AND paid_credits > 0 AND status = 'cancelled'));

-- GET /api/credits/balance/ sums a user's held credits as requester (held) and as expert
-- (incoming); these hold only meetings with credits held, so they stay as small as that set.
CREATE INDEX meetings_requester_held_idx ON meetings (requester_id) INCLUDE (paid_credits)
    WHERE payment_status = 'held';
CREATE INDEX meetings_expert_held_idx ON meetings (expert_id) INCLUDE (paid_credits)
    WHERE payment_status = 'held';

-- The sweep's auto-completion looks for confirmed meetings by their end, its reminders for
-- confirmed, not yet reminded ones by their start.
CREATE INDEX meetings_confirmed_scheduled_end_idx ON meetings (scheduled_end)
    WHERE status = 'confirmed';
CREATE INDEX meetings_confirmed_unreminded_start_idx ON meetings (scheduled_start)
    WHERE status = 'confirmed' AND reminded_at IS NULL;

-- ---------------------------------------------------------------- ledger and notifications
-- refund adds to the balance, like initial, purchased and earned; spent still takes from it.
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_type_check;
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_type_check
    CHECK (transaction_type IN ('initial', 'purchased', 'spent', 'earned', 'refund'));

ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check CHECK (notification_type IN (
    'meeting_request', 'meeting_confirmed', 'meeting_completed', 'meeting_cancelled',
    'new_message', 'new_review', 'credits_received',
    'payment_released', 'payment_refunded', 'meeting_reminder'));
