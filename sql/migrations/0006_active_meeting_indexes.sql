-- "Is this person busy at instant T?" (expert search's available_at, free slots) looks at a
-- person's pending and confirmed meetings by time. These partial indexes hold only those rows,
-- so the lookup stays a short index probe however many past meetings accumulate; without them
-- the planner hashed a scan of the whole meetings table once per search.
CREATE INDEX meetings_expert_active_start_idx ON meetings (expert_id, scheduled_start)
    WHERE status IN ('pending', 'confirmed');
CREATE INDEX meetings_requester_active_start_idx ON meetings (requester_id, scheduled_start)
    WHERE status IN ('pending', 'confirmed');
