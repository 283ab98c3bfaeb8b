"""Booking rules the database enforces: availability (in the expert's time zone), no overlapping
confirmed meetings (also under concurrent confirmations), and expiry of stale pending requests
by the periodic task, once even with several processes."""

import asyncio
import datetime as dt
import json
import re
import threading
import time
import zoneinfo

import asyncpg
import pytest

from expertconnect.config import ConfigError, load_config
from expertconnect.db.queries import meetings as meetings_q

NOT_AVAILABLE = {"errors": {"scheduled_start": ["The expert is not available at that time."]}}
OVERLAP = {"error": "This meeting overlaps another confirmed meeting"}
EXPIRED_TITLE = "Meeting Request Expired"
UTC = dt.UTC


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _weekday_after(days: int, weekday: int) -> dt.date:
    """The first date at least `days` from today that falls on `weekday` (Monday = 0)."""
    day = dt.datetime.now(UTC).date() + dt.timedelta(days=days)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _pg_dow(day: dt.date) -> int:
    """user_availability.day_of_week: 0 = Sunday .. 6 = Saturday."""
    return (day.weekday() + 1) % 7


def _at(day: dt.date, hhmm: str, tz=UTC) -> dt.datetime:
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def request(api, requester, expert, start: dt.datetime, end: dt.datetime):
    return api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "Architecture review",
            "expert_id": expert.id,
            "category_id": 1,
            "scheduled_start": _iso(start),
            "scheduled_end": _iso(end),
        },
    )


def book(api, requester, expert, start, end) -> dict:
    r = request(api, requester, expert, start, end)
    assert r.status == 201, r.text
    return r.json


def set_status(api, user, meeting_id, status):
    return api(
        "PATCH",
        f"/api/meetings/{meeting_id}/update_status/",
        token=user.token,
        json={"status": status},
    )


def add_slot(api, user, day_of_week, start, end):
    r = api(
        "POST",
        "/api/user-availability/",
        token=user.token,
        json={"day_of_week": day_of_week, "start_time": start, "end_time": end},
    )
    assert r.status == 201, r.text


def status_of(db, meeting_id) -> str:
    return db.fetchval("SELECT status FROM meetings WHERE id = $1", meeting_id)


# ---------------------------------------------------------------- availability


def test_an_expert_without_availability_can_be_booked_at_any_time(api, make_user):
    requester, expert = make_user(), make_user()
    day = _weekday_after(3, 6)
    book(api, requester, expert, _at(day, "03:17"), _at(day, "04:02"))
    book(api, requester, expert, _at(day, "23:30"), _at(day, "23:30") + dt.timedelta(hours=1))


def test_a_request_must_fit_inside_one_slot(api, make_user, db):
    requester, expert = make_user(), make_user()
    monday = _weekday_after(8, 0)
    add_slot(api, expert, _pg_dow(monday), "09:00", "12:00")
    add_slot(api, expert, _pg_dow(monday), "12:00", "17:00")
    book(api, requester, expert, _at(monday, "09:00"), _at(monday, "10:00"))
    book(api, requester, expert, _at(monday, "16:00"), _at(monday, "17:00"))
    book(api, requester, expert, _at(monday, "12:00"), _at(monday, "12:30"))

    tuesday = monday + dt.timedelta(days=1)
    refused = [
        (_at(monday, "08:30"), _at(monday, "09:30")),  # starts before the slot
        (_at(monday, "16:30"), _at(monday, "17:30")),  # ends after it
        (_at(monday, "11:30"), _at(monday, "12:30")),  # spans two touching slots
        (_at(monday, "07:00"), _at(monday, "08:00")),  # outside every slot
        (_at(tuesday, "09:00"), _at(tuesday, "10:00")),  # a day with no slot
    ]
    for start, end in refused:
        r = request(api, requester, expert, start, end)
        assert (r.status, r.json) == (400, NOT_AVAILABLE), (start, end)
    assert db.fetchval("SELECT count(*) FROM meetings WHERE expert_id = $1", expert.id) == 3
    assert db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", expert.id) == 3


