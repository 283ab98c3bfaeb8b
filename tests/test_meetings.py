"""Meetings: booking, detail, the status rules, lists, notifications and a concurrent change."""

import datetime as dt
import json
import threading

import pytest

MEETING_FIELDS = {
    "id",
    "title",
    "description",
    "requester_id",
    "requester_name",
    "expert_id",
    "expert_name",
    "status",
    "category_id",
    "category_name",
    "scheduled_start",
    "scheduled_end",
    "created_at",
    "price_credits",
}
# The detail adds what was paid for the meeting (and its reviews).
PAYMENT_FIELDS = {"paid_credits", "payment_status"}
NOT_FOUND = {"error": "Meeting not found"}


def _at(hours: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def meeting_body(expert, **overrides):
    body = {
        "title": "Python Debugging Session",
        "description": "A tricky bug",
        "expert_id": expert.id,
        "category_id": 1,
        "scheduled_start": _at(24),
        "scheduled_end": _at(25),
    }
    body.update(overrides)
    return body


def book(api, requester, expert, **overrides):
    r = api("POST", "/api/meetings/", token=requester.token, json=meeting_body(expert, **overrides))
    assert r.status == 201, r.text
    return r.json


def set_status(api, user, meeting_id, status):
    return api(
        "PATCH",
        f"/api/meetings/{meeting_id}/update_status/",
        token=user.token,
        json={"status": status},
    )


def meeting_in(api, requester, expert, state):
    """A meeting of requester with expert, moved through the API into `state` (completed by
    the requester: the expert may complete only a meeting that has started)."""
    meeting = book(api, requester, expert)
    path = {
        "pending": [],
        "confirmed": [(expert, "confirmed")],
        "completed": [(expert, "confirmed"), (requester, "completed")],
        "cancelled": [(expert, "cancelled")],
    }[state]
    for actor, status in path:
        assert set_status(api, actor, meeting["id"], status).status == 200
    return meeting


def notifications_of(db, user_id):
    return db.fetch("SELECT * FROM notifications WHERE user_id = $1 ORDER BY id", user_id)


def test_full_flow_book_confirm_complete_review_and_detail(api, make_user):
    requester, expert = make_user(), make_user()
    meeting = book(api, requester, expert)
    assert set(meeting) == MEETING_FIELDS
    assert meeting["status"] == "pending"
    assert (meeting["requester_id"], meeting["requester_name"]) == (requester.id, requester.name)
    assert (meeting["expert_id"], meeting["expert_name"]) == (expert.id, expert.name)
    assert meeting["category_name"] == "Software Development"

    r = set_status(api, expert, meeting["id"], "confirmed")
    assert r.status == 200
    assert set(r.json) == {"id", "status", "updated_at"}
    assert (r.json["id"], r.json["status"]) == (meeting["id"], "confirmed")
    r = set_status(api, requester, meeting["id"], "completed")
    assert r.status == 200 and r.json["status"] == "completed"

    r = api(
        "POST",
        "/api/reviews/",
        token=requester.token,
        json={
            "meeting_id": meeting["id"],
            "reviewee_id": expert.id,
            "rating": 5,
            "review_text": "Excellent session, very helpful!",
        },
    )
    assert r.status == 201, r.text
    review = r.json

    for viewer in (requester, expert):
        r = api("GET", f"/api/meetings/{meeting['id']}/", token=viewer.token)
        assert r.status == 200
        assert set(r.json) == MEETING_FIELDS | PAYMENT_FIELDS | {"reviews"}
        assert r.json["status"] == "completed"
        assert r.json["reviews"] == [
            {
                "id": review["id"],
                "reviewer_id": requester.id,
                "reviewer_name": requester.name,
                "reviewee_id": expert.id,
                "reviewee_name": expert.name,
                "rating": 5,
                "review_text": "Excellent session, very helpful!",
                "created_at": review["created_at"],
            }
        ]


def test_names_fall_back_to_the_username(api, make_user):
    requester, expert = make_user(first_name="", last_name=""), make_user(last_name="")
    meeting = book(api, requester, expert)
    assert meeting["requester_name"] == requester.username
    assert meeting["expert_name"] == expert.first_name


def test_booking_ignores_server_owned_fields(api, make_user):
    requester, expert, other = make_user(), make_user(), make_user()
    meeting = book(api, requester, expert, requester_id=other.id, status="completed", id=987654321)
    assert meeting["requester_id"] == requester.id
    assert meeting["status"] == "pending"
    assert meeting["id"] != 987654321
    assert meeting["description"] == "A tricky bug"
    no_description = book(api, requester, expert, description=None)
    assert no_description["description"] == ""


def test_booking_notifies_the_expert_through_the_event_log(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting = book(api, requester, expert)
    rows = notifications_of(db, expert.id)
    assert len(rows) == 1
    n = rows[0]
    assert (n["notification_type"], n["title"], n["related_id"], n["is_read"]) == (
        "meeting_request",
        "Meeting Request",
        meeting["id"],
        False,
    )
    assert n["content"] == f"You have a new meeting request from {requester.name}."
    assert notifications_of(db, requester.id) == []
    events = db.fetch("SELECT * FROM user_events WHERE user_id = $1", expert.id)
    assert len(events) == 1
    assert events[0]["event_type"] == "notification.receive"
    frame = json.loads(events[0]["payload"])
    assert frame["type"] == "notification.receive"
    assert frame["notification"]["id"] == n["id"]
    assert frame["notification"]["user_id"] == expert.id
    assert db.fetchval("SELECT count(*) FROM user_events WHERE user_id = $1", requester.id) == 0


def test_booking_reports_every_missing_field(api, make_user):
    requester = make_user()
    r = api("POST", "/api/meetings/", token=requester.token, json={})
    assert r.status == 400
    assert set(r.json["errors"]) == {
        "title",
        "expert_id",
        "category_id",
        "scheduled_start",
        "scheduled_end",
    }


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 5}, "title"),
        ({"description": "x" * 5001}, "description"),
        ({"expert_id": True}, "expert_id"),
        ({"expert_id": "2"}, "expert_id"),
        ({"expert_id": 1.5}, "expert_id"),
        ({"expert_id": 0}, "expert_id"),
        ({"expert_id": 2**63}, "expert_id"),
        ({"category_id": -1}, "category_id"),
        ({"category_id": 2**62}, "category_id"),
        ({"scheduled_start": "tomorrow"}, "scheduled_start"),
        ({"scheduled_start": 1700000000}, "scheduled_start"),
        (
            {"scheduled_start": "2020-01-01T10:00:00Z", "scheduled_end": "2020-01-01T11:00:00Z"},
            "scheduled_start",
        ),
        ({"scheduled_end": "9999-12-31T23:00:00-05:00"}, "scheduled_end"),
        ({"scheduled_start": _at(5), "scheduled_end": _at(5)}, "scheduled_end"),
        ({"scheduled_start": _at(5), "scheduled_end": _at(4)}, "scheduled_end"),
    ],
)
def test_booking_validation(api, make_user, db, overrides, field):
    requester, expert = make_user(), make_user()
    r = api("POST", "/api/meetings/", token=requester.token, json=meeting_body(expert, **overrides))
    assert r.status == 400, r.text
    assert set(r.json["errors"]) == {field}
    assert db.fetchval("SELECT count(*) FROM meetings WHERE requester_id = $1", requester.id) == 0


