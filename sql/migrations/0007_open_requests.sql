-- Open (pending) meeting requests by requester (issue 10). A pending request no longer makes
-- anyone look busy to others: free slots and expert search count confirmed meetings only
-- (user_busy_intervals, 0004). Two lookups still read a requester's pending requests:
--   - booking counts them against meetings.max_open_requests, under a lock on the requester's
--     users row, so that concurrent bookings by one person take turns and cannot exceed it;
--   - a requester's own view of someone's free slots and of expert search treats their own
--     pending requests as taken, so they do not ask twice for the same time.
-- The application caps open requests per requester, so this index holds at most that many
-- entries per person; the (requester_id, scheduled_start) index of 0006 also holds confirmed
-- meetings, which pile up over the years.
CREATE INDEX meetings_requester_pending_idx ON meetings (requester_id, scheduled_start)
    WHERE status = 'pending';