def test_availability_is_read_in_the_experts_time_zone_across_daylight_saving(api, make_user, db):
    requester, expert = make_user(), make_user()
    new_york = zoneinfo.ZoneInfo("America/New_York")
    db.execute("UPDATE users SET timezone = 'America/New_York' WHERE id = $1", expert.id)
    year = dt.datetime.now(UTC).year + 1
    # The first Mondays of January (EST, UTC-5) and July (EDT, UTC-4) of next year.
    winter = next(dt.date(year, 1, d) for d in range(1, 8) if dt.date(year, 1, d).weekday() == 0)
    summer = next(dt.date(year, 7, d) for d in range(1, 8) if dt.date(year, 7, d).weekday() == 0)
    add_slot(api, expert, 1, "09:00", "17:00")

    for day in (winter, summer):
        book(api, requester, expert, _at(day, "09:00", new_york), _at(day, "10:00", new_york))
        book(api, requester, expert, _at(day, "16:00", new_york), _at(day, "17:00", new_york))
        r = request(
            api, requester, expert, _at(day, "08:00", new_york), _at(day, "09:00", new_york)
        )
        assert (r.status, r.json) == (400, NOT_AVAILABLE), day
        # 09:00-10:00 UTC is 04:00/05:00 in New York: read as UTC it would have fitted.
        r = request(api, requester, expert, _at(day, "09:00"), _at(day, "10:00"))
        assert (r.status, r.json) == (400, NOT_AVAILABLE), day

    # One UTC hour, two answers: 13:00 UTC is 08:00 EST in January, 09:00 EDT in July.
    r = request(api, requester, expert, _at(winter, "13:00"), _at(winter, "14:00"))
    assert (r.status, r.json) == (400, NOT_AVAILABLE)
    book(api, requester, expert, _at(summer, "13:00"), _at(summer, "14:00"))


def test_a_meeting_across_the_experts_local_midnight_never_fits(api, make_user):
    requester, expert = make_user(), make_user()
    monday = _weekday_after(8, 0)
    tuesday = monday + dt.timedelta(days=1)
    add_slot(api, expert, _pg_dow(monday), "20:00", "23:59:59")
    add_slot(api, expert, _pg_dow(tuesday), "00:00", "04:00")
    book(api, requester, expert, _at(monday, "23:00"), _at(monday, "23:59"))
    book(api, requester, expert, _at(tuesday, "00:00"), _at(tuesday, "01:00"))
    r = request(api, requester, expert, _at(monday, "23:30"), _at(tuesday, "00:30"))
    assert (r.status, r.json) == (400, NOT_AVAILABLE)


def test_an_unknown_expert_is_still_a_field_error_on_expert_id(api, make_user, db):
    requester = make_user()
    missing = db.fetchval("SELECT max(id) + 1000 FROM users")
    day = _weekday_after(3, 2)
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "x",
            "expert_id": missing,
            "category_id": 1,
            "scheduled_start": _iso(_at(day, "10:00")),
            "scheduled_end": _iso(_at(day, "11:00")),
        },
    )
    assert r.status == 400
    assert r.json == {"errors": {"expert_id": ["Expert with this ID does not exist."]}}


# ---------------------------------------------------------------- no double booking


def test_an_expert_cannot_confirm_two_overlapping_meetings(api, make_user, db):
    expert = make_user()
    r1, r2, r3 = make_user(), make_user(), make_user()
    day = _weekday_after(5, 3)
    first = book(api, r1, expert, _at(day, "10:00"), _at(day, "11:00"))
    overlapping = book(api, r2, expert, _at(day, "10:30"), _at(day, "11:00"))
    adjacent = book(api, r3, expert, _at(day, "11:00"), _at(day, "12:00"))

    assert set_status(api, expert, first["id"], "confirmed").status == 200
    r = set_status(api, expert, overlapping["id"], "confirmed")
    assert (r.status, r.json) == (400, OVERLAP)
    assert status_of(db, overlapping["id"]) == "pending"
    assert db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", r2.id) == 0
    # [10:00, 11:00) and [11:00, 12:00) touch but do not overlap.
    assert set_status(api, expert, adjacent["id"], "confirmed").status == 200

    # A cancelled meeting frees its time.
    assert set_status(api, r1, first["id"], "cancelled").status == 200
    assert set_status(api, expert, overlapping["id"], "confirmed").status == 200