def test_booking_an_unknown_expert_or_category_or_yourself(api, make_user, db):
    requester, expert = make_user(), make_user()
    missing_user = db.fetchval("SELECT max(id) + 1000 FROM users")
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json=meeting_body(expert, expert_id=missing_user),
    )
    assert r.status == 400
    assert r.json == {"errors": {"expert_id": ["Expert with this ID does not exist."]}}
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json=meeting_body(expert, category_id=999999),
    )
    assert r.status == 400 and set(r.json["errors"]) == {"category_id"}
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json=meeting_body(expert, expert_id=requester.id),
    )
    assert r.status == 400 and set(r.json["errors"]) == {"expert_id"}
    assert db.fetchval("SELECT count(*) FROM meetings WHERE requester_id = $1", requester.id) == 0
    assert notifications_of(db, expert.id) == []


def test_times_without_an_offset_are_read_as_utc(api, make_user):
    requester, expert = make_user(), make_user()
    naive = book(
        api,
        requester,
        expert,
        scheduled_start="2031-05-01T10:00:00",
        scheduled_end="2031-05-01T11:30:00",
    )
    assert naive["scheduled_start"] == "2031-05-01T10:00:00Z"
    assert naive["scheduled_end"] == "2031-05-01T11:30:00Z"
    offset = book(
        api,
        requester,
        expert,
        scheduled_start="2031-05-01T10:00:00+02:00",
        scheduled_end="2031-05-01T11:00:00+02:00",
    )
    assert offset["scheduled_start"] == "2031-05-01T08:00:00Z"
    # A naive time just past is in the past in UTC, whatever the server's local zone.
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(tzinfo=None)
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json=meeting_body(
            expert, scheduled_start=past.isoformat(timespec="seconds"), scheduled_end=_at(1)
        ),
    )
    assert r.status == 400 and set(r.json["errors"]) == {"scheduled_start"}


