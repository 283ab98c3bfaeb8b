"""Every list query of the API is served by an index, as the planner chooses it on its own.

The test seeds the session's database with set-based SQL (2,000 users of its own, 100k
messages, 20k meetings, 50k notifications, 50k ledger rows, 50k events, skills, availability and
reviews), runs VACUUM ANALYZE, then EXPLAINs each list statement exactly as its query module
sends it
(the real function, called with a connection that prefixes EXPLAIN) for a typical user and for
a busy one holding 1 % of every table. Sequential scans are NOT priced out: with real
statistics, a plan that reads one of the big tables sequentially is a plan production would run.

The seeded users are this test's own (no other test can know their ids), their pending meetings
start in the future and their events are new, so the server's expiry and retention tasks leave
them alone; the ledger matches every seeded balance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import asyncpg

from expertconnect.db.queries import availability as availability_q
from expertconnect.db.queries import credits as credits_q
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import experts as experts_q
from expertconnect.db.queries import meetings as meetings_q
from expertconnect.db.queries import messages as messages_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.db.queries import reviews as reviews_q
from expertconnect.db.queries import skills as skills_q

USERS, MESSAGES, MEETINGS, NOTIFICATIONS, LEDGER, EVENTS = (
    2_000,
    100_000,
    20_000,
    50_000,
    50_000,
    50_000,
)
# The busy user (index 0) sends and receives 1 % of the messages, requests and hosts 1 % of the
# meetings, holds 1 % of the notifications, ledger rows and events; its peer is user 1.
BUSY_EVERY = 100
BIG_TABLES = {
    "messages",
    "meetings",
    "notifications",
    "credit_transactions",
    "user_events",
    "user_busy_intervals",  # two rows per confirmed meeting: read by free slots and search
    "conversations",  # two rows per pair that exchanged messages, filled by 0011's triggers
}

# Row i of a big table belongs to user index (i * STRIDE) % USERS (a spread with no pattern
# the planner could exploit; STRIDE is prime to USERS), unless it is the busy user's row.
STRIDE = 7919
SEED_SQL = [
    # $1 the user ids (index 0 = busy, 1 = its peer).
    """CREATE TEMPORARY TABLE qp_users ON COMMIT DROP AS
       SELECT i - 1 AS n, id FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, i)""",
    "CREATE UNIQUE INDEX ON qp_users (n)",
    "ANALYZE qp_users",
    f"""INSERT INTO messages (sender_id, receiver_id, content, is_read, created_at)
        SELECT s.id, r.id, 'Plan message ' || g, g % 3 <> 0,
               now() - ({MESSAGES} - g) * interval '1 second'
        FROM (SELECT g,
                     CASE WHEN g % {BUSY_EVERY} = 0 THEN 0
                          WHEN g % {BUSY_EVERY} = 1 THEN 1 + g / {BUSY_EVERY} % 50
                          ELSE g * {STRIDE} % {USERS} END AS si,
                     CASE WHEN g % {BUSY_EVERY} = 0 THEN 1 + g / {BUSY_EVERY} % 50
                          WHEN g % {BUSY_EVERY} = 1 THEN 0
                          ELSE (g * {STRIDE} + 1 + g % ({USERS} - 1)) % {USERS} END AS ri
              FROM generate_series(1, {MESSAGES}) g) p
        JOIN qp_users s ON s.n = p.si JOIN qp_users r ON r.n = p.ri""",
    # Each meeting has an hour of its own: no two overlap, so any may be confirmed.
    f"""INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                              scheduled_start, scheduled_end)
        SELECT 'Plan meeting ' || g, q.id, e.id, 1 + g % 8,
               (ARRAY['pending', 'confirmed', 'completed', 'cancelled'])[1 + g % 4],
               date_trunc('hour', now()) + g * interval '1 hour',
               date_trunc('hour', now()) + (g + 1) * interval '1 hour'
        FROM (SELECT g,
                     CASE WHEN g % {BUSY_EVERY} = 0 THEN 0
                          ELSE g * {STRIDE} % {USERS} END AS qi,
                     CASE WHEN g % {BUSY_EVERY} = 1 THEN 0
                          WHEN g % {BUSY_EVERY} = 0 THEN 1 + g % ({USERS} - 1)
                          ELSE (g * {STRIDE} + 1 + g % ({USERS} - 2)) % {USERS} END AS ei
              FROM generate_series(1, {MEETINGS}) g) p
        JOIN qp_users q ON q.n = p.qi JOIN qp_users e ON e.n = p.ei
        WHERE q.id <> e.id""",
    f"""INSERT INTO notifications (user_id, title, content, notification_type, related_id,
                                   is_read)
        SELECT u.id, 'Plan notification', 'Plan notification ' || g,
               (ARRAY['meeting_request', 'new_message', 'credits_received'])[1 + g % 3], g,
               g % 4 <> 0
        FROM generate_series(1, {NOTIFICATIONS}) g
        JOIN qp_users u ON u.n = CASE WHEN g % {BUSY_EVERY} = 0 THEN 0
                                      ELSE g * {STRIDE} % {USERS} END""",
    f"""INSERT INTO credit_transactions (user_id, transaction_type, amount, description)
        SELECT u.id, (ARRAY['purchased', 'earned', 'spent'])[1 + g % 3],
               CASE g % 3 WHEN 0 THEN 10 WHEN 1 THEN 5 ELSE 1 END, 'Plan ledger row'
        FROM generate_series(1, {LEDGER}) g
        JOIN qp_users u ON u.n = CASE WHEN g % {BUSY_EVERY} = 0 THEN 0
                                      ELSE g * {STRIDE} % {USERS} END""",
    # balance == signed sum of the ledger, for every seeded user.
    """INSERT INTO credit_accounts (user_id, balance)
       SELECT u.id, COALESCE(sum(CASE WHEN t.transaction_type = 'spent' THEN -t.amount
                                      ELSE t.amount END), 0)
       FROM qp_users u LEFT JOIN credit_transactions t ON t.user_id = u.id
       GROUP BY u.id""",
    # Sequence numbers are unique per user because g is unique.
    f"""INSERT INTO user_events (user_id, seq, event_type, peer_id, payload)
        SELECT u.id, g, (ARRAY['message.receive', 'notification.receive'])[1 + g % 2],
               CASE WHEN g % 2 = 0 THEN p.id END, '{{}}'::jsonb
        FROM generate_series(1, {EVENTS}) g
        JOIN qp_users u ON u.n = CASE WHEN g % {BUSY_EVERY} = 0 THEN 0
                                      ELSE g * {STRIDE} % {USERS} END
        JOIN qp_users p ON p.n = (g * {STRIDE} + 1) % {USERS}""",
    """INSERT INTO user_event_counters (user_id, last_seq)
       SELECT user_id, max(seq) FROM user_events
       WHERE user_id IN (SELECT id FROM qp_users) GROUP BY user_id""",
    # Two skills per user: one of 50 words ($1 + n % 50: a search matches 2 % of the users)
    # and a common one.
    """INSERT INTO user_skills (user_id, category_id, skill_name, proficiency_level)
       SELECT u.id, 1 + (u.n + k) % 8,
              CASE k WHEN 0 THEN $1::text || (u.n % 50) ELSE 'Consulting' END,
              (ARRAY['beginner', 'intermediate', 'advanced', 'expert'])[1 + (u.n + k) % 4]
       FROM qp_users u CROSS JOIN generate_series(0, 1) k""",
    """INSERT INTO user_availability (user_id, day_of_week, start_time, end_time)
       SELECT u.id, d, time '09:00', time '17:00'
       FROM qp_users u CROSS JOIN (VALUES (1), (3), (5)) AS days(d)""",
    """INSERT INTO reviews (meeting_id, reviewer_id, reviewee_id, rating, review_text)
       SELECT m.id, m.requester_id, m.expert_id, 1 + m.id % 5, 'Plan review'
       FROM meetings m JOIN qp_users u ON u.id = m.requester_id
       WHERE m.status = 'completed'""",
]
VACUUMED = [
    "users",
    "messages",
    "meetings",
    "notifications",
    "credit_transactions",
    "credit_accounts",
    "user_events",
    "user_event_counters",
    "user_skills",
    "user_availability",
    "reviews",
    "user_busy_intervals",
    "conversations",
]


class Explain:
    """Stands in for a connection: EXPLAINs each statement instead of running it."""

    def __init__(self, conn):
        self.conn = conn
        self.plans: list[dict] = []

    async def _explain(self, query, *args):
        text = await self.conn.fetchval("EXPLAIN (FORMAT JSON) " + query, *args)
        self.plans.append(json.loads(text)[0]["Plan"])

    async def fetch(self, query, *args):
        await self._explain(query, *args)
        return []

    async def fetchrow(self, query, *args):
        await self._explain(query, *args)
        return None

    async def fetchval(self, query, *args):
        await self._explain(query, *args)
        return 0


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def outline(plan: dict, depth: int = 0) -> str:
    """The plan as indented lines of node type, relation and index (for failure messages)."""
    line = "  " * depth + " ".join(
        str(plan[k]) for k in ("Node Type", "Relation Name", "Index Name", "Plan Rows") if k in plan
    )
    return "\n".join([line, *(outline(child, depth + 1) for child in plan.get("Plans", []))])


def scans(plan: dict) -> tuple[set[str], set[str]]:
    """(tables read by a sequential scan, indexes used) anywhere in the plan."""
    seq, indexes = set(), set()
    for node in nodes(plan):
        if node["Node Type"] == "Seq Scan":
            seq.add(node["Relation Name"])
        if "Index Name" in node:
            indexes.add(node["Index Name"])
    return seq, indexes


async def seed(conn) -> list[int]:
    tag = "qp" + uuid.uuid4().hex[:8]
    ids = [
        r["id"]
        for r in await conn.fetch(
            """INSERT INTO users (username, email, password_hash, first_name, last_name, bio,
                              username_normalized, email_normalized)
           SELECT $1 || '_' || g, $1 || '_' || g || '@example.com', 'x', 'Plan', 'User ' || g,
                  'Advises on planning, number ' || g,
                  $1 || '_' || g, $1 || '_' || g || '@example.com'
           FROM generate_series(1, $2) g
           ORDER BY g
           RETURNING id""",
            tag,
            USERS,
        )
    ]
    async with conn.transaction():
        for statement in SEED_SQL:
            args = (tag,) if "user_skills (" in statement else (ids,) if "$1" in statement else ()
            await conn.execute(statement, *args)
    # VACUUM too, as autovacuum would have done in production: it flushes the GIN pending list
    # of users_search_document_idx (a full list prices the index out) and fills the visibility
    # map that index-only scans rely on.
    for table in VACUUMED:
        await conn.execute(f"VACUUM ANALYZE {table}")
    return ids, tag


# (name, call, indexes that must appear in the plan; a tuple: one of them). Each call gets the
# EXPLAIN connection, the user (busy or typical) and the busy user's peer; tag_word is the seeded
# skill prefix.
def list_queries(tag_word: str):
    page = {"limit": 50, "before_id": None}
    return [
        (
            "meetings, both roles",
            lambda c, u, p: meetings_q.list_meetings_of_participant_json(c, u, status=None, **page),
            {"meetings_requester_id_id_idx", "meetings_expert_id_id_idx"},
        ),
        (
            "meetings, both roles, one status",
            lambda c, u, p: meetings_q.list_meetings_of_participant_json(
                c, u, status="pending", **page
            ),
            # For an open status the partial indexes of open meetings serve as well.
            {
                (
                    "meetings_requester_id_id_idx",
                    "meetings_requester_active_start_idx",
                    "meetings_requester_pending_idx",
                ),
                ("meetings_expert_id_id_idx", "meetings_expert_active_start_idx"),
            },
        ),
        (
            "meetings as requester",
            lambda c, u, p: meetings_q.list_meetings_as_requester_json(c, u, status=None, **page),
            {"meetings_requester_id_id_idx"},
        ),
        (
            "meetings as expert, one status",
            lambda c, u, p: meetings_q.list_meetings_as_expert_json(
                c, u, status="completed", **page
            ),
            {"meetings_expert_id_id_idx"},
        ),
        (
            "all my messages",
            lambda c, u, p: messages_q.list_messages_json(c, u, **page),
            {"messages_sender_id_id_idx", "messages_receiver_id_id_idx"},
        ),
        (
            "all my messages, second page",
            lambda c, u, p: messages_q.list_messages_json(c, u, limit=50, before_id=90_000_000),
            {"messages_sender_id_id_idx", "messages_receiver_id_id_idx"},
        ),
        (
            "conversation",
            lambda c, u, p: messages_q.list_conversation_json(c, u, p, **page),
            {"messages_sender_receiver_id_idx"},
        ),
        (
            "conversations list",
            lambda c, u, p: messages_q.list_conversations_json(c, u, limit=50),
            {"conversations_user_id_last_message_id_idx", "messages_pkey"},
        ),
        (
            "notifications, all",
            lambda c, u, p: notifications_q.list_notifications_json(c, u, **page),
            {"notifications_user_id_id_idx"},
        ),
        (
            "notifications, unread",
            lambda c, u, p: notifications_q.list_unread_notifications_json(c, u, **page),
            {"notifications_user_id_unread_idx"},
        ),
        (
            "notifications, read",
            lambda c, u, p: notifications_q.list_read_notifications_json(c, u, **page),
            {"notifications_user_id_id_idx"},
        ),
        (
            "credit transactions",
            lambda c, u, p: credits_q.list_transactions_json(c, u, **page),
            {"credit_transactions_user_id_id_idx"},
        ),
        (
            "event replay",
            lambda c, u, p: events_q.list_events_after(
                c, u, 10, ["message.receive", "notification.receive"], None, 500
            ),
            {"user_events_pkey"},
        ),
        (
            "event replay, one chat",
            lambda c, u, p: events_q.list_events_after(c, u, 10, ["message.receive"], p, 500),
            {"user_events_pkey"},
        ),
        (
            "user skills",
            lambda c, u, p: skills_q.list_user_skills_json(c, u, **page),
            {"user_skills_user_category_skill_key"},
        ),
        (
            "availability",
            lambda c, u, p: availability_q.list_windows_json(c, u),
            {"user_availability_no_overlap_excl"},
        ),
        (
            "public profile",
            lambda c, u, p: experts_q.get_public_profile(c, u),
            {"users_pkey", "meetings_expert_id_id_idx", "reviews_reviewee_id_id_idx"},
        ),
        (
            "public profile reviews",
            lambda c, u, p: experts_q.list_reviews_received(c, u, limit=50),
            {"reviews_reviewee_id_id_idx"},
        ),
        (
            "free slots: hours, confirmed meetings, the viewer's own requests",
            lambda c, u, p: experts_q.get_schedule(
                c,
                u,
                dt.datetime.now(dt.UTC),
                dt.datetime.now(dt.UTC) + dt.timedelta(days=31),
                viewer_id=p,
            ),
            {
                "users_pkey",
                "user_availability_no_overlap_excl",
                "user_busy_intervals_no_overlap_excl",
                "meetings_requester_pending_idx",
            },
        ),
        (
            "open requests of a requester (booking)",
            lambda c, u, p: meetings_q.count_open_requests(c, u, up_to=20),
            {"meetings_requester_pending_idx"},
        ),
        (
            "experts list",
            lambda c, u, p: experts_q.list_experts_json(
                c, category_id=None, min_rating=None, available_at=None, viewer_id=p, **page
            ),
            {"users_pkey"},
        ),
        (
            "experts list, filtered",
            lambda c, u, p: experts_q.list_experts_json(
                c,
                category_id=3,
                min_rating=3.0,
                available_at=dt.datetime(2031, 1, 6, 10, tzinfo=dt.UTC),
                viewer_id=p,
                **page,
            ),
            {"users_pkey", "user_busy_intervals_no_overlap_excl", "meetings_requester_pending_idx"},
        ),
        (
            "experts search",
            lambda c, u, p: experts_q.search_experts_json(
                c,
                f"{tag_word}7",
                category_id=None,
                min_rating=None,
                available_at=None,
                viewer_id=p,
                limit=50,
            ),
            {"users_search_document_idx"},
        ),
        (
            "experts search, filtered",
            lambda c, u, p: experts_q.search_experts_json(
                c,
                f"{tag_word}7 consulting",
                category_id=2,
                min_rating=3.0,
                available_at=dt.datetime(2031, 1, 6, 10, tzinfo=dt.UTC),
                viewer_id=p,
                limit=50,
            ),
            {
                "users_search_document_idx",
                "user_busy_intervals_no_overlap_excl",
                "meetings_requester_pending_idx",
            },
        ),
    ]


def test_every_list_query_is_served_by_an_index(server, database_dsn):
    """`server` migrated the database."""

    async def go():
        conn = await asyncpg.connect(database_dsn, command_timeout=120)
        try:
            ids, tag_word = await seed(conn)
            busy, peer, typical = ids[0], ids[1], ids[len(ids) // 2]
            meeting_id = await conn.fetchval(
                "SELECT id FROM meetings WHERE requester_id = $1 ORDER BY id DESC LIMIT 1", busy
            )
            explain = Explain(conn)
            results = []
            for name, call, expected in list_queries(tag_word):
                for who, user in (("busy", busy), ("typical", typical)):
                    explain.plans.clear()
                    try:
                        await call(explain, user, peer)
                    except IndexError:  # list_events_after reads rows[0] of no rows
                        pass
                    assert len(explain.plans) == 1, name
                    results.append((f"{name} ({who} user)", explain.plans[0], expected))
            explain.plans.clear()
            await reviews_q.list_reviews_of_meeting(explain, meeting_id)
            results.append(
                ("reviews of a meeting", explain.plans[0], {"reviews_meeting_reviewer_key"})
            )
            return results
        finally:
            await conn.close()

    results = asyncio.run(go())
    problems = []
    for name, plan, expected in results:
        seq, indexes = scans(plan)
        if seq & BIG_TABLES:
            problems.append(f"{name}: Seq Scan on {sorted(seq & BIG_TABLES)}\n{outline(plan)}")
        missing = [e for e in expected if not set(e if isinstance(e, tuple) else (e,)) & indexes]
        if missing:
            problems.append(f"{name}: {missing} unused\n{outline(plan)}")
    assert not problems, "\n".join(problems)