def test_a_requester_cannot_have_two_overlapping_confirmed_meetings(api, make_user, db):
    requester, e1, e2 = make_user(), make_user(), make_user()
    day = _weekday_after(5, 4)
    a = book(api, requester, e1, _at(day, "10:00"), _at(day, "11:00"))
    b = book(api, requester, e2, _at(day, "10:59"), _at(day, "12:00"))
    assert set_status(api, e1, a["id"], "confirmed").status == 200
    r = set_status(api, e2, b["id"], "confirmed")
    assert (r.status, r.json) == (400, OVERLAP)
    assert status_of(db, b["id"]) == "pending"
    # Pending requests may overlap anything: only confirmed meetings take time.
    book(api, requester, e2, _at(day, "10:00"), _at(day, "11:00"))


def test_nobody_has_two_confirmed_meetings_at_once_even_in_different_roles(api, make_user, db):
    person, requester, expert = make_user(), make_user(), make_user()
    day = _weekday_after(6, 2)
    as_expert = book(api, requester, person, _at(day, "10:00"), _at(day, "11:00"))
    as_requester = book(api, person, expert, _at(day, "10:30"), _at(day, "11:30"))
    right_after = book(api, person, expert, _at(day, "11:00"), _at(day, "12:00"))
    assert set_status(api, person, as_expert["id"], "confirmed").status == 200
    r = set_status(api, expert, as_requester["id"], "confirmed")
    assert (r.status, r.json) == (400, OVERLAP)
    assert set_status(api, expert, right_after["id"], "confirmed").status == 200

    # The other way round: booked as requester first, then asked to confirm as expert.
    later = day + dt.timedelta(days=7)
    as_requester = book(api, person, expert, _at(later, "10:00"), _at(later, "11:00"))
    as_expert = book(api, requester, person, _at(later, "10:30"), _at(later, "11:30"))
    assert set_status(api, expert, as_requester["id"], "confirmed").status == 200
    r = set_status(api, person, as_expert["id"], "confirmed")
    assert (r.status, r.json) == (400, OVERLAP)
    assert status_of(db, as_expert["id"]) == "pending"


def test_busy_intervals_follow_the_confirmed_meetings(api, make_user, db):
    requester, expert = make_user(), make_user()
    day = _weekday_after(6, 3)
    meetings = [
        book(api, requester, expert, _at(day, f"{h:02d}:00"), _at(day, f"{h:02d}:30"))
        for h in (8, 9, 10, 11)
    ]
    ids = [m["id"] for m in meetings]
    for m in meetings:
        assert set_status(api, expert, m["id"], "confirmed").status == 200
    assert set_status(api, requester, ids[0], "cancelled").status == 200
    assert set_status(api, requester, ids[1], "completed").status == 200
    db.execute(
        "UPDATE meetings SET scheduled_end = scheduled_end + interval '5 minutes' WHERE id = $1",
        ids[2],
    )
    busy = db.fetch(
        "SELECT meeting_id, user_id, lower(during) AS s, upper(during) AS e "
        "FROM user_busy_intervals WHERE meeting_id = ANY($1) "
        "ORDER BY meeting_id, user_id",
        ids,
    )
    expected = db.fetch(
        """SELECT m.id AS meeting_id, p.user_id, m.scheduled_start AS s, m.scheduled_end AS e
           FROM meetings m CROSS JOIN LATERAL (VALUES (m.requester_id), (m.expert_id)) p (user_id)
           WHERE m.id = ANY($1) AND m.status = 'confirmed'
           ORDER BY m.id, p.user_id""",
        ids,
    )
    assert [dict(r) for r in busy] == [dict(r) for r in expected]
    assert {r["meeting_id"] for r in busy} == {ids[2], ids[3]}


