"""Object-level authorization: an owner, the other participant of the owner's meetings, and a
stranger. Every id-taking route and method, tried with the stranger's token, answers exactly
what a missing id answers and changes nothing; only the requester can pay for a meeting."""

from types import SimpleNamespace

import pytest
from helpers import no_frame, recv

from .probes import book, meeting_in, raw, snapshot

MISSING_ID = 2**62  # a valid id that no row has


@pytest.fixture
def world(api, make_user):
    owner, other, stranger = make_user(), make_user(), make_user()
    pending = book(api, owner, other)
    completed = meeting_in(api, owner, other, "completed")
    # Moving `completed` notified the owner (meeting_confirmed; the owner completed it).
    notes = api("GET", "/api/notifications/", token=owner.token).json
    assert notes, "the owner should have notifications"
    skill = api(
        "POST",
        "/api/user-skills/",
        token=owner.token,
        json={"category": 1, "skill_name": "Threat modelling", "proficiency_level": "expert"},
    )
    slot = api(
        "POST",
        "/api/user-availability/",
        token=owner.token,
        json={"day_of_week": 2, "start_time": "09:00:00", "end_time": "10:00:00"},
    )
    message = api(
        "POST",
        "/api/messages/",
        token=owner.token,
        json={"receiver_id": other.id, "content": "private to other"},
    )
    assert (skill.status, slot.status, message.status) == (201, 201, 201)
    return SimpleNamespace(
        owner=owner,
        other=other,
        stranger=stranger,
        pending=pending["id"],
        completed=completed["id"],
        notification=notes[0]["id"],
        skill=skill.json["id"],
        slot=slot.json["id"],
        message=message.json["id"],
    )


# (name, method, path, body, who proves the id is real, the status they get). Paths and bodies
# are templates over the world's ids; {id} is the object under test.
ID_CASES = [
    ("meeting detail", "GET", "/api/meetings/{id}/", None, "pending", "other", 200),
    (
        "confirm meeting",
        "PATCH",
        "/api/meetings/{id}/update_status/",
        {"status": "confirmed"},
        "pending",
        "other",
        200,
    ),
    (
        "cancel meeting",
        "PATCH",
        "/api/meetings/{id}/update_status/",
        {"status": "cancelled"},
        "pending",
        "owner",
        200,
    ),
    (
        "complete meeting",
        "PATCH",
        "/api/meetings/{id}/update_status/",
        {"status": "completed"},
        "pending",
        "other",
        400,
    ),
    (
        "reopen meeting",
        "PATCH",
        "/api/meetings/{id}/update_status/",
        {"status": "pending"},
        "completed",
        "owner",
        400,
    ),
    (
        "pay for meeting",
        "POST",
        "/api/credits/transfer/",
        {"meeting_id": "{id}", "amount": 1},
        "pending",
        "owner",
        200,
    ),
    (
        "review the owner",
        "POST",
        "/api/reviews/",
        {"meeting_id": "{id}", "reviewee_id": "{owner}", "rating": 1},
        "completed",
        "other",
        201,
    ),
    (
        "review the other",
        "POST",
        "/api/reviews/",
        {"meeting_id": "{id}", "reviewee_id": "{other}", "rating": 1},
        "completed",
        "owner",
        201,
    ),
    ("read notification", "GET", "/api/notifications/{id}/", None, "notification", "owner", 200),
    (
        "mark notification read",
        "PATCH",
        "/api/notifications/{id}/",
        {"is_read": True},
        "notification",
        "owner",
        200,
    ),
    (
        "mark notification unread",
        "PATCH",
        "/api/notifications/{id}/",
        {"is_read": False},
        "notification",
        "owner",
        200,
    ),
    ("delete skill", "DELETE", "/api/user-skills/{id}/", None, "skill", "owner", 204),
    ("delete slot", "DELETE", "/api/user-availability/{id}/", None, "slot", "owner", 204),
]


def _fill(template, world, object_id):
    values = {"id": object_id, "owner": world.owner.id, "other": world.other.id}
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template.count("{") == 1:
            return values[template[1:-1]]
        return template.format(**values)
    if isinstance(template, dict):
        return {k: _fill(v, world, object_id) for k, v in template.items()}
    return template


@pytest.mark.parametrize(
    "name,method,path,body,target,prover,proof", ID_CASES, ids=[c[0] for c in ID_CASES]
)
def test_a_stranger_gets_the_missing_id_answer_and_changes_nothing(
    api, db, world, name, method, path, body, target, prover, proof
):
    real_id = getattr(world, target)
    before = snapshot(db, world.owner, world.other, world.stranger)

    def attempt(object_id, user):
        return api(
            method,
            _fill(path, world, object_id),
            token=user.token,
            json=_fill(body, world, object_id),
        )

    theirs = attempt(real_id, world.stranger)
    missing = attempt(MISSING_ID, world.stranger)
    assert theirs.status == 404, theirs.text
    assert (theirs.status, theirs.text) == (missing.status, missing.text)
    assert theirs.json["error"].endswith("not found")
    assert theirs.headers["Content-Type"] == missing.headers["Content-Type"]
    assert snapshot(db, world.owner, world.other, world.stranger) == before

    # The id was real: a participant gets past the 404.
    assert attempt(real_id, getattr(world, prover)).status == proof


