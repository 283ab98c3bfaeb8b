"""schemathesis against the running server, driven by the served /api/openapi.json: a fixed seed
and a bounded number of examples per operation, authenticated as a real user. Any 5xx, or any
response that does not match the document (body, status, content type, headers), fails."""

import datetime as dt
import subprocess
import sys

SEED = 20250320
MAX_EXAMPLES = 25
CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,response_headers_conformance"
)
# Logout revokes the token the run authenticates with: it gets a run of its own, last.
LOGOUT = "/api/users/logout/"


def _at(hours: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed_data(api, me, other) -> dict[str, list]:
    """Objects the fuzzed user can reach, so that generated ids sometimes exist and the
    operations behind a 404 are exercised too: meetings in each state, a notification, a
    conversation, a skill and a slot; both users are experts with weekly hours and a review
    received, so profiles, searches and free slots have something to show."""
    meetings = []
    # The expert confirms, the requester completes (the expert may not before the start).
    for i, path in enumerate(([], ["confirmed"], ["confirmed", "completed"])):
        # Two hours apart: confirmed meetings of one person may not overlap.
        r = api(
            "POST",
            "/api/meetings/",
            token=me.token,
            json={
                "title": "Fuzz",
                "expert_id": other.id,
                "category_id": 1,
                "scheduled_start": _at(24 + 2 * i),
                "scheduled_end": _at(25 + 2 * i),
            },
        )
        assert r.status == 201, r.text
        for status in path:
            assert (
                api(
                    "PATCH",
                    f"/api/meetings/{r.json['id']}/update_status/",
                    token=(other if status == "confirmed" else me).token,
                    json={"status": status},
                ).status
                == 200
            )
        meetings.append(r.json["id"])
    r = api(
        "POST", "/api/messages/", token=other.token, json={"receiver_id": me.id, "content": "hello"}
    )
    assert r.status == 201, r.text
    notifications = [n["id"] for n in api("GET", "/api/notifications/", token=me.token).json]
    r = api(
        "POST",
        "/api/user-skills/",
        token=me.token,
        json={"category": 1, "skill_name": "Python", "proficiency_level": "expert"},
    )
    assert r.status == 201, r.text
    skill = r.json["id"]
    r = api(
        "POST",
        "/api/user-availability/",
        token=me.token,
        json={"day_of_week": 1, "start_time": "09:00:00", "end_time": "17:00:00"},
    )
    assert r.status == 201, r.text
    slot = r.json["id"]
    r = api(
        "POST",
        "/api/user-skills/",
        token=other.token,
        json={"category": 4, "skill_name": "Figma", "proficiency_level": "advanced"},
    )
    assert r.status == 201, r.text
    for day in range(7):
        r = api(
            "POST",
            "/api/user-availability/",
            token=other.token,
            json={"day_of_week": day, "start_time": "00:00:00", "end_time": "23:59:00"},
        )
        assert r.status == 201, r.text
    for reviewer, reviewee in ((me, other), (other, me)):
        r = api(
            "POST",
            "/api/reviews/",
            token=reviewer.token,
            json={"meeting_id": meetings[-1], "reviewee_id": reviewee.id, "rating": 4},
        )
        assert r.status == 201, r.text
    return {
        "ids": meetings + notifications + [skill, slot],
        "meetings": meetings,
        "users": [other.id, me.id],
        "instants": [_at(0), _at(24), _at(24 * 7)],
    }


def _config(values: dict[str, list]) -> str:
    """schemathesis.toml: id-taking parameters draw half of their values from real ids (user
    ids for the /api/users/{id}/ routes), and the instants of the expert search and of free
    slots half of theirs from the hours around now."""

    def dictionary(name):
        return f"[dictionaries.{name}]\nvalues = {values[name]}\n"

    def binding(key, name):
        return f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'

    bindings = {
        "path.id": "ids",
        "body.meeting_id": "meetings",
        "body.expert_id": "users",
        "body.receiver_id": "users",
        "body.reviewee_id": "users",
        "body.with_user": "users",
        "query.user_id": "users",
        "query.with_user": "users",
        "query.available_at": "instants",
        "query.from": "instants",
        "query.to": "instants",
    }
    lines = [dictionary(name) for name in values] + ["[parameters]"]
    lines += [binding(key, name) for key, name in bindings.items()]
    for path in ("/api/users/{id}/", "/api/users/{id}/slots/"):
        lines += [
            "",
            "[[operations]]",
            f'include-path = "{path}"',
            f"parameters = {{ {binding('path.id', 'users')} }}",
        ]
    return "\n".join(lines) + "\n"


def _schemathesis(server, token: str, config, *filters: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        CHECKS,
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--header",
        f"Authorization: Bearer {token}",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        *filters,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=config.parent)


def test_schemathesis_finds_no_server_error_and_no_response_off_the_document(
    server, api, make_user, tmp_path
):
    me, other = make_user(), make_user()
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(_seed_data(api, me, other)))

    run = _schemathesis(server, me.token, config, "--exclude-path", LOGOUT)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "generated" in run.stdout and " failed" not in run.stdout, run.stdout[-5000:]

    run = _schemathesis(server, me.token, config, "--include-path", LOGOUT)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