def test_the_database_itself_refuses_overlapping_confirmed_meetings(api, make_user, db):
    """Even a write that bypasses the API: the rule is a constraint, not an application check."""
    requester, expert, other = make_user(), make_user(), make_user()
    day = _weekday_after(5, 5)
    a = book(api, requester, expert, _at(day, "10:00"), _at(day, "11:00"))
    b = book(api, other, expert, _at(day, "10:30"), _at(day, "11:30"))
    db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", a["id"])
    with pytest.raises(asyncpg.ExclusionViolationError) as caught:
        db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", b["id"])
    assert caught.value.constraint_name == "meetings_expert_no_overlap_excl"
    c = book(api, requester, other, _at(day, "10:45"), _at(day, "11:45"))
    with pytest.raises(asyncpg.ExclusionViolationError) as caught:
        db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", c["id"])
    assert caught.value.constraint_name == "meetings_requester_no_overlap_excl"
    # The expert of `a` asks `other` for a meeting at the same time: different roles.
    d = book(api, expert, other, _at(day, "10:15"), _at(day, "10:45"))
    with pytest.raises(asyncpg.ExclusionViolationError) as caught:
        db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", d["id"])
    assert caught.value.constraint_name == "user_busy_intervals_no_overlap_excl"
    # Inserting a confirmed meeting directly is checked the same way.
    with pytest.raises(asyncpg.ExclusionViolationError):
        db.execute(
            """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                            scheduled_start, scheduled_end)
                      VALUES ('x', $1, $2, 1, 'confirmed', $3, $4)""",
            other.id,
            requester.id,
            _at(day, "10:50"),
            _at(day, "11:10"),
        )


def test_concurrent_confirmations_of_overlapping_requests_exactly_one_wins(api, make_user, db):
    expert = make_user()
    requesters = [make_user() for _ in range(6)]
    for round_ in range(3):
        day = _weekday_after(10, 1) + dt.timedelta(weeks=round_)
        meetings = [
            book(
                api,
                r,
                expert,
                _at(day, "10:00") + dt.timedelta(minutes=5 * i),
                _at(day, "11:00") + dt.timedelta(minutes=5 * i),
            )
            for i, r in enumerate(requesters)
        ]
        barrier = threading.Barrier(len(meetings))
        results = {}

        def confirm(meeting, barrier=barrier, results=results):
            barrier.wait()
            results[meeting["id"]] = set_status(api, expert, meeting["id"], "confirmed")

        threads = [threading.Thread(target=confirm, args=(m,)) for m in meetings]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [mid for mid, r in results.items() if r.status == 200]
        assert len(winners) == 1, {mid: (r.status, r.text) for mid, r in results.items()}
        for mid, r in results.items():
            if mid != winners[0]:
                assert (r.status, r.json) == (400, OVERLAP)
        ids = [m["id"] for m in meetings]
        confirmed = db.fetch(
            "SELECT id FROM meetings WHERE id = ANY($1) AND status = 'confirmed'", ids
        )
        assert [row["id"] for row in confirmed] == winners
        confirmations = db.fetchval(
            """SELECT count(*) FROM notifications
               WHERE related_id = ANY($1) AND notification_type = 'meeting_confirmed'""",
            ids,
        )
        assert confirmations == 1


