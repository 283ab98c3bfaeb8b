"""Reminders: a meeting_reminder to both parties meetings.reminder_minutes before a confirmed
meeting starts, stored and pushed live, once per meeting and person across processes and
restarts; 0 turns them off."""

import asyncio
import datetime as dt
import time

from helpers import recv


def _at(minutes: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def book(api, requester, expert, starts_in_minutes):
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "Reminded",
            "expert_id": expert.id,
            "category_id": 1,
            "scheduled_start": _at(starts_in_minutes),
            "scheduled_end": _at(starts_in_minutes + 30),
        },
    )
    assert r.status == 201, r.text
    return r.json["id"]


def confirm(api, expert, meeting_id):
    r = api(
        "PATCH",
        f"/api/meetings/{meeting_id}/update_status/",
        token=expert.token,
        json={"status": "confirmed"},
    )
    assert r.status == 200, r.text


def reminders(db, meeting_id) -> list:
    return db.fetch(
        """SELECT user_id, title, content FROM notifications
           WHERE related_id = $1 AND notification_type = 'meeting_reminder'
           ORDER BY user_id""",
        meeting_id,
    )


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


async def test_both_parties_are_reminded_once_across_processes_and_restarts(
    start_server, api, make_user, db
):
    requester, expert = make_user(), make_user()
    # Booked outside the 30-minute window of the servers below, confirmed once they run.
    soon = book(api, requester, expert, 20)
    later = book(api, requester, expert, 90)
    pending = book(api, requester, expert, 25)
    servers = [
        start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.1", MEETINGS_REMINDER_MINUTES="30")
        for _ in range(2)
    ]
    # Confirmed inside the window: the next sweep reminds of it.
    confirm(api, expert, soon)
    confirm(api, expert, later)
    await asyncio.to_thread(wait_for, lambda: len(reminders(db, soon)) == 2)
    assert [r["user_id"] for r in reminders(db, soon)] == sorted([requester.id, expert.id])
    for row in reminders(db, soon):
        assert row["title"] == "Meeting Reminder"
        assert row["content"].startswith("Your meeting 'Reminded' starts at ")
    # Through the outbox: one event per person in the log that sockets are fed from.
    for user_id in (requester.id, expert.id):
        events = db.fetch(
            "SELECT payload FROM user_events WHERE user_id = $1 AND payload::text LIKE $2",
            user_id,
            "%meeting_reminder%",
        )
        assert len(events) == 1
    # A restart remembers: nobody is reminded twice.
    servers[0].stop()
    start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.1", MEETINGS_REMINDER_MINUTES="30")
    await asyncio.sleep(0.5)
    assert len(reminders(db, soon)) == 2
    # Outside the window and not confirmed: no reminder.
    assert reminders(db, later) == [] and reminders(db, pending) == []
    assert db.fetchval("SELECT reminded_at FROM meetings WHERE id = $1", later) is None


async def test_a_reminder_is_pushed_live(start_server, ws, api, make_user):
    requester, expert = make_user(), make_user()
    meeting_id = book(api, requester, expert, 20)
    server = start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.1", MEETINGS_REMINDER_MINUTES="30")
    conn = await ws("/ws/notifications/", requester.token, url=server.url)
    confirm(api, expert, meeting_id)
    frame = await recv(conn)
    assert frame["notification"]["notification_type"] == "meeting_confirmed"
    frame = await recv(conn)
    assert (frame["notification"]["notification_type"], frame["notification"]["related_id"]) == (
        "meeting_reminder",
        meeting_id,
    )


def test_reminder_minutes_zero_sends_none(start_server, api, make_user, db):
    requester, expert = make_user(), make_user()
    # 20 minutes ahead: outside the session server's default 15-minute window.
    meeting_id = book(api, requester, expert, 20)
    confirm(api, expert, meeting_id)
    server = start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.1", MEETINGS_REMINDER_MINUTES="0")
    time.sleep(0.6)
    assert reminders(db, meeting_id) == []
    assert "sweep step" not in server.log_text()
