"""A stranger must not be able to change what everyone else sees of an expert cheaply: pending
requests do not blank free slots or hide the expert from `available_at` searches (only
confirmed meetings do; a requester's own pending requests stay taken in their own view), and
one requester holds at most meetings.max_open_requests pending requests, even when racing."""

import concurrent.futures
import datetime as dt
import json
import threading
import uuid
from types import SimpleNamespace

import pytest

from expertconnect.config import ConfigError, load_config

from .probes import assert_json_error, raw, register

UTC = dt.UTC
# A Monday far enough ahead that no request expires during the test (start in the future,
# created now: pending_ttl_hours does not matter).
MONDAY = dt.date.today() + dt.timedelta(days=14 + (7 - dt.date.today().weekday()) % 7)
DAY = {"from": f"{MONDAY}T00:00:00Z", "to": f"{MONDAY + dt.timedelta(days=1)}T00:00:00Z"}
# The expert's hours, 09:00-12:00 UTC on Mondays: three one-hour slots.
HOURS = [f"{MONDAY}T{h:02d}:00:00Z" for h in (9, 10, 11)]
TOO_MANY = (
    "You have {n} open meeting requests, the most allowed at once: "
    "wait for an answer or cancel one first."
)


def request_body(expert_id: int, start: str, end: str) -> dict:
    return {
        "title": "Whole morning",
        "expert_id": expert_id,
        "category_id": 1,
        "scheduled_start": start,
        "scheduled_end": end,
    }


def add_hours(api, user) -> None:
    """09:00-12:00 UTC on Mondays."""
    r = api(
        "POST",
        "/api/user-availability/",
        token=user.token,
        json={"day_of_week": 1, "start_time": "09:00", "end_time": "12:00"},
    )
    assert r.status == 201, r.text


@pytest.fixture
def calendar(api, make_user):
    """An expert with Monday hours and a skill only this test searches for; a stranger who
    requests the whole morning; a client who only looks."""
    word = "zc" + uuid.uuid4().hex[:10]
    expert, stranger, client = make_user(last_name=word), make_user(), make_user()
    add_hours(api, expert)
    r = api(
        "POST",
        "/api/user-skills/",
        token=expert.token,
        json={"category": 1, "skill_name": "Scheduling", "proficiency_level": "expert"},
    )
    assert r.status == 201, r.text
    r = api(
        "POST",
        "/api/meetings/",
        token=stranger.token,
        json=request_body(expert.id, f"{MONDAY}T09:00:00Z", f"{MONDAY}T12:00:00Z"),
    )
    assert r.status == 201, r.text
    return SimpleNamespace(
        expert=expert, stranger=stranger, client=client, word=word, request=r.json["id"]
    )


def free_starts(api, viewer, user) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in DAY.items())
    r = api("GET", f"/api/users/{user.id}/slots/?{query}", token=viewer.token)
    assert r.status == 200, r.text
    return [slot["start"] for slot in r.json]


def found_free(api, viewer, calendar, at: str) -> bool:
    """Is the expert free at `at` for `viewer`: the ranked search and the plain list agree."""
    found = []
    for query in (f"q={calendar.word}&", "limit=200&"):
        r = api("GET", f"/api/experts/?{query}available_at={at}", token=viewer.token)
        assert r.status == 200, r.text
        found.append(calendar.expert.id in [e["id"] for e in r.json])
    assert found[0] == found[1], found
    return found[0]


def test_a_strangers_pending_request_does_not_blank_the_calendar_for_anyone_else(api, calendar):
    assert free_starts(api, calendar.client, calendar.expert) == HOURS
    # The expert has not accepted it: their own view stays free too.
    assert free_starts(api, calendar.expert, calendar.expert) == HOURS
    # The requester sees their own request as taken, so they do not ask twice.
    assert free_starts(api, calendar.stranger, calendar.expert) == []


def test_a_strangers_pending_request_does_not_hide_the_expert_from_search(api, calendar):
    at = f"{MONDAY}T10:30:00Z"
    assert found_free(api, calendar.client, calendar, at)
    assert found_free(api, calendar.expert, calendar, at)
    assert not found_free(api, calendar.stranger, calendar, at)


def test_once_confirmed_the_time_is_taken_for_everyone(api, calendar):
    add_hours(api, calendar.stranger)
    assert free_starts(api, calendar.client, calendar.stranger) == HOURS
    r = api(
        "PATCH",
        f"/api/meetings/{calendar.request}/update_status/",
        token=calendar.expert.token,
        json={"status": "confirmed"},
    )
    assert r.status == 200, r.text
    for viewer in (calendar.client, calendar.expert, calendar.stranger):
        assert free_starts(api, viewer, calendar.expert) == []
        assert not found_free(api, viewer, calendar, f"{MONDAY}T10:30:00Z")
    # The requester is taken then too, as everyone sees it.
    assert free_starts(api, calendar.client, calendar.stranger) == []