# (state, actor, target, allowed)
TRANSITION_CASES = [
    ("pending", "expert", "confirmed", True),
    ("pending", "requester", "confirmed", False),
    ("pending", "requester", "cancelled", True),
    ("pending", "expert", "cancelled", True),
    ("pending", "expert", "completed", False),
    ("pending", "requester", "completed", False),
    ("pending", "expert", "pending", False),
    ("confirmed", "requester", "completed", True),
    # Not before the meeting has started (tests/test_escrow.py: after it, the expert may).
    ("confirmed", "expert", "completed", False),
    ("confirmed", "requester", "cancelled", True),
    ("confirmed", "expert", "cancelled", True),
    ("confirmed", "expert", "pending", False),
    ("confirmed", "requester", "confirmed", False),
    ("completed", "expert", "cancelled", False),
    ("completed", "requester", "pending", False),
    ("completed", "expert", "confirmed", False),
    ("completed", "requester", "completed", False),
    ("cancelled", "expert", "confirmed", False),
    ("cancelled", "requester", "pending", False),
    ("cancelled", "expert", "completed", False),
    ("cancelled", "requester", "cancelled", False),
]


@pytest.mark.parametrize("state, actor, target, allowed", TRANSITION_CASES)
def test_status_transition_rules(api, make_user, db, state, actor, target, allowed):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, state)
    user, other = (expert, requester) if actor == "expert" else (requester, expert)
    before = len(notifications_of(db, other.id))
    r = set_status(api, user, meeting["id"], target)
    stored = db.fetchval("SELECT status FROM meetings WHERE id = $1", meeting["id"])
    if allowed:
        assert r.status == 200, r.text
        assert r.json["status"] == target and stored == target
        latest = notifications_of(db, other.id)[-1]
        assert len(notifications_of(db, other.id)) == before + 1
        assert latest["notification_type"] == f"meeting_{target}"
        assert latest["title"] == f"Meeting {target.capitalize()}"
        assert latest["content"] == f"Your meeting '{meeting['title']}' has been {target}."
        assert latest["related_id"] == meeting["id"]
    else:
        assert r.status == 400
        if (state, target) == ("pending", "confirmed"):
            assert "error" in r.json
        elif (state, actor, target) == ("confirmed", "expert", "completed"):
            assert r.json == {
                "error": "The expert can mark a meeting completed only once it has started"
            }
        else:
            assert r.json == {"error": f"Cannot change status from {state} to {target}"}
        assert stored == state
        assert len(notifications_of(db, other.id)) == before


def test_status_change_validates_the_body(api, make_user):
    requester, expert = make_user(), make_user()
    meeting = book(api, requester, expert)
    for body in [{}, {"status": "done"}, {"status": None}, {"status": 1}]:
        r = api(
            "PATCH", f"/api/meetings/{meeting['id']}/update_status/", token=expert.token, json=body
        )
        assert r.status == 400 and set(r.json["errors"]) == {"status"}, body


def test_strangers_and_missing_ids_get_the_same_404_and_change_nothing(api, make_user, db):
    requester, expert, stranger = make_user(), make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    mid = meeting["id"]
    assert api("GET", f"/api/meetings/{mid}/", token=stranger.token).json == NOT_FOUND
    for path in [
        f"/api/meetings/{mid}/",
        "/api/meetings/9223372036854775807/",
        "/api/meetings/99999999999999999999/",
        "/api/meetings/abc/",
        "/api/meetings/0/",
    ]:
        r = api("GET", path, token=stranger.token)
        assert (r.status, r.json) == (404, NOT_FOUND), path
    pending = book(api, requester, expert)
    r = set_status(api, stranger, pending["id"], "cancelled")
    assert (r.status, r.json) == (404, NOT_FOUND)
    r = set_status(api, stranger, 9223372036854775807, "cancelled")
    assert (r.status, r.json) == (404, NOT_FOUND)
    assert db.fetchval("SELECT status FROM meetings WHERE id = $1", pending["id"]) == "pending"
    r = api(
        "POST",
        "/api/reviews/",
        token=stranger.token,
        json={"meeting_id": mid, "reviewee_id": expert.id, "rating": 1},
    )
    assert (r.status, r.json) == (404, NOT_FOUND)
    assert db.fetchval("SELECT count(*) FROM reviews WHERE meeting_id = $1", mid) == 0
    assert notifications_of(db, stranger.id) == []
    # The requester completed the first meeting, which told the expert.
    assert [n["notification_type"] for n in notifications_of(db, expert.id)] == [
        "meeting_request",
        "meeting_completed",
        "meeting_request",
    ]