def test_racing_confirmations_across_roles_exactly_one_wins(api, make_user, db):
    """`person` confirms a request as expert while someone confirms person's own request for
    the same hour: whichever commits first wins, the other is refused."""
    person, requester, expert = make_user(), make_user(), make_user()
    for week in range(5):
        day = _weekday_after(12, 5) + dt.timedelta(weeks=week)
        as_expert = book(api, requester, person, _at(day, "10:00"), _at(day, "11:00"))
        as_requester = book(api, person, expert, _at(day, "10:30"), _at(day, "11:30"))
        barrier = threading.Barrier(2)
        results = {}

        def confirm(user, meeting, barrier=barrier, results=results):
            barrier.wait()
            results[meeting["id"]] = set_status(api, user, meeting["id"], "confirmed")

        threads = [
            threading.Thread(target=confirm, args=(person, as_expert)),
            threading.Thread(target=confirm, args=(expert, as_requester)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status for r in results.values()) == [200, 400]
        assert [r.json for r in results.values() if r.status == 400] == [OVERLAP]
        statuses = {status_of(db, m["id"]) for m in (as_expert, as_requester)}
        assert statuses == {"confirmed", "pending"}


# ---------------------------------------------------------------- expiry


def _soon(hours=24):
    start = dt.datetime.now(UTC) + dt.timedelta(hours=hours)
    return start, start + dt.timedelta(hours=1)


def age_start(db, meeting_id):
    """Move a meeting's time into the past (the API refuses past times, so after creation)."""
    db.execute(
        """UPDATE meetings SET scheduled_start = now() - interval '2 hours',
                                      scheduled_end = now() - interval '1 hour'
                  WHERE id = $1""",
        meeting_id,
    )


def age_request(db, meeting_id, hours=49):
    db.execute(
        "UPDATE meetings SET created_at = now() - make_interval(hours => $2) WHERE id = $1",
        meeting_id,
        hours,
    )


def expiry_notices(db, meeting_ids):
    return db.fetch(
        """SELECT * FROM notifications
           WHERE related_id = ANY($1) AND title = $2 ORDER BY related_id, user_id""",
        meeting_ids,
        EXPIRED_TITLE,
    )


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_a_due_request_cannot_be_confirmed_even_before_the_task_runs(api, make_user, db):
    requester, expert = make_user(), make_user()
    past_start = book(api, requester, expert, *_soon())
    too_old = book(api, requester, expert, *_soon(30))
    age_start(db, past_start["id"])
    age_request(db, too_old["id"])
    # The session server's expiry (every 60 s) may have cancelled it in between: also a refusal.
    for meeting in (past_start, too_old):
        r = set_status(api, expert, meeting["id"], "confirmed")
        assert r.status == 400
        assert r.json in (
            {"error": "This meeting request has expired"},
            {"error": "Cannot change status from cancelled to confirmed"},
        )
        assert status_of(db, meeting["id"]) != "confirmed"
    fresh = book(api, requester, expert, *_soon(40))
    age_request(db, fresh["id"], hours=47)
    assert set_status(api, expert, fresh["id"], "confirmed").status == 200


def test_stale_requests_are_cancelled_and_both_parties_notified(start_server, make_user, api, db):
    requester, expert = make_user(), make_user()
    started = book(api, requester, expert, *_soon())
    old = book(api, requester, expert, *_soon(30))
    fresh = book(api, requester, expert, *_soon(40))
    confirmed = book(api, requester, expert, *_soon(50))
    assert set_status(api, expert, confirmed["id"], "confirmed").status == 200
    age_start(db, started["id"])
    age_request(db, old["id"])
    age_request(db, fresh["id"], hours=47)
    age_start(db, confirmed["id"])  # a confirmed meeting that has begun is not a request

    start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="1")
    due = [started["id"], old["id"]]
    wait_for(lambda: len(expiry_notices(db, due)) == 4)

    assert [status_of(db, m) for m in due] == ["cancelled", "cancelled"]
    assert status_of(db, fresh["id"]) == "pending"
    assert status_of(db, confirmed["id"]) == "confirmed"
    notices = expiry_notices(db, due)
    assert [(n["related_id"], n["user_id"]) for n in notices] == sorted(
        (m, u) for m in due for u in (requester.id, expert.id)
    )
    for n in notices:
        assert n["notification_type"] == "meeting_cancelled" and not n["is_read"]
        assert n["content"] == (
            "The meeting request 'Architecture review' expired before it was confirmed."
        )
    # Through the outbox: each notification is also an event in its user's log.
    for user in (requester, expert):
        events = db.fetch("SELECT payload FROM user_events WHERE user_id = $1", user.id)
        pushed = {json.loads(e["payload"])["notification"]["id"] for e in events}
        assert {n["id"] for n in notices if n["user_id"] == user.id} <= pushed
    # The cancelled request is final: the expert can no longer confirm it.
    r = set_status(api, expert, started["id"], "confirmed")
    assert (r.status, r.json) == (
        400,
        {"error": "Cannot change status from cancelled to confirmed"},
    )


