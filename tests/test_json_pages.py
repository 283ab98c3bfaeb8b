"""Lists that PostgreSQL writes as JSON (db/queries' `_json` functions) answer exactly the bytes
wire.dumps would have written for the same rows: the SQL spellings of wire.py (timestamps,
floats, times of day) agree with the Python ones value for value, and every list body is
compact JSON with Python's escaping."""

from __future__ import annotations

import json

from expertconnect import wire

# Instants where a spelling could slip: years below 1000 (glibc's %Y), fractions that must be
# cut rather than rounded, offsets that move the UTC date, the epoch, leap days.
INSTANTS = [
    "0002-01-07 00:00:00+00",
    "0999-12-31 23:59:59.5-05",
    "1969-07-20 20:17:40.999999+00",
    "1970-01-01 00:00:00+00",
    "2024-02-29 23:30:00-01:30",
    "2025-03-20 10:00:00.000001+05:45",
    "2026-11-28 21:56:18.991319+00",
    "9999-12-31 23:59:59.999999+00",
]


def test_the_sql_timestamp_is_format_timestamp_for_every_instant_and_null(db):
    rows = db.fetch(
        f"""SELECT ts, {wire.sql_timestamp("ts")} AS spelled
            FROM unnest($1::text[]::timestamptz[] || NULL::timestamptz) ts""",
        INSTANTS,
    )
    assert len(rows) == len(INSTANTS) + 1
    for row in rows:
        expected = None if row["ts"] is None else wire.format_timestamp(row["ts"])
        assert row["spelled"] == expected, row["ts"]


def test_the_sql_float_is_what_json_dumps_writes_for_every_rating(db):
    # Every average a rating rounded to 2 decimals can be, from 1 to 5.
    rows = db.fetch(
        f"""SELECT x, {wire.sql_float("x")}::text AS spelled
            FROM (SELECT round(g / 100.0, 2)::float8 AS x FROM generate_series(100, 500) g
                  UNION ALL SELECT NULL) v"""
    )
    assert len(rows) == 402
    for row in rows:
        assert row["spelled"] == (None if row["x"] is None else wire.dumps(row["x"])), row["x"]


def test_the_sql_time_of_day_is_what_wire_dumps_writes(db):
    rows = db.fetch(
        f"""SELECT t, {wire.sql_time_of_day("t")} AS spelled
            FROM unnest(ARRAY['00:00', '09:05:07', '17:30:15.75', '23:59:59.999999']::time[]) t"""
    )
    for row in rows:
        assert json.dumps(row["spelled"]) == wire.dumps(row["t"])


def test_every_list_answers_the_bytes_wire_dumps_would_write(api, make_user, db):
    alice, bob = make_user(), make_user()
    # Text a JSON writer must escape: quotes, backslashes, control characters, and text it
    # must not (DEL, non-ASCII, a character outside the BMP, U+2028).
    tricky = 'q"b\\s\n\t\x01\x1f\x7f é 漢字 😀 \u2028 </script>'
    for n in range(3):
        api(
            "POST",
            "/api/messages/",
            token=alice.token,
            json={"receiver_id": bob.id, "content": f"{n}{tricky}"},
        )
    api("POST", "/api/messages/", token=bob.token, json={"receiver_id": alice.id, "content": "hi"})
    word = f"jsonpages{bob.id}"
    api(
        "POST",
        "/api/user-skills/",
        token=bob.token,
        json={"category": 1, "skill_name": f"{word} {tricky}", "proficiency_level": "expert"},
    )
    api(
        "POST",
        "/api/user-availability/",
        token=bob.token,
        json={"day_of_week": 2, "start_time": "09:00", "end_time": "17:30:15"},
    )
    # An old message, a notification without related id, and a completed meeting with a
    # review of 4 (an average of 4.0: a float, which PostgreSQL alone would write as 4).
    db.execute(
        "UPDATE messages SET created_at = '0002-01-07 00:00:00.9+00' WHERE id = "
        "(SELECT min(id) FROM messages WHERE sender_id = $1)",
        alice.id,
    )
    db.execute(
        "UPDATE notifications SET related_id = NULL WHERE id = "
        "(SELECT min(id) FROM notifications WHERE user_id = $1)",
        bob.id,
    )
    meeting_id = db.fetchval(
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                 scheduled_start, scheduled_end)
           VALUES ('Past', $1, $2, 1, 'completed', now() - interval '3 hours',
                   now() - interval '2 hours')
           RETURNING id""",
        alice.id,
        bob.id,
    )
    db.execute(
        """INSERT INTO reviews (meeting_id, reviewer_id, reviewee_id, rating, review_text)
           VALUES ($1, $2, $3, 4, $4)""",
        meeting_id,
        alice.id,
        bob.id,
        tricky,
    )
    lists = [
        (alice, "/api/meetings/"),
        (bob, "/api/meetings/?role=expert&status=completed"),
        (alice, f"/api/messages/?with_user={bob.id}"),
        (alice, "/api/messages/?limit=2"),
        (bob, "/api/conversations/"),
        (bob, "/api/notifications/"),
        (bob, "/api/notifications/?is_read=false"),
        (alice, "/api/credit-transactions/"),
        (alice, f"/api/user-skills/?user_id={bob.id}"),
        (alice, f"/api/user-availability/?user_id={bob.id}"),
        (alice, f"/api/experts/?q={word}"),
        (alice, f"/api/experts/?before_id={bob.id + 1}&limit=1"),
    ]
    for user, path in lists:
        answer = api("GET", path, token=user.token)
        assert answer.status == 200, (path, answer.text)
        assert answer.json, path
        assert answer.text == wire.dumps(answer.json), path
    conversation = api("GET", f"/api/messages/?with_user={bob.id}", token=alice.token).json
    assert conversation[-1]["created_at"] == "0002-01-07T00:00:00Z"
    assert conversation[-1]["content"] == f"0{tricky}"
    [card] = api("GET", f"/api/experts/?before_id={bob.id + 1}&limit=1", token=alice.token).json
    assert card["id"] == bob.id
    assert isinstance(card["average_rating"], float) and card["average_rating"] == 4.0
    assert card["skills"][0]["skill_name"] == f"{word} {tricky}"
    [window] = api("GET", f"/api/user-availability/?user_id={bob.id}", token=alice.token).json
    assert (window["start_time"], window["end_time"]) == ("09:00:00", "17:30:15")