def test_meetings_need_a_token(api):
    assert api("GET", "/api/meetings/").status == 401
    assert api("POST", "/api/meetings/", json={}).status == 401
    assert api("GET", "/api/meetings/1/").status == 401
    r = api("PATCH", "/api/meetings/1/update_status/", json={"status": "cancelled"})
    assert r.status == 401


def _ids(api, user, query=""):
    r = api("GET", "/api/meetings/" + query, token=user.token)
    assert r.status == 200, r.text
    return [m["id"] for m in r.json]


def test_list_shows_both_roles_newest_first_and_filters(api, make_user):
    me, expert, requester, stranger = make_user(), make_user(), make_user(), make_user()
    a = book(api, me, expert)["id"]
    # A day after c: nobody has two confirmed meetings at once, in any roles.
    b = book(api, requester, me, scheduled_start=_at(48), scheduled_end=_at(49))["id"]
    assert set_status(api, me, b, "confirmed").status == 200
    c = book(api, me, expert)["id"]
    assert set_status(api, expert, c, "confirmed").status == 200
    book(api, stranger, expert)

    assert _ids(api, me) == [c, b, a]
    assert _ids(api, me, "?role=requester") == [c, a]
    assert _ids(api, me, "?role=expert") == [b]
    assert _ids(api, me, "?status=confirmed") == [c, b]
    assert _ids(api, me, "?status=pending") == [a]
    assert _ids(api, me, "?status=confirmed&role=expert") == [b]
    assert _ids(api, me, "?status=cancelled") == []
    assert _ids(api, me, "?limit=2") == [c, b]
    assert _ids(api, me, f"?before_id={c}") == [b, a]
    assert _ids(api, me, f"?before_id={b}&limit=1") == [a]
    assert _ids(api, me, f"?before_id={c}&role=requester") == [a]
    listed = api("GET", "/api/meetings/", token=me.token).json
    assert all(set(m) == MEETING_FIELDS for m in listed)
    assert listed[1]["expert_name"] == me.name and listed[1]["requester_name"] == requester.name


@pytest.mark.parametrize(
    "query, field",
    [
        ("?status=done", "status"),
        ("?status=", "status"),
        ("?status=PENDING", "status"),
        ("?role=admin", "role"),
        ("?role=", "role"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?before_id=0", "before_id"),
        ("?before_id=1.5", "before_id"),
        ("?before_id=99999999999999999999", "before_id"),
    ],
)
def test_list_refuses_bad_query_parameters(api, make_user, query, field):
    user = make_user()
    r = api("GET", "/api/meetings/" + query, token=user.token)
    assert r.status == 400
    assert set(r.json["errors"]) == {field}


def test_concurrent_cancel_and_complete_exactly_one_wins(api, make_user, db):
    requester, expert = make_user(), make_user()
    for _ in range(5):
        meeting = meeting_in(api, requester, expert, "confirmed")
        barrier = threading.Barrier(2)
        results = {}

        def change(user, status, barrier=barrier, results=results, meeting=meeting):
            barrier.wait()
            results[status] = set_status(api, user, meeting["id"], status)

        threads = [
            threading.Thread(target=change, args=(expert, "cancelled")),
            threading.Thread(target=change, args=(requester, "completed")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [s for s, r in results.items() if r.status == 200]
        losers = [s for s, r in results.items() if r.status != 200]
        assert len(winners) == 1 and len(losers) == 1
        assert results[losers[0]].status == 400
        assert results[losers[0]].json == {
            "error": f"Cannot change status from {winners[0]} to {losers[0]}"
        }
        assert db.fetchval("SELECT status FROM meetings WHERE id = $1", meeting["id"]) == winners[0]
        notices = db.fetchval(
            """SELECT count(*) FROM notifications WHERE related_id = $1
               AND notification_type IN ('meeting_completed', 'meeting_cancelled')""",
            meeting["id"],
        )
        assert notices == 1
