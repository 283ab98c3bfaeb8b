"""Finding experts: GET /api/experts/ (full-text search, ranking, filters, paging) and the
public profile GET /api/users/{id}/."""

import datetime as dt
import uuid
from urllib.parse import quote

CARD_FIELDS = {
    "id",
    "username",
    "first_name",
    "last_name",
    "bio",
    "profile_picture",
    "timezone",
    "skills",
    "average_rating",
    "review_count",
    "completed_meetings",
    "credits_per_hour",
}
SKILL_FIELDS = {"id", "category", "category_name", "skill_name", "proficiency_level"}
DATA_SCIENCE = 3


def tag():
    """A word no other test uses, so a search sees only this test's experts."""
    return "zq" + uuid.uuid4().hex[:10]


def add_skill(api, user, name, category=1, level="expert"):
    r = api(
        "POST",
        "/api/user-skills/",
        token=user.token,
        json={"category": category, "skill_name": name, "proficiency_level": level},
    )
    assert r.status == 201, r.text
    return r.json


def set_profile(api, user, **fields):
    r = api("PUT", "/api/users/me/", token=user.token, json=fields)
    assert r.status == 200, r.text


def experts(api, token, **params):
    query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
    r = api("GET", f"/api/experts/?{query}", token=token)
    assert r.status == 200, r.text
    return r.json


def ids(rows):
    return [row["id"] for row in rows]


def insert_meeting(db, requester, expert, start, end, status):
    return db.fetchval(
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                 scheduled_start, scheduled_end)
           VALUES ('Session', $1, $2, 1, $3, $4, $5) RETURNING id""",
        requester.id,
        expert.id,
        status,
        dt.datetime.fromisoformat(start),
        dt.datetime.fromisoformat(end),
    )


def review(db, meeting_id, reviewer, reviewee, rating, text=""):
    return db.fetchval(
        """INSERT INTO reviews (meeting_id, reviewer_id, reviewee_id, rating, review_text)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        meeting_id,
        reviewer.id,
        reviewee.id,
        rating,
        text,
    )


def completed_with_review(db, client, expert, rating, text="", day=1):
    start = f"2027-02-{day:02d}T10:00:00+00:00"
    meeting = insert_meeting(db, client, expert, start, start.replace("T10", "T11"), "completed")
    return review(db, meeting, client, expert, rating, text)


# ---------------------------------------------------------------- search


def test_a_skill_match_ranks_above_a_bio_match(api, make_user):
    word = tag()
    by_skill, by_bio, client = make_user(), make_user(), make_user()
    add_skill(api, by_skill, "Python")
    set_profile(api, by_skill, bio=f"Ten years of backend work. {word}")
    # Newer (larger id) and mentions Python twice, but only in the bio.
    add_skill(api, by_bio, "Gardening", category=5)
    set_profile(api, by_bio, bio=f"I sometimes write Python, Python scripts. {word}")
    found = experts(api, client.token, q=f"python {word}")
    assert ids(found) == [by_skill.id, by_bio.id]
    assert set(found[0]) == CARD_FIELDS
    assert [set(s) for s in found[0]["skills"]] == [SKILL_FIELDS]
    assert found[0]["skills"][0]["skill_name"] == "Python"
    assert found[0]["skills"][0]["category_name"] == "Software Development"
    assert "email" not in found[0] and "balance" not in found[0]


def test_search_matches_names_across_fields_and_follows_skill_changes(api, make_user):
    word = tag()
    expert, client = make_user(first_name="Grace", last_name=word), make_user()
    skill = add_skill(api, expert, "Kubernetes")
    set_profile(api, expert, bio="Based in Lisbon")
    assert ids(experts(api, client.token, q=word)) == [expert.id]
    # All words must match, each may come from a different field (skill, name, bio).
    assert ids(experts(api, client.token, q=f"kubernetes lisbon {word}")) == [expert.id]
    assert experts(api, client.token, q=f"kubernetes madrid {word}") == []
    # websearch syntax: a quoted phrase, and -word to exclude.
    assert ids(experts(api, client.token, q=f'"grace {word}"')) == [expert.id]
    assert experts(api, client.token, q=f"{word} -lisbon") == []
    # The search document follows the user's skills.
    assert api("DELETE", f"/api/user-skills/{skill['id']}/", token=expert.token).status == 204
    add_skill(api, expert, "Terraform")
    assert experts(api, client.token, q=f"kubernetes {word}") == []
    assert ids(experts(api, client.token, q=f"terraform {word}")) == [expert.id]


def test_users_without_skills_are_not_experts(api, make_user):
    word = tag()
    idle, client = make_user(last_name=word), make_user()
    assert experts(api, client.token, q=word) == []
    add_skill(api, idle, "Chess", category=2)
    assert ids(experts(api, client.token, q=word)) == [idle.id]


def test_a_query_without_words_finds_nothing_rather_than_failing(api, make_user):
    client = make_user()
    assert experts(api, client.token, q="!!! &&& ---") == []


