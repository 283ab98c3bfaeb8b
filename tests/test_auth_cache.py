"""The in-memory authentication cache stays correct: every change to a user or a revocation,
by this process, another one or plain SQL, is seen by every process."""

import time

import jwt
from helpers import api_request


def _eventually(check, timeout: float = 2.0):
    """Changes made by other writers arrive by NOTIFY, within milliseconds; allow a little."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def test_own_profile_update_is_served_at_once(api, make_user):
    user = make_user()
    assert api("GET", "/api/users/me/", token=user.token).json["bio"] == ""
    assert api("PUT", "/api/users/me/", token=user.token, json={"bio": "fresh"}).status == 200
    assert api("GET", "/api/users/me/", token=user.token).json["bio"] == "fresh"


def test_a_change_made_in_sql_reaches_the_cache(api, make_user, db):
    user = make_user()
    assert api("GET", "/api/users/me/", token=user.token).json["first_name"] == user.first_name
    db.execute("UPDATE users SET first_name = 'Changed' WHERE id = $1", user.id)
    assert _eventually(
        lambda: api("GET", "/api/users/me/", token=user.token).json["first_name"] == "Changed"
    )


def test_logout_through_one_process_is_refused_by_another(start_server, make_user):
    one, two = start_server(), start_server()
    user = make_user()
    assert api_request(two.url, "GET", "/api/users/me/", token=user.token).status == 200  # cached
    assert api_request(one.url, "POST", "/api/users/logout/", token=user.token).status == 200
    assert _eventually(
        lambda: api_request(two.url, "GET", "/api/users/me/", token=user.token).status == 401
    )


def test_a_revocation_made_in_sql_is_refused(api, make_user, db):
    user = make_user()
    assert api("GET", "/api/users/me/", token=user.token).status == 200  # cached
    jti = jwt.decode(user.token, options={"verify_signature": False})["jti"]
    db.execute(
        "INSERT INTO revoked_tokens (jti, user_id, expires_at) "
        "VALUES ($1::uuid, $2, now() + interval '1 hour')",
        jti,
        user.id,
    )
    assert _eventually(lambda: api("GET", "/api/users/me/", token=user.token).status == 401)


def test_a_lost_listener_never_leaves_a_stale_user_and_comes_back(start_server, make_user, db):
    own = start_server()
    user = make_user()
    assert api_request(own.url, "GET", "/api/users/me/", token=user.token).status == 200
    # Cut every LISTEN connection of the test database, then change the user in SQL at once:
    # whether or not the notification was heard, the answer must be the new row.
    cut = db.fetchval("""SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE datname = current_database()
                           AND application_name = 'expertconnect-listener'""")
    assert cut >= 1
    db.execute("UPDATE users SET last_name = 'Rewritten' WHERE id = $1", user.id)
    assert _eventually(
        lambda: (
            api_request(own.url, "GET", "/api/users/me/", token=user.token).json["last_name"]
            == "Rewritten"
        )
    )
    # ...and the cache comes back by itself.
    db.execute("UPDATE users SET last_name = 'Again' WHERE id = $1", user.id)
    assert _eventually(
        lambda: (
            api_request(own.url, "GET", "/api/users/me/", token=user.token).json["last_name"]
            == "Again"
        ),
        4.0,
    )
