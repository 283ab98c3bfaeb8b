"""Weekly availability slots: list, add (no overlaps, end after start), delete."""

SLOT_FIELDS = {"id", "user", "day_of_week", "start_time", "end_time"}


def _add(api, user, day, start, end):
    return api(
        "POST",
        "/api/user-availability/",
        json={"day_of_week": day, "start_time": start, "end_time": end},
        token=user.token,
    )


def test_add_slot_returns_the_spec_item(api, make_user):
    user = make_user()
    r = _add(api, user, 3, "09:00", "17:00:00")
    assert r.status == 201, r.text
    assert set(r.json) == SLOT_FIELDS
    assert r.json["user"] == user.id and r.json["day_of_week"] == 3
    assert r.json["start_time"] == "09:00:00" and r.json["end_time"] == "17:00:00"


def test_slots_are_listed_by_day_then_start_time(api, make_user):
    user = make_user()
    b = _add(api, user, 2, "13:00", "14:00").json
    c = _add(api, user, 6, "08:00", "09:00").json
    a = _add(api, user, 0, "10:00", "11:00").json
    d = _add(api, user, 2, "09:00", "10:00").json
    r = api("GET", "/api/user-availability/", token=user.token)
    assert r.status == 200 and r.json == [a, d, b, c]
    assert all(set(s) == SLOT_FIELDS for s in r.json)


def test_another_users_slots_via_user_id(api, make_user):
    owner, viewer = make_user(), make_user()
    slot = _add(api, owner, 1, "09:00", "12:00").json
    r = api("GET", f"/api/user-availability/?user_id={owner.id}", token=viewer.token)
    assert r.status == 200 and r.json == [slot]
    assert api("GET", "/api/user-availability/", token=viewer.token).json == []
    missing = api("GET", "/api/user-availability/?user_id=9223372036854775807", token=viewer.token)
    assert missing.status == 404 and missing.json == {"error": "User not found"}
    bad = api("GET", "/api/user-availability/?user_id=abc", token=viewer.token)
    assert bad.status == 400 and set(bad.json["errors"]) == {"user_id"}


def test_end_must_be_after_start(api, make_user):
    user = make_user()
    for start, end in (("10:00", "10:00"), ("17:00", "09:00")):
        r = _add(api, user, 1, start, end)
        assert r.status == 400 and set(r.json["errors"]) == {"end_time"}


def test_bad_fields_are_all_reported(api, make_user):
    user = make_user()
    for day in (7, -1, "1", 1.5, True, None):
        r = _add(api, user, day, "9:00", "25:00")
        assert r.status == 400
        assert set(r.json["errors"]) == {"day_of_week", "start_time", "end_time"}, day
    r = _add(api, user, 0, "09:00:00.5", 900)
    assert set(r.json["errors"]) == {"start_time", "end_time"}
    r = _add(api, user, 0, "12:60", "24:00")
    assert set(r.json["errors"]) == {"start_time", "end_time"}


def test_sunday_and_saturday_are_0_and_6(api, make_user):
    user = make_user()
    assert _add(api, user, 0, "09:00", "10:00").status == 201
    assert _add(api, user, 6, "09:00", "10:00").status == 201


def test_overlap_on_the_same_day_is_400_naming_the_clash(api, make_user):
    user = make_user()
    existing = _add(api, user, 4, "09:00", "12:00").json
    r = _add(api, user, 4, "11:00", "13:00")
    assert r.status == 400 and set(r.json["errors"]) == {"start_time"}
    message = r.json["errors"]["start_time"][0]
    assert "09:00:00-12:00:00" in message and str(existing["id"]) in message
    # Fully inside and fully around clash too.
    assert _add(api, user, 4, "10:00", "11:00").status == 400
    assert _add(api, user, 4, "08:00", "13:00").status == 400


def test_touching_slots_other_days_and_other_users_are_fine(api, make_user):
    user = make_user()
    assert _add(api, user, 4, "09:00", "12:00").status == 201
    assert _add(api, user, 4, "12:00", "13:00").status == 201
    assert _add(api, user, 4, "08:00", "09:00").status == 201
    assert _add(api, user, 5, "09:00", "12:00").status == 201
    assert _add(api, make_user(), 4, "09:00", "12:00").status == 201


def test_delete_own_slot_is_204_and_frees_the_time(api, make_user, db):
    user = make_user()
    slot = _add(api, user, 2, "09:00", "17:00").json
    r = api("DELETE", f"/api/user-availability/{slot['id']}/", token=user.token)
    assert r.status == 204 and r.text == ""
    assert db.fetchval("SELECT count(*) FROM user_availability WHERE id = $1", slot["id"]) == 0
    assert _add(api, user, 2, "10:00", "11:00").status == 201
    again = api("DELETE", f"/api/user-availability/{slot['id']}/", token=user.token)
    assert again.status == 404 and again.json == {"error": "Availability slot not found"}


def test_stranger_deleting_my_slot_gets_404_and_it_stays(api, make_user, db):
    owner, stranger = make_user(), make_user()
    slot = _add(api, owner, 3, "09:00", "10:00").json
    r = api("DELETE", f"/api/user-availability/{slot['id']}/", token=stranger.token)
    assert r.status == 404 and r.json == {"error": "Availability slot not found"}
    assert db.fetchval("SELECT count(*) FROM user_availability WHERE id = $1", slot["id"]) == 1
    for raw in ("0", "9223372036854775808", "x"):
        r = api("DELETE", f"/api/user-availability/{raw}/", token=owner.token)
        assert r.status == 404 and r.json == {"error": "Availability slot not found"}


def test_availability_needs_a_token(api):
    assert api("GET", "/api/user-availability/").status == 401
    assert (
        api(
            "POST",
            "/api/user-availability/",
            json={"day_of_week": 1, "start_time": "09:00", "end_time": "10:00"},
        ).status
        == 401
    )
