"""Time zones and free slots: GET /api/users/{id}/slots/ across daylight-saving changes and
booked meetings, the window rules, and the pure arithmetic in expertconnect.slots."""

import datetime as dt
from zoneinfo import ZoneInfo

from expertconnect import slots

UTC = dt.UTC


def set_timezone(api, user, name):
    r = api("PUT", "/api/users/me/", token=user.token, json={"timezone": name})
    assert r.status == 200, r.text
    return r.json


def add_hours(api, user, day, start, end):
    r = api(
        "POST",
        "/api/user-availability/",
        token=user.token,
        json={"day_of_week": day, "start_time": start, "end_time": end},
    )
    assert r.status == 201, r.text


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


def get_slots(api, token, user_id, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api("GET", f"/api/users/{user_id}/slots/?{query}", token=token)


def starts(response):
    assert response.status == 200, response.text
    for slot in response.json:
        assert set(slot) == {"start", "end"}
    return [slot["start"] for slot in response.json]


# ---------------------------------------------------------------- time zone on the profile


def test_timezone_defaults_to_utc_and_takes_an_iana_name(api, make_user):
    user = make_user()
    assert api("GET", "/api/users/me/", token=user.token).json["timezone"] == "UTC"
    assert set_timezone(api, user, "Europe/Berlin")["timezone"] == "Europe/Berlin"
    assert api("GET", "/api/users/me/", token=user.token).json["timezone"] == "Europe/Berlin"
    # Other fields left out of a PUT keep their value, and so does the zone.
    r = api("PUT", "/api/users/me/", token=user.token, json={"bio": "hello"})
    assert r.json["timezone"] == "Europe/Berlin" and r.json["bio"] == "hello"


def test_an_unknown_or_malformed_timezone_is_a_400_that_changes_nothing(api, make_user):
    user = make_user()
    set_timezone(api, user, "Asia/Tokyo")
    for bad in [
        "Mars/Olympus_Mons",
        "europe/berlin",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe",
        "",
        42,
        "x" * 65,
    ]:
        r = api("PUT", "/api/users/me/", token=user.token, json={"timezone": bad, "bio": "changed"})
        assert r.status == 400, bad
        assert set(r.json["errors"]) == {"timezone"}, bad
    me = api("GET", "/api/users/me/", token=user.token).json
    assert me["timezone"] == "Asia/Tokyo" and me["bio"] == ""


# ---------------------------------------------------------------- slots over the API


def test_slots_follow_the_wall_clock_across_the_spring_change(api, make_user):
    # Berlin leaves CET (UTC+1) for CEST (UTC+2) on Sunday 2027-03-28: 09:00 local is 08:00Z
    # the Sunday before and 07:00Z from then on.
    expert, client = make_user(), make_user()
    set_timezone(api, expert, "Europe/Berlin")
    add_hours(api, expert, 0, "09:00", "11:00")
    r = get_slots(
        api,
        client.token,
        expert.id,
        **{"from": "2027-03-20T00:00:00Z", "to": "2027-04-03T00:00:00Z"},
    )
    assert r.json == [
        {"start": "2027-03-21T08:00:00Z", "end": "2027-03-21T09:00:00Z"},
        {"start": "2027-03-21T09:00:00Z", "end": "2027-03-21T10:00:00Z"},
        {"start": "2027-03-28T07:00:00Z", "end": "2027-03-28T08:00:00Z"},
        {"start": "2027-03-28T08:00:00Z", "end": "2027-03-28T09:00:00Z"},
    ]


def test_the_same_hours_in_utc_do_not_move(api, make_user):
    expert = make_user()
    add_hours(api, expert, 0, "09:00", "11:00")
    r = get_slots(
        api,
        expert.token,
        expert.id,
        **{"from": "2027-03-20T00:00:00Z", "to": "2027-04-03T00:00:00Z"},
    )
    assert starts(r) == [
        "2027-03-21T09:00:00Z",
        "2027-03-21T10:00:00Z",
        "2027-03-28T09:00:00Z",
        "2027-03-28T10:00:00Z",
    ]


def test_confirmed_meetings_as_expert_or_requester_take_their_time(api, make_user, db):
    expert, client, other = make_user(), make_user(), make_user()
    set_timezone(api, expert, "Europe/Berlin")
    add_hours(api, expert, 0, "09:00", "12:00")  # 08:00Z-11:00Z on 2027-03-21
    window = {"from": "2027-03-21T00:00:00Z", "to": "2027-03-22T00:00:00Z"}
    assert starts(get_slots(api, client.token, expert.id, **window)) == [
        "2027-03-21T08:00:00Z",
        "2027-03-21T09:00:00Z",
        "2027-03-21T10:00:00Z",
    ]

    insert_meeting(
        db, client, expert, "2027-03-21T08:00:00+00:00", "2027-03-21T09:00:00+00:00", "confirmed"
    )
    insert_meeting(
        db, client, expert, "2027-03-21T10:30:00+00:00", "2027-03-21T11:00:00+00:00", "cancelled"
    )
    assert starts(get_slots(api, client.token, expert.id, **window)) == [
        "2027-03-21T09:00:00Z",
        "2027-03-21T10:00:00Z",
    ]

    # The expert's own pending request (as requester) is taken for the expert alone; others
    # see only confirmed meetings.
    pending = insert_meeting(
        db, expert, other, "2027-03-21T09:00:00+00:00", "2027-03-21T09:30:00+00:00", "pending"
    )
    assert starts(get_slots(api, client.token, expert.id, **window)) == [
        "2027-03-21T09:00:00Z",
        "2027-03-21T10:00:00Z",
    ]
    assert starts(get_slots(api, expert.token, expert.id, **window)) == ["2027-03-21T09:30:00Z"]

    # Confirmed, it takes the time for everyone; a part-hour meeting leaves no full hour after
    # it, so the slot after it starts where it ends.
    db.execute("UPDATE meetings SET status = 'confirmed' WHERE id = $1", pending)
    assert starts(get_slots(api, client.token, expert.id, **window)) == ["2027-03-21T09:30:00Z"]
    assert starts(get_slots(api, client.token, expert.id, duration=30, **window)) == [
        "2027-03-21T09:30:00Z",
        "2027-03-21T10:00:00Z",
        "2027-03-21T10:30:00Z",
    ]


def test_duration_cuts_each_free_interval_into_equal_slots(api, make_user):
    expert = make_user()
    add_hours(api, expert, 1, "09:00", "10:40")  # Mondays, UTC
    window = {"from": "2027-01-04T00:00:00Z", "to": "2027-01-05T00:00:00Z"}
    r = get_slots(api, expert.token, expert.id, duration=25, **window)
    assert r.json == [
        {"start": "2027-01-04T09:00:00Z", "end": "2027-01-04T09:25:00Z"},
        {"start": "2027-01-04T09:25:00Z", "end": "2027-01-04T09:50:00Z"},
        {"start": "2027-01-04T09:50:00Z", "end": "2027-01-04T10:15:00Z"},
        {"start": "2027-01-04T10:15:00Z", "end": "2027-01-04T10:40:00Z"},
    ]
    assert starts(get_slots(api, expert.token, expert.id, **window)) == ["2027-01-04T09:00:00Z"]


def test_the_window_clips_the_hours(api, make_user):
    expert = make_user()
    add_hours(api, expert, 1, "09:00", "12:00")
    r = get_slots(
        api,
        expert.token,
        expert.id,
        **{"from": "2027-01-04T09:30:00Z", "to": "2027-01-04T11:45:00Z"},
    )
    assert starts(r) == ["2027-01-04T09:30:00Z", "2027-01-04T10:30:00Z"]


def test_a_user_without_hours_has_no_slots(api, make_user):
    user = make_user()
    r = get_slots(
        api, user.token, user.id, **{"from": "2027-01-04T00:00:00Z", "to": "2027-01-11T00:00:00Z"}
    )
    assert r.status == 200 and r.json == []


def test_window_and_duration_are_validated(api, make_user):
    user = make_user()
    cases = [
        ({}, {"from", "to"}),
        ({"from": "2027-01-04T00:00:00Z"}, {"to"}),
        ({"from": "2027-01-04T00:00:00Z", "to": "2027-02-05T00:00:00Z"}, {"to"}),  # 32 days
        ({"from": "2027-01-04T00:00:00Z", "to": "2027-01-04T00:00:00Z"}, {"to"}),
        ({"from": "2027-01-05T00:00:00Z", "to": "2027-01-04T00:00:00Z"}, {"to"}),
        ({"from": "yesterday", "to": "2027-01-04T00:00:00Z"}, {"from"}),
        ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}, {"from", "to"}),
        (
            {"from": "2027-01-04T00:00:00Z", "to": "2027-01-05T00:00:00Z", "duration": 10},
            {"duration"},
        ),
        (
            {"from": "2027-01-04T00:00:00Z", "to": "2027-01-05T00:00:00Z", "duration": 481},
            {"duration"},
        ),
        (
            {"from": "2027-01-04T00:00:00Z", "to": "2027-01-05T00:00:00Z", "duration": "1.5"},
            {"duration"},
        ),
    ]
    for params, fields in cases:
        r = get_slots(api, user.token, user.id, **params)
        assert r.status == 400, params
        assert set(r.json["errors"]) == fields, params
    exactly_31_days = get_slots(
        api, user.token, user.id, **{"from": "2027-01-01T00:00:00Z", "to": "2027-02-01T00:00:00Z"}
    )
    assert exactly_31_days.status == 200


