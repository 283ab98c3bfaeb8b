"""Registration, login, logout and the profile endpoints."""

import uuid

from helpers import PASSWORD, api_request


def _register_body(**overrides):
    tag = uuid.uuid4().hex[:8]
    body = {
        "username": f"john_{tag}",
        "email": f"john_{tag}@example.com",
        "password": "securepassword",
        "first_name": "John",
        "last_name": "Doe",
    }
    body.update(overrides)
    return body


def test_register_returns_the_spec_fields_and_a_working_token(api):
    body = _register_body()
    r = api("POST", "/api/users/register/", json=body)
    assert r.status == 201
    assert set(r.json) == {"id", "username", "email", "first_name", "last_name", "token"}
    assert r.json["username"] == body["username"] and r.json["email"] == body["email"]
    me = api("GET", "/api/users/me/", token=r.json["token"])
    assert me.status == 200 and me.json["id"] == r.json["id"]


def test_register_reports_every_field_problem_at_once(api):
    r = api(
        "POST",
        "/api/users/register/",
        json={"username": "x", "email": "not-an-email", "password": "short"},
    )
    assert r.status == 400
    assert set(r.json["errors"]) == {"username", "email", "password"}


def test_register_rejects_a_username_taken_in_any_case(api, make_user):
    user = make_user()
    r = api("POST", "/api/users/register/", json=_register_body(username=user.username.upper()))
    assert r.status == 400
    assert "username" in r.json["errors"]
    r = api("POST", "/api/users/register/", json=_register_body(email=user.email.upper()))
    assert r.status == 400 and "email" in r.json["errors"]


def test_password_longer_than_bcrypt_accepts_is_a_400_not_a_500(api):
    r = api("POST", "/api/users/register/", json=_register_body(password="é" * 40))
    assert r.status == 400
    assert "password" in r.json["errors"]


def test_a_stored_hash_that_is_not_bcrypt_refuses_the_login_with_a_401(api, make_user, db):
    # A row written by hand (or damaged): the login is refused like a wrong password.
    user = make_user()
    db.execute("UPDATE users SET password_hash = 'x' WHERE id = $1", user.id)
    r = api("POST", "/api/users/login/", json={"username": user.username, "password": PASSWORD})
    assert (r.status, r.json) == (401, {"error": "Invalid username or password"})


def test_login_with_the_right_password_returns_a_new_token(api, make_user):
    user = make_user()
    r = api("POST", "/api/users/login/", json={"username": user.username, "password": PASSWORD})
    assert r.status == 200
    assert set(r.json) == {"id", "username", "email", "first_name", "last_name", "token"}
    assert r.json["id"] == user.id
    assert api("GET", "/api/users/me/", token=r.json["token"]).status == 200


def test_wrong_password_and_unknown_user_get_the_same_401(api, make_user):
    user = make_user()
    wrong = api(
        "POST",
        "/api/users/login/",
        json={"username": user.username, "password": "not-the-password"},
    )
    unknown = api(
        "POST",
        "/api/users/login/",
        json={"username": "nobody_" + uuid.uuid4().hex, "password": "whatever-pass"},
    )
    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json == {"error": "Invalid username or password"}


def test_logout_revokes_the_token_at_once_but_not_other_tokens(api, make_user):
    user = make_user()
    other = api(
        "POST", "/api/users/login/", json={"username": user.username, "password": PASSWORD}
    ).json["token"]
    r = api("POST", "/api/users/logout/", token=user.token)
    assert r.status == 200
    assert r.json == {"success": True, "message": "Logged out successfully"}
    assert api("GET", "/api/users/me/", token=user.token).status == 401
    assert api("POST", "/api/users/logout/", token=user.token).status == 401
    assert api("GET", "/api/users/me/", token=other).status == 200


def test_revocation_survives_a_server_restart(start_server, make_user):
    user = make_user()
    own = start_server()
    assert api_request(own.url, "POST", "/api/users/logout/", token=user.token).status == 200
    own.stop()
    again = start_server()
    assert api_request(again.url, "GET", "/api/users/me/", token=user.token).status == 401


def test_me_requires_a_valid_bearer_token(api):
    assert api("GET", "/api/users/me/").status == 401
    assert api("GET", "/api/users/me/", headers={"Authorization": "Token abc"}).status == 401
    r = api("GET", "/api/users/me/", token="not.a.jwt")
    assert r.status == 401 and "error" in r.json


def test_get_me_shows_the_profile_fields(api, make_user):
    user = make_user()
    r = api("GET", "/api/users/me/", token=user.token)
    assert set(r.json) == {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "bio",
        "profile_picture",
        "date_joined",
        "timezone",
        "credits_per_hour",
    }
    assert r.json["date_joined"].endswith("Z")
    assert r.json["credits_per_hour"] == 0


def test_put_me_updates_allowed_fields_and_ignores_server_owned_ones(api, make_user):
    user = make_user()
    r = api(
        "PUT",
        "/api/users/me/",
        token=user.token,
        json={
            "first_name": "Jane",
            "bio": "Software engineer",
            "profile_picture": "https://example.com/p.jpg",
            "id": 999999,
            "username": "hijacked",
            "email": "evil@example.com",
            "balance": 1000,
        },
    )
    assert r.status == 200
    assert r.json["first_name"] == "Jane" and r.json["last_name"] == user.last_name
    assert r.json["bio"] == "Software engineer"
    assert r.json["profile_picture"] == "https://example.com/p.jpg"
    assert (r.json["id"], r.json["username"], r.json["email"]) == (
        user.id,
        user.username,
        user.email,
    )


def test_put_me_refuses_a_picture_that_is_not_an_http_url(api, make_user):
    user = make_user()
    r = api(
        "PUT", "/api/users/me/", token=user.token, json={"profile_picture": "javascript:alert(1)"}
    )
    assert r.status == 400 and "profile_picture" in r.json["errors"]


def test_bad_bodies_get_a_json_400(api, make_user):
    user = make_user()
    for body in ["not json", "[1, 2]", '"text"', "null", '{"bio": NaN}', "[" * 5000]:
        r = api("PUT", "/api/users/me/", token=user.token, body=body)
        assert r.status == 400, body
        assert "error" in r.json
    r = api("PUT", "/api/users/me/", token=user.token, body=b'{"bio": "\xff"}')
    assert r.status == 400
    r = api("PUT", "/api/users/me/", token=user.token, json={"bio": "a\u0000b"})
    assert r.status == 400 and "bio" in r.json["errors"]


def test_unknown_url_and_wrong_method_answer_json(api):
    r = api("GET", "/api/nothing-here/")
    assert r.status == 404 and r.json == {"error": "Not found"}
    r = api("DELETE", "/api/users/login/")
    assert r.status == 405 and "error" in r.json


def test_health_answers_ok_without_auth(api):
    r = api("GET", "/api/health/")
    assert r.status == 200 and r.json == {"status": "ok"}
