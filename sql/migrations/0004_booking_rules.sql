-- Booking rules enforced by the database (issue 5): confirmed meetings never overlap, the
-- expert's availability is read in the expert's time zone, and stale pending requests are
-- found through small partial indexes by the expiry task.

-- Availability times are wall-clock times in the expert's IANA zone. 0003_marketplace.sql may
-- already have added this column (it also lets users change it); IF NOT EXISTS makes this file
-- apply either way, and on a database without 0003 every user reads as UTC.
-- user_display_name(users) has a SQL-standard body, which pins the users row type: PostgreSQL
-- refuses ADD COLUMN while it exists, so it is dropped and recreated unchanged around it (as
-- 0003 does).
DROP FUNCTION user_display_name(users);
ALTER TABLE users ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC';
-- As in 0001: how a person is named in meetings, messages and reviews.
CREATE FUNCTION user_display_name(u users) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username);

-- No double booking. Ranges are half-open [start, end): a meeting may begin exactly when the
-- previous one ends. Only confirmed meetings take time: pending requests may overlap freely
-- (the expert picks one), cancelled and completed ones free their time. Each constraint's gist
-- index holds confirmed rows only. A confirmation that would overlap fails with
-- ExclusionViolationError naming the constraint, answered as a 400 by the application.
-- Applying this fails if confirmed meetings already overlap: resolve them by hand first.
ALTER TABLE meetings
    ADD CONSTRAINT meetings_expert_no_overlap_excl EXCLUDE USING gist (
        expert_id WITH =, tstzrange(scheduled_start, scheduled_end) WITH &&)
        WHERE (status = 'confirmed'),
    ADD CONSTRAINT meetings_requester_no_overlap_excl EXCLUDE USING gist (
        requester_id WITH =, tstzrange(scheduled_start, scheduled_end) WITH &&)
        WHERE (status = 'confirmed');
COMMENT ON CONSTRAINT meetings_expert_no_overlap_excl ON meetings IS
    'An expert never has two confirmed meetings at once.';
COMMENT ON CONSTRAINT meetings_requester_no_overlap_excl ON meetings IS
    'A requester never has two confirmed meetings at once.';

-- Pending requests expire at their start or pending_ttl_hours after creation, whichever comes
-- first. The expiry task looks for either through these (BitmapOr); both hold pending rows only,
-- so they stay as small as the set of open requests.
CREATE INDEX meetings_pending_scheduled_start_idx ON meetings (scheduled_start)
    WHERE status = 'pending';
CREATE INDEX meetings_pending_created_at_idx ON meetings (created_at)
    WHERE status = 'pending';