# ---------------------------------------------------------------- filters


def test_category_filter_keeps_experts_with_a_skill_in_it(api, make_user):
    word = tag()
    data, dev, client = make_user(last_name=word), make_user(last_name=word), make_user()
    add_skill(api, data, "Statistics", category=DATA_SCIENCE)
    add_skill(api, data, "SQL", category=1)
    add_skill(api, dev, "Rust", category=1)
    assert ids(experts(api, client.token, q=word)) == [dev.id, data.id]
    assert ids(experts(api, client.token, q=word, category=DATA_SCIENCE)) == [data.id]
    # The card still lists all of the expert's skills, newest first.
    card = experts(api, client.token, q=word, category=DATA_SCIENCE)[0]
    assert [s["skill_name"] for s in card["skills"]] == ["SQL", "Statistics"]
    assert experts(api, client.token, q=word, category=8) == []


def test_min_rating_uses_the_average_of_reviews_received(api, make_user, db):
    word = tag()
    good, fair, unrated, client = (
        make_user(last_name=word),
        make_user(last_name=word),
        make_user(last_name=word),
        make_user(),
    )
    for expert in (good, fair, unrated):
        add_skill(api, expert, "Design", category=4)
    completed_with_review(db, client, good, 5, day=1)
    completed_with_review(db, client, good, 4, day=2)
    completed_with_review(db, client, good, 4, day=3)
    completed_with_review(db, client, fair, 3, day=4)
    insert_meeting(
        db, client, fair, "2027-02-05T10:00:00+00:00", "2027-02-05T11:00:00+00:00", "confirmed"
    )
    cards = {c["id"]: c for c in experts(api, client.token, q=word)}
    assert (
        cards[good.id]["average_rating"],
        cards[good.id]["review_count"],
        cards[good.id]["completed_meetings"],
    ) == (4.33, 3, 3)
    assert (
        cards[fair.id]["average_rating"],
        cards[fair.id]["review_count"],
        cards[fair.id]["completed_meetings"],
    ) == (3.0, 1, 1)
    assert (
        cards[unrated.id]["average_rating"],
        cards[unrated.id]["review_count"],
        cards[unrated.id]["completed_meetings"],
    ) == (None, 0, 0)
    assert ids(experts(api, client.token, q=word, min_rating=4)) == [good.id]
    assert ids(experts(api, client.token, q=word, min_rating=3)) == [fair.id, good.id]
    assert ids(experts(api, client.token, q=word, min_rating=4.34)) == []
    assert ids(experts(api, client.token, q=word, min_rating=1)) == [fair.id, good.id]


def test_available_at_reads_hours_in_the_experts_zone_and_skips_busy_experts(api, make_user, db):
    word = tag()
    berlin, utc, client = make_user(last_name=word), make_user(last_name=word), make_user()
    for expert in (berlin, utc):
        add_skill(api, expert, "Mentoring", category=2)
        r = api(
            "POST",
            "/api/user-availability/",
            token=expert.token,
            json={"day_of_week": 1, "start_time": "09:00", "end_time": "11:00"},
        )
        assert r.status == 201
    set_profile(api, berlin, timezone="Europe/Berlin")  # UTC+1 in January
    # Monday 2027-01-04: 08:30Z is 09:30 in Berlin, 08:30 in UTC.
    assert ids(experts(api, client.token, q=word, available_at="2027-01-04T08:30:00Z")) == [
        berlin.id
    ]
    assert ids(experts(api, client.token, q=word, available_at="2027-01-04T10:30:00Z")) == [utc.id]
    assert ids(experts(api, client.token, q=word, available_at="2027-01-04T10:00:00+01:00")) == [
        utc.id,
        berlin.id,
    ]
    assert experts(api, client.token, q=word, available_at="2027-01-05T09:30:00Z") == []
    # The end of the hours is not inside them.
    assert ids(experts(api, client.token, q=word, available_at="2027-01-04T11:00:00Z")) == []

    # A cancelled meeting frees the time. A pending request takes it for its requester only:
    # to anyone else the expert is still free until it is confirmed.
    insert_meeting(
        db, client, berlin, "2027-01-04T08:00:00+00:00", "2027-01-04T09:00:00+00:00", "cancelled"
    )
    assert ids(experts(api, client.token, q=word, available_at="2027-01-04T08:30:00Z")) == [
        berlin.id
    ]
    pending = insert_meeting(
        db, client, berlin, "2027-01-04T08:00:00+00:00", "2027-01-04T09:00:00+00:00", "pending"
    )
    assert experts(api, client.token, q=word, available_at="2027-01-04T08:30:00Z") == []
    assert ids(experts(api, utc.token, q=word, available_at="2027-01-04T08:30:00Z")) == [berlin.id]
    db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", pending)
    assert experts(api, utc.token, q=word, available_at="2027-01-04T08:30:00Z") == []
    insert_meeting(
        db, utc, client, "2027-01-04T10:00:00+00:00", "2027-01-04T10:45:00+00:00", "confirmed"
    )
    assert experts(api, client.token, q=word, available_at="2027-01-04T10:30:00Z") == []
    # Without q the same filters apply.
    listed = ids(experts(api, client.token, available_at="2027-01-04T10:50:00Z", limit=200))
    assert utc.id in listed and berlin.id not in listed


