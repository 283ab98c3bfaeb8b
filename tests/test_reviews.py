"""Reviews: who may review what, validation, one per reviewer per meeting, the notification."""

import datetime as dt
import json
import threading

import pytest

REVIEW_FIELDS = {
    "id",
    "meeting_id",
    "reviewer_id",
    "reviewer_name",
    "reviewee_id",
    "reviewee_name",
    "rating",
    "review_text",
    "created_at",
}
NOT_FOUND = {"error": "Meeting not found"}


def meeting_in(api, requester, expert, state):
    """A meeting of requester with expert, moved through the API into `state`."""
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "Career Advice",
            "expert_id": expert.id,
            "category_id": 2,
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + dt.timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status == 201, r.text
    # Completed by the requester: the expert may complete only a meeting that has started.
    path = {
        "pending": [],
        "confirmed": [(expert, "confirmed")],
        "completed": [(expert, "confirmed"), (requester, "completed")],
        "cancelled": [(expert, "cancelled")],
    }[state]
    for actor, status in path:
        s = api(
            "PATCH",
            f"/api/meetings/{r.json['id']}/update_status/",
            token=actor.token,
            json={"status": status},
        )
        assert s.status == 200, s.text
    return r.json


def post_review(api, reviewer, meeting_id, reviewee_id, rating=4, **extra):
    return api(
        "POST",
        "/api/reviews/",
        token=reviewer.token,
        json={"meeting_id": meeting_id, "reviewee_id": reviewee_id, "rating": rating, **extra},
    )


def review_count(db, meeting_id):
    return db.fetchval("SELECT count(*) FROM reviews WHERE meeting_id = $1", meeting_id)


def test_review_returns_the_spec_fields_and_notifies_the_reviewee(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    r = post_review(
        api,
        requester,
        meeting["id"],
        expert.id,
        rating=5,
        review_text="Excellent session, very helpful!",
    )
    assert r.status == 201, r.text
    assert set(r.json) == REVIEW_FIELDS
    assert r.json["meeting_id"] == meeting["id"]
    assert (r.json["reviewer_id"], r.json["reviewer_name"]) == (requester.id, requester.name)
    assert (r.json["reviewee_id"], r.json["reviewee_name"]) == (expert.id, expert.name)
    assert (r.json["rating"], r.json["review_text"]) == (5, "Excellent session, very helpful!")
    assert r.json["created_at"].endswith("Z")

    n = db.fetchrow(
        """SELECT * FROM notifications WHERE user_id = $1
                       AND notification_type = 'new_review'""",
        expert.id,
    )
    assert n["title"] == "New Review"
    assert n["content"] == f"{requester.name} left you a 5-star review."
    assert n["related_id"] == r.json["id"]
    event = db.fetchrow(
        """SELECT payload FROM user_events WHERE user_id = $1
                           ORDER BY seq DESC LIMIT 1""",
        expert.id,
    )
    frame = json.loads(event["payload"])
    assert frame["type"] == "notification.receive"
    assert frame["notification"]["id"] == n["id"]
    assert frame["notification"]["notification_type"] == "new_review"
    assert (
        db.fetchval(
            """SELECT count(*) FROM notifications WHERE user_id = $1
                          AND notification_type = 'new_review'""",
            requester.id,
        )
        == 0
    )


def test_both_participants_may_review_each_other_and_detail_lists_oldest_first(api, make_user):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    first = post_review(api, expert, meeting["id"], requester.id, rating=3)
    second = post_review(api, requester, meeting["id"], expert.id, rating=4)
    assert first.status == second.status == 201
    assert first.json["review_text"] == ""
    detail = api("GET", f"/api/meetings/{meeting['id']}/", token=requester.token).json
    assert [(v["id"], v["reviewer_id"], v["rating"]) for v in detail["reviews"]] == [
        (first.json["id"], expert.id, 3),
        (second.json["id"], requester.id, 4),
    ]


@pytest.mark.parametrize("state", ["pending", "confirmed", "cancelled"])
def test_only_completed_meetings_can_be_reviewed(api, make_user, db, state):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, state)
    r = post_review(api, requester, meeting["id"], expert.id)
    assert r.status == 400 and "error" in r.json
    assert review_count(db, meeting["id"]) == 0


def test_the_reviewee_must_be_the_other_participant(api, make_user, db):
    requester, expert, stranger = make_user(), make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    for reviewee in (requester.id, stranger.id, 9223372036854775807):
        r = post_review(api, requester, meeting["id"], reviewee)
        assert r.status == 400 and set(r.json["errors"]) == {"reviewee_id"}, reviewee
    assert review_count(db, meeting["id"]) == 0


def test_one_review_per_reviewer_per_meeting(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    assert post_review(api, requester, meeting["id"], expert.id).status == 201
    r = post_review(api, requester, meeting["id"], expert.id, rating=1)
    assert r.status == 400 and set(r.json["errors"]) == {"meeting_id"}
    assert review_count(db, meeting["id"]) == 1
    assert (
        db.fetchval(
            """SELECT count(*) FROM notifications WHERE user_id = $1
                          AND notification_type = 'new_review'""",
            expert.id,
        )
        == 1
    )


def test_concurrent_duplicate_reviews_store_one(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    barrier = threading.Barrier(4)
    statuses = []

    def send():
        barrier.wait()
        statuses.append(post_review(api, requester, meeting["id"], expert.id).status)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 400, 400, 400]
    assert review_count(db, meeting["id"]) == 1


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": None}, "rating"),
        ({"review_text": "x" * 5001}, "review_text"),
        ({"review_text": 7}, "review_text"),
        ({"meeting_id": None}, "meeting_id"),
        ({"meeting_id": "1"}, "meeting_id"),
        ({"reviewee_id": 0}, "reviewee_id"),
        ({"reviewee_id": 2**63}, "reviewee_id"),
    ],
)
def test_review_validation(api, make_user, db, overrides, field):
    requester, expert = make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    body = {"meeting_id": meeting["id"], "reviewee_id": expert.id, "rating": 5}
    body.update(overrides)
    r = api("POST", "/api/reviews/", token=requester.token, json=body)
    assert r.status == 400, r.text
    assert set(r.json["errors"]) == {field}
    assert review_count(db, meeting["id"]) == 0


def test_strangers_and_missing_meetings_get_the_same_404(api, make_user, db):
    requester, expert, stranger = make_user(), make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    for meeting_id in (meeting["id"], 9223372036854775807):
        r = post_review(api, stranger, meeting_id, expert.id)
        assert (r.status, r.json) == (404, NOT_FOUND)
    assert review_count(db, meeting["id"]) == 0
    assert api("POST", "/api/reviews/", json={}).status == 401
