-- Booking rules enforced by the database (issue 5): confirmed meetings never overlap, the
-- expert's availability is read in the expert's time zone, and stale pending requests are
-- found through small partial indexes by the expiry task.

-- Availability times are wall-clock times in the expert's IANA zone, users.timezone (0003).

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

-- One person, one meeting at a time, whatever their role. A constraint on meetings can only
-- compare a column with the same column of another row, so it cannot see that someone's
-- confirmed meeting as expert overlaps their confirmed meeting as requester. This table holds
-- one row per participant of every confirmed meeting, written by the trigger below within the
-- same statement, and its constraint compares people across both roles. It implies the two
-- constraints above; they stay as the rule stated on meetings itself, independent of the
-- trigger, and they name the role in the error.
CREATE TABLE user_busy_intervals (
    user_id     bigint    NOT NULL,
    meeting_id  bigint    NOT NULL,
    during      tstzrange NOT NULL,
    CONSTRAINT user_busy_intervals_pkey PRIMARY KEY (meeting_id, user_id),
    -- user_id is the meeting's requester or expert, whose own foreign keys already hold.
    CONSTRAINT user_busy_intervals_meeting_id_fkey FOREIGN KEY (meeting_id)
        REFERENCES meetings (id) ON DELETE CASCADE,
    CONSTRAINT user_busy_intervals_no_overlap_excl EXCLUDE USING gist (
        user_id WITH =, during WITH &&)
);
COMMENT ON TABLE user_busy_intervals IS
    'Derived: the time each participant of a confirmed meeting is taken, kept by the '
    'meetings_sync_busy_intervals trigger; never written by the application.';
COMMENT ON CONSTRAINT user_busy_intervals_no_overlap_excl ON user_busy_intervals IS
    'Nobody has two confirmed meetings at once, as expert, as requester or one of each.';

CREATE FUNCTION meetings_sync_busy_intervals() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Rewrite rather than patch: right for any change of status, times or participants.
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM user_busy_intervals WHERE meeting_id = OLD.id;
    END IF;
    IF NEW.status = 'confirmed' THEN
        INSERT INTO user_busy_intervals (user_id, meeting_id, during)
        VALUES (NEW.requester_id, NEW.id, tstzrange(NEW.scheduled_start, NEW.scheduled_end)),
               (NEW.expert_id, NEW.id, tstzrange(NEW.scheduled_start, NEW.scheduled_end));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION meetings_sync_busy_intervals() IS
    'Keeps user_busy_intervals equal to the participants and times of confirmed meetings.';
CREATE TRIGGER meetings_sync_busy_intervals
    AFTER INSERT OR UPDATE OF status, requester_id, expert_id, scheduled_start, scheduled_end
    ON meetings
    FOR EACH ROW EXECUTE FUNCTION meetings_sync_busy_intervals();

-- Meetings confirmed before this migration (fails, like the constraints above, on an overlap).
INSERT INTO user_busy_intervals (user_id, meeting_id, during)
SELECT p.user_id, m.id, tstzrange(m.scheduled_start, m.scheduled_end)
FROM meetings m
CROSS JOIN LATERAL (VALUES (m.requester_id), (m.expert_id)) p (user_id)
WHERE m.status = 'confirmed';