def test_a_requesters_own_requests_elsewhere_do_not_show_on_another_experts_calendar(
    api, calendar, make_user
):
    other_expert = make_user()
    add_hours(api, other_expert)
    # The stranger asked for 09:00-12:00 of `expert`, not of `other_expert`: whether to ask
    # two experts for the same hour is the requester's choice.
    assert free_starts(api, calendar.stranger, other_expert) == HOURS
    # Their own calendar, as they see it, holds the request; as others see it, it does not.
    add_hours(api, calendar.stranger)
    assert free_starts(api, calendar.stranger, calendar.stranger) == []
    assert free_starts(api, calendar.client, calendar.stranger) == HOURS


# ---------------------------------------------------------------- open requests per requester


def _book(url: str, requester: SimpleNamespace, expert_id: int, hour: int):
    start = dt.datetime.combine(MONDAY, dt.time(hour % 24), tzinfo=UTC)
    end = start + dt.timedelta(minutes=30)
    body = request_body(
        expert_id, start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return raw(url, "POST", "/api/meetings/", token=requester.token, body=json.dumps(body))


def _set_status(url, user, meeting_id, status):
    body = json.dumps({"status": status})
    r = raw(url, "PATCH", f"/api/meetings/{meeting_id}/update_status/", token=user.token, body=body)
    assert r.status == 200, r.text


def test_a_requester_holds_at_most_max_open_requests(start_server, db):
    own = start_server(MEETINGS_MAX_OPEN_REQUESTS="3")
    requester, expert, other_expert, someone = (
        SimpleNamespace(**register(own.url)) for _ in range(4)
    )
    held = [_book(own.url, requester, expert.id, h) for h in range(3)]
    assert [r.status for r in held] == [201, 201, 201]
    # Per requester, whoever the expert: a fourth request to anyone is refused.
    for expert_id in (expert.id, other_expert.id):
        r = _book(own.url, requester, expert_id, 5)
        assert assert_json_error(r, 400) == {"error": TOO_MANY.format(n=3)}
    assert db.fetchval("SELECT count(*) FROM meetings WHERE requester_id = $1", requester.id) == 3
    # Someone else's requests are their own business.
    assert _book(own.url, someone, expert.id, 5).status == 201
    # An answered request is no longer open: cancelled by the requester, or confirmed.
    _set_status(own.url, requester, held[0].json["id"], "cancelled")
    assert _book(own.url, requester, expert.id, 6).status == 201
    assert _book(own.url, requester, expert.id, 7).status == 400
    _set_status(own.url, expert, held[1].json["id"], "confirmed")
    assert _book(own.url, requester, expert.id, 8).status == 201
    assert _book(own.url, requester, expert.id, 9).status == 400


def test_concurrent_requests_never_pass_the_cap(start_server, db):
    cap, attempts = 5, 40
    own = start_server(MEETINGS_MAX_OPEN_REQUESTS=str(cap))
    requester = SimpleNamespace(**register(own.url))
    experts = [SimpleNamespace(**register(own.url)) for _ in range(4)]
    barrier = threading.Barrier(attempts, timeout=30)

    def attempt(i: int) -> int:
        barrier.wait()
        return _book(own.url, requester, experts[i % len(experts)].id, i).status

    with concurrent.futures.ThreadPoolExecutor(attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts), timeout=60))
    assert sorted(statuses) == [201] * cap + [400] * (attempts - cap), statuses
    assert (
        db.fetchval(
            "SELECT count(*) FROM meetings WHERE requester_id = $1 AND status = 'pending'",
            requester.id,
        )
        == cap
    )
    # Exactly one notification per stored request: the refused ones left no trace.
    assert (
        db.fetchval(
            """SELECT count(*) FROM notifications n JOIN meetings m ON m.id = n.related_id
               WHERE m.requester_id = $1 AND n.notification_type = 'meeting_request'""",
            requester.id,
        )
        == cap
    )


def test_max_open_requests_config_default_and_rules(tmp_path):
    assert load_config(None, environ={}).meetings.max_open_requests == 20
    for bad in ("0", "-1", "2.5", "many", "10001"):
        with pytest.raises(ConfigError, match=r"meetings\.max_open_requests"):
            load_config(None, environ={"EXPERTCONNECT_MEETINGS_MAX_OPEN_REQUESTS": bad})
    path = tmp_path / "config.yaml"
    path.write_text("meetings:\n  max_open_requests: 7\n")
    assert load_config(path, environ={}).meetings.max_open_requests == 7