def test_without_q_newest_first_with_a_cursor(api, make_user):
    client = make_user()
    made = [make_user() for _ in range(3)]
    for user in made:
        add_skill(api, user, "Marketing", category=6)
    newest = made[-1].id
    page = experts(api, client.token, before_id=newest + 1, limit=2)
    assert ids(page) == [made[2].id, made[1].id]
    page = experts(api, client.token, before_id=page[-1]["id"], limit=2)
    assert ids(page)[0] == made[0].id and ids(page) == sorted(ids(page), reverse=True)
    assert client.id not in ids(experts(api, client.token, before_id=client.id + 1, limit=200))


def test_bad_parameters_are_400s(api, make_user):
    client = make_user()
    cases = [
        ({"min_rating": "6"}, {"min_rating"}),
        ({"min_rating": "0.5"}, {"min_rating"}),
        ({"min_rating": "four"}, {"min_rating"}),
        ({"min_rating": "nan"}, {"min_rating"}),
        ({"category": "abc"}, {"category"}),
        ({"category": "0"}, {"category"}),
        ({"available_at": "soon"}, {"available_at"}),
        ({"limit": "0"}, {"limit"}),
        ({"limit": "201"}, {"limit"}),
        ({"before_id": "-1"}, {"before_id"}),
        ({"q": "x" * 201}, {"q"}),
        ({"q": "   "}, {"q"}),
        ({"min_rating": "9", "category": "x", "limit": "0"}, {"min_rating", "category", "limit"}),
    ]
    for params, fields in cases:
        query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        r = api("GET", f"/api/experts/?{query}", token=client.token)
        assert r.status == 400, params
        assert set(r.json["errors"]) == fields, params
    assert api("GET", "/api/experts/").status == 401


# ---------------------------------------------------------------- public profile


def test_public_profile_shows_the_card_and_reviews_but_no_email(api, make_user, db):
    expert, alice, bob = make_user(), make_user(first_name="Alice", last_name="Ng"), make_user()
    add_skill(api, expert, "Figma", category=4, level="advanced")
    set_profile(
        api,
        expert,
        bio="Designer",
        timezone="America/New_York",
        profile_picture="https://example.com/me.png",
    )
    first = completed_with_review(db, alice, expert, 5, "Great session", day=6)
    second = completed_with_review(db, bob, expert, 2, "", day=7)
    r = api("GET", f"/api/users/{expert.id}/", token=alice.token)
    assert r.status == 200
    profile = r.json
    assert set(profile) == CARD_FIELDS | {"reviews"}
    assert "email" not in profile and "balance" not in profile
    assert expert.email not in r.text
    assert (profile["bio"], profile["timezone"], profile["profile_picture"]) == (
        "Designer",
        "America/New_York",
        "https://example.com/me.png",
    )
    assert [s["skill_name"] for s in profile["skills"]] == ["Figma"]
    assert (profile["average_rating"], profile["review_count"], profile["completed_meetings"]) == (
        3.5,
        2,
        2,
    )
    assert [rv["id"] for rv in profile["reviews"]] == [second, first]
    newest, oldest = profile["reviews"]
    assert set(oldest) == {
        "id",
        "meeting_id",
        "reviewer_id",
        "reviewer_name",
        "rating",
        "review_text",
        "created_at",
    }
    assert (
        oldest["reviewer_id"],
        oldest["reviewer_name"],
        oldest["rating"],
        oldest["review_text"],
    ) == (alice.id, "Alice Ng", 5, "Great session")
    assert newest["reviewer_name"] == bob.name and oldest["created_at"].endswith("Z")


def test_a_user_without_skills_still_has_a_profile(api, make_user):
    user, viewer = make_user(), make_user()
    r = api("GET", f"/api/users/{user.id}/", token=viewer.token)
    assert r.status == 200
    assert (r.json["skills"], r.json["reviews"], r.json["average_rating"]) == ([], [], None)


def test_unknown_profiles_are_404(api, make_user, db):
    viewer = make_user()
    missing = db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM users")
    for user_id in [missing, 2**63, 10**30]:
        r = api("GET", f"/api/users/{user_id}/", token=viewer.token)
        assert r.status == 404 and r.json == {"error": "User not found"}
    assert api("GET", f"/api/users/{viewer.id}/").status == 401
    # /api/users/me/ is still the caller's own, full profile.
    assert api("GET", "/api/users/me/", token=viewer.token).json["email"] == viewer.email