def test_slots_of_an_unknown_user_are_a_404(api, make_user, db):
    user = make_user()
    missing = db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM users")
    window = {"from": "2027-01-04T00:00:00Z", "to": "2027-01-05T00:00:00Z"}
    for user_id in [missing, 2**63]:
        r = get_slots(api, user.token, user_id, **window)
        assert r.status == 404 and r.json == {"error": "User not found"}
    assert get_slots(api, None, user.id, **window).status == 401


# ---------------------------------------------------------------- the arithmetic itself


def _utc(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_autumn_change_moves_the_slot_back_and_a_wall_time_in_the_gap_is_dropped():
    berlin = ZoneInfo("Europe/Berlin")
    sundays = [
        slots.WeeklyHours(0, dt.time(9), dt.time(10)),
        slots.WeeklyHours(0, dt.time(2), dt.time(3)),
    ]
    autumn = slots.free_slots(
        sundays,
        berlin,
        [],
        _utc("2027-10-24T00:00"),
        _utc("2027-11-01T00:00"),
        dt.timedelta(hours=1),
    )
    assert autumn == [
        (_utc("2027-10-24T00:00"), _utc("2027-10-24T01:00")),
        (_utc("2027-10-24T07:00"), _utc("2027-10-24T08:00")),
        # 02:00-03:00 happens twice on 2027-10-31 (03:00 CEST becomes 02:00
        # CET): from its first start to its only end is two real hours.
        (_utc("2027-10-31T00:00"), _utc("2027-10-31T01:00")),
        (_utc("2027-10-31T01:00"), _utc("2027-10-31T02:00")),
        (_utc("2027-10-31T08:00"), _utc("2027-10-31T09:00")),
    ]
    # On 2027-03-28 02:00-03:00 never happens (02:00 CET becomes 03:00 CEST).
    spring = slots.free_slots(
        sundays,
        berlin,
        [],
        _utc("2027-03-28T00:00"),
        _utc("2027-03-29T00:00"),
        dt.timedelta(hours=1),
    )
    assert spring == [(_utc("2027-03-28T07:00"), _utc("2027-03-28T08:00"))]


def test_adjacent_hours_merge_and_busy_time_splits_them():
    hours = [
        slots.WeeklyHours(1, dt.time(9), dt.time(10)),
        slots.WeeklyHours(1, dt.time(10), dt.time(11)),
    ]
    busy = [
        (_utc("2027-01-04T09:20"), _utc("2027-01-04T09:40")),
        (_utc("2027-01-04T09:30"), _utc("2027-01-04T09:45")),
    ]
    got = slots.free_slots(
        hours,
        ZoneInfo("UTC"),
        busy,
        _utc("2027-01-04T00:00"),
        _utc("2027-01-05T00:00"),
        dt.timedelta(minutes=30),
    )
    assert got == [
        (_utc("2027-01-04T09:45"), _utc("2027-01-04T10:15")),
        (_utc("2027-01-04T10:15"), _utc("2027-01-04T10:45")),
    ]
    one_hour = slots.free_slots(
        hours,
        ZoneInfo("UTC"),
        [],
        _utc("2027-01-04T09:30"),
        _utc("2027-01-04T11:00"),
        dt.timedelta(minutes=90),
    )
    assert one_hour == [(_utc("2027-01-04T09:30"), _utc("2027-01-04T11:00"))]


def test_hours_near_midnight_in_a_far_zone_land_on_the_right_utc_day():
    # Monday 00:30-01:30 in Auckland (UTC+13 in January) is Sunday 11:30Z-12:30Z.
    hours = [slots.WeeklyHours(1, dt.time(0, 30), dt.time(1, 30))]
    got = slots.free_slots(
        hours,
        ZoneInfo("Pacific/Auckland"),
        [],
        _utc("2027-01-03T00:00"),
        _utc("2027-01-04T00:00"),
        dt.timedelta(hours=1),
    )
    assert got == [(_utc("2027-01-03T11:30"), _utc("2027-01-03T12:30"))]