def test_two_processes_expire_each_request_exactly_once(start_server, make_user, db):
    requester, expert = make_user(), make_user()
    count = 60
    ids = [
        row["id"]
        for row in db.fetch(
            """INSERT INTO meetings (title, requester_id, expert_id, category_id,
                                 scheduled_start, scheduled_end)
           SELECT 'Stale ' || n, $1, $2, 1, now() + interval '1 day', now() + interval '25 hours'
           FROM generate_series(1, $3) n
           RETURNING id""",
            requester.id,
            expert.id,
            count,
        )
    ]
    for _ in range(2):
        start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.2")
    # Both processes are polling: make every request due at once.
    db.execute("UPDATE meetings SET created_at = now() - interval '3 days' WHERE id = ANY($1)", ids)
    wait_for(
        lambda: (
            db.fetchval(
                "SELECT count(*) FROM meetings WHERE id = ANY($1) AND status = 'cancelled'", ids
            )
            == count
        )
    )
    wait_for(lambda: len(expiry_notices(db, ids)) >= 2 * count)

    notices = expiry_notices(db, ids)
    assert len(notices) == 2 * count
    assert sorted((n["related_id"], n["user_id"]) for n in notices) == sorted(
        (m, u) for m in ids for u in (requester.id, expert.id)
    )
    for user in (requester, expert):
        assert db.fetchval("SELECT count(*) FROM user_events WHERE user_id = $1", user.id) == count


def test_the_expiry_scan_is_served_by_the_pending_indexes(database_dsn):
    class Explain:
        def __init__(self, conn):
            self.conn = conn
            self.plan = ""

        async def fetch(self, query, *args):
            rows = await self.conn.fetch("EXPLAIN " + query, *args)
            self.plan = "\n".join(r[0] for r in rows)
            return []

    async def go():
        conn = await asyncpg.connect(database_dsn)
        try:
            await conn.execute("SET enable_seqscan = off")
            explain = Explain(conn)
            await meetings_q.update_expired_to_cancelled(explain, ttl_hours=48, batch=100)
            return explain.plan
        finally:
            await conn.close()

    plan = asyncio.run(go())
    # On a small table any partial index of pending rows serves (both of 0004's, OR-ed, or
    # 0007's by requester): all hold pending rows only.
    assert re.search(
        r"meetings_pending_(scheduled_start|created_at)_idx|meetings_requester_pending_idx", plan
    ), plan
    assert "Seq Scan on meetings" not in plan


# ---------------------------------------------------------------- configuration


def test_meetings_config_defaults_and_rules(tmp_path):
    config = load_config(None, environ={})
    assert (config.meetings.pending_ttl_hours, config.meetings.expiry_interval_seconds) == (48, 60)
    for key, value in [
        ("PENDING_TTL_HOURS", "0"),
        ("PENDING_TTL_HOURS", "1.5"),
        ("EXPIRY_INTERVAL_SECONDS", "0"),
        ("EXPIRY_INTERVAL_SECONDS", "soon"),
    ]:
        with pytest.raises(ConfigError, match="meetings"):
            load_config(None, environ={f"EXPERTCONNECT_MEETINGS_{key}": value})
    path = tmp_path / "config.yaml"
    path.write_text("meetings:\n  pending_ttl_hours: 2\n  expiry_interval_seconds: 5\n")
    config = load_config(path, environ={})
    assert (config.meetings.pending_ttl_hours, config.meetings.expiry_interval_seconds) == (2, 5)
