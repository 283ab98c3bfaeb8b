"""Categories and user skills: list, add, delete, and who may see or touch what."""

SKILL_FIELDS = {"id", "user", "category", "category_name", "skill_name", "proficiency_level"}


def _categories(api, token):
    r = api("GET", "/api/categories/", token=token)
    assert r.status == 200
    return {c["name"]: c["id"] for c in r.json}


def _add(api, user, **body):
    return api("POST", "/api/user-skills/", json=body, token=user.token)


def test_categories_are_listed_by_name_and_need_a_token(api, make_user):
    user = make_user()
    assert api("GET", "/api/categories/").status == 401
    r = api("GET", "/api/categories/", token=user.token)
    assert r.status == 200
    names = [c["name"] for c in r.json]
    assert names == sorted(names) and "Software Development" in names
    assert all(set(c) == {"id", "name"} for c in r.json)


def test_add_skill_returns_the_spec_item_and_lists_it(api, make_user):
    user = make_user()
    cat = _categories(api, user.token)["Software Development"]
    r = _add(api, user, category=cat, skill_name="  React ", proficiency_level="expert")
    assert r.status == 201, r.text
    assert set(r.json) == SKILL_FIELDS
    assert r.json["user"] == user.id and r.json["category"] == cat
    assert r.json["category_name"] == "Software Development"
    assert r.json["skill_name"] == "React" and r.json["proficiency_level"] == "expert"
    listed = api("GET", "/api/user-skills/", token=user.token)
    assert listed.status == 200 and listed.json == [r.json]


def test_user_and_id_in_the_body_are_ignored(api, make_user, db):
    user, victim = make_user(), make_user()
    cat = _categories(api, user.token)["Design"]
    body = {
        "category": cat,
        "skill_name": "Figma",
        "proficiency_level": "advanced",
        "user": victim.id,
        "id": 999999,
    }
    r = api("POST", "/api/user-skills/", json=body, token=user.token)
    assert r.status == 201
    assert r.json["user"] == user.id and r.json["id"] != 999999
    assert db.fetchval("SELECT count(*) FROM user_skills WHERE user_id = $1", victim.id) == 0


def test_skills_are_listed_newest_first_with_limit_and_cursor(api, make_user):
    user = make_user()
    cat = _categories(api, user.token)["Languages"]
    ids = [
        _add(api, user, category=cat, skill_name=name, proficiency_level="beginner").json["id"]
        for name in ("French", "German", "Spanish")
    ]
    r = api("GET", "/api/user-skills/", token=user.token)
    assert [s["id"] for s in r.json] == ids[::-1]
    page = api("GET", "/api/user-skills/?limit=2", token=user.token)
    assert [s["id"] for s in page.json] == [ids[2], ids[1]]
    rest = api("GET", f"/api/user-skills/?before_id={ids[1]}", token=user.token)
    assert [s["id"] for s in rest.json] == [ids[0]]


def test_bad_list_query_params_are_400(api, make_user):
    user = make_user()
    for query in (
        "limit=0",
        "limit=201",
        "limit=abc",
        "before_id=0",
        "user_id=-1",
        "user_id=1.5",
        "user_id=99999999999999999999",
    ):
        r = api("GET", f"/api/user-skills/?{query}", token=user.token)
        assert r.status == 400, query
        assert set(r.json["errors"]) == {query.split("=")[0]}


def test_another_users_skills_via_user_id(api, make_user):
    owner, viewer = make_user(), make_user()
    cat = _categories(api, owner.token)["Data Science"]
    added = _add(api, owner, category=cat, skill_name="Pandas", proficiency_level="intermediate")
    r = api("GET", f"/api/user-skills/?user_id={owner.id}", token=viewer.token)
    assert r.status == 200 and r.json == [added.json]
    assert api("GET", "/api/user-skills/", token=viewer.token).json == []


def test_skills_of_a_missing_user_is_404(api, make_user):
    user = make_user()
    r = api("GET", "/api/user-skills/?user_id=9223372036854775807", token=user.token)
    assert r.status == 404 and r.json == {"error": "User not found"}


def test_unknown_category_is_a_field_error(api, make_user):
    user = make_user()
    for category in (987654321, 9223372036854775807):
        r = _add(api, user, category=category, skill_name="Go", proficiency_level="expert")
        assert r.status == 400
        assert r.json == {"errors": {"category": ["Category with this ID does not exist."]}}


def test_invalid_fields_are_all_reported(api, make_user):
    user = make_user()
    r = _add(api, user, category="1", skill_name="x" * 101, proficiency_level="guru")
    assert r.status == 400
    assert set(r.json["errors"]) == {"category", "skill_name", "proficiency_level"}
    r = _add(api, user, category=True, skill_name="   ", proficiency_level="Expert")
    assert set(r.json["errors"]) == {"category", "skill_name", "proficiency_level"}
    r = api("POST", "/api/user-skills/", json={}, token=user.token)
    assert set(r.json["errors"]) == {"category", "skill_name", "proficiency_level"}
    r = _add(api, user, category=1, skill_name="x" * 100, proficiency_level="expert")
    assert r.status == 201


def test_same_skill_in_same_category_in_any_case_is_400(api, make_user):
    user = make_user()
    cats = _categories(api, user.token)
    first = _add(
        api,
        user,
        category=cats["Software Development"],
        skill_name="Python",
        proficiency_level="expert",
    )
    assert first.status == 201
    again = _add(
        api,
        user,
        category=cats["Software Development"],
        skill_name="pYTHON",
        proficiency_level="beginner",
    )
    assert again.status == 400 and set(again.json["errors"]) == {"skill_name"}
    # Another category, or another user, may have it.
    assert (
        _add(
            api,
            user,
            category=cats["Data Science"],
            skill_name="Python",
            proficiency_level="expert",
        ).status
        == 201
    )
    assert (
        _add(
            api,
            make_user(),
            category=cats["Software Development"],
            skill_name="Python",
            proficiency_level="expert",
        ).status
        == 201
    )


def test_delete_own_skill_is_204_with_empty_body(api, make_user, db):
    user = make_user()
    skill = _add(api, user, category=1, skill_name="Rust", proficiency_level="beginner").json
    r = api("DELETE", f"/api/user-skills/{skill['id']}/", token=user.token)
    assert r.status == 204 and r.text == ""
    assert db.fetchval("SELECT count(*) FROM user_skills WHERE id = $1", skill["id"]) == 0
    again = api("DELETE", f"/api/user-skills/{skill['id']}/", token=user.token)
    assert again.status == 404 and again.json == {"error": "Skill not found"}


def test_stranger_deleting_my_skill_gets_404_and_it_stays(api, make_user, db):
    owner, stranger = make_user(), make_user()
    skill = _add(api, owner, category=1, skill_name="SQL", proficiency_level="expert").json
    r = api("DELETE", f"/api/user-skills/{skill['id']}/", token=stranger.token)
    assert r.status == 404 and r.json == {"error": "Skill not found"}
    assert db.fetchval("SELECT count(*) FROM user_skills WHERE id = $1", skill["id"]) == 1


def test_delete_with_a_bad_or_missing_id_is_the_same_404(api, make_user):
    user = make_user()
    for raw in ("0", "999999999", "9223372036854775808", "99999999999999999999999", "abc"):
        r = api("DELETE", f"/api/user-skills/{raw}/", token=user.token)
        assert r.status == 404 and r.json == {"error": "Skill not found"}, raw
    assert api("DELETE", "/api/user-skills/1/").status == 401