ID_ROUTES = [
    ("/api/meetings/{}/", "pending"),
    ("/api/meetings/{}/update_status/", "pending"),
    ("/api/notifications/{}/", "notification"),
    ("/api/user-skills/{}/", "skill"),
    ("/api/user-availability/{}/", "slot"),
]


@pytest.mark.parametrize("route,target", ID_ROUTES, ids=[r[0] for r in ID_ROUTES])
def test_every_method_on_an_id_route_looks_the_same_for_a_foreign_and_a_missing_id(
    server, db, world, route, target
):
    """Not only the documented methods: a 405 must not differ either."""
    before = snapshot(db, world.owner, world.other, world.stranger)
    body = '{"status": "cancelled", "is_read": true}'
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        theirs = raw(
            server.url,
            method,
            route.format(getattr(world, target)),
            body=body,
            token=world.stranger.token,
        )
        missing = raw(
            server.url, method, route.format(MISSING_ID), body=body, token=world.stranger.token
        )
        assert theirs.status in (404, 405), (method, theirs.text)
        assert (theirs.status, theirs.text) == (missing.status, missing.text), method
    assert snapshot(db, world.owner, world.other, world.stranger) == before


def test_lists_and_the_with_user_filter_never_show_other_peoples_data(api, db, world):
    stranger = world.stranger
    for query in (f"?with_user={world.owner.id}", f"?with_user={world.other.id}", ""):
        r = api("GET", f"/api/messages/{query}", token=stranger.token)
        assert r.status == 200 and r.json == [], query
    for path in (
        "/api/meetings/",
        "/api/meetings/?role=requester",
        "/api/meetings/?role=expert",
        "/api/notifications/",
        "/api/notifications/?is_read=false",
        "/api/credit-transactions/",
    ):
        r = api("GET", path, token=stranger.token)
        assert r.status == 200, path
        assert all(
            stranger.id
            in (row.get("user_id"), row.get("user"), row.get("requester_id"), row.get("expert_id"))
            for row in r.json
        ), path
    assert api("GET", "/api/notifications/unread_count/", token=stranger.token).json == {
        "unread_count": 0
    }
    # The participants do see the conversation, so the filter is not simply empty.
    r = api("GET", f"/api/messages/?with_user={world.owner.id}", token=world.other.token)
    assert [m["id"] for m in r.json] == [world.message]

    before = snapshot(db, world.owner, world.other)
    r = api(
        "POST", "/api/messages/mark_read/", token=stranger.token, json={"with_user": world.owner.id}
    )
    assert r.status == 200 and r.json["marked_read"] == 0
    r = api("POST", "/api/notifications/mark_all_read/", token=stranger.token)
    assert r.status == 200 and r.json["marked_read"] == 0
    assert snapshot(db, world.owner, world.other) == before


async def test_a_strangers_sockets_carry_nothing_of_other_peoples_conversations(api, ws, world):
    on_chat = await ws(f"/ws/chat/{world.owner.id}/", world.stranger.token)
    on_stream = await ws("/ws/", world.stranger.token)
    other_chat = await ws(f"/ws/chat/{world.owner.id}/", world.other.token)
    r = api(
        "POST",
        "/api/messages/",
        token=world.owner.token,
        json={"receiver_id": world.other.id, "content": "still private"},
    )
    assert r.status == 201
    assert (await recv(other_chat))["message"]["id"] == r.json["id"]
    await no_frame(on_chat)
    await no_frame(on_stream)


def test_only_the_requester_can_pay_for_a_meeting(api, db, world):
    requester, expert = world.owner, world.other
    # Give the expert credits: a charge that wrongly went through would then succeed.
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=expert.token,
        json={"payment_method": "credit_card", "amount": "5.00", "credits_to_purchase": 5},
    )
    assert r.status == 200
    before = snapshot(db, requester, expert)
    for payload in (
        {"meeting_id": world.pending, "amount": 1},
        {"meeting_id": world.completed, "amount": 1},
    ):
        r = api("POST", "/api/credits/transfer/", token=expert.token, json=payload)
        assert r.status == 400, r.text
        assert r.json == {"error": "Only the requester of a meeting can pay for it"}
    assert snapshot(db, requester, expert) == before

    r = api(
        "POST",
        "/api/credits/transfer/",
        token=requester.token,
        json={"meeting_id": world.pending, "amount": 1},
    )
    assert r.status == 200 and r.json["new_balance"] == 0
    balances = {
        row["user_id"]: row["balance"]
        for row in db.fetch(
            "SELECT user_id, balance FROM credit_accounts WHERE user_id = ANY($1::bigint[])",
            [requester.id, expert.id],
        )
    }
    # Pending: the credit is held on the meeting, not yet the expert's.
    assert balances == {requester.id: 0, expert.id: 6}
