"""docs/openapi.yaml against the code and the contract: its paths and methods are exactly the
app's route table, its response fields exactly the spec's, and the server serves it as JSON."""

import re

import pytest
import yaml

from expertconnect.app import HANDLER_MODULES
from expertconnect.handlers.base import BaseHandler
from expertconnect.handlers.docs import OPENAPI_PATH

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
DOCUMENT = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))

# The spec's documented fields (shared/spec/api.md), endpoint by endpoint: the contract.
AUTH = {"id", "username", "email", "first_name", "last_name", "token"}
USER = {
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "bio",
    "profile_picture",
    "date_joined",
}
SKILL = {"id", "user", "category", "category_name", "skill_name", "proficiency_level"}
SLOT = {"id", "user", "day_of_week", "start_time", "end_time"}
TRANSACTION = {
    "id",
    "user",
    "username",
    "transaction_type",
    "amount",
    "description",
    "related_meeting_id",
    "created_at",
}
PAYMENT = {
    "id",
    "user",
    "payment_method",
    "amount",
    "currency",
    "status",
    "credits_purchased",
    "transaction_id",
    "created_at",
}
MEETING = {
    "id",
    "title",
    "description",
    "requester_id",
    "requester_name",
    "expert_id",
    "expert_name",
    "status",
    "category_id",
    "category_name",
    "scheduled_start",
    "scheduled_end",
    "created_at",
}
MEETING_REVIEW = {
    "id",
    "reviewer_id",
    "reviewer_name",
    "reviewee_id",
    "reviewee_name",
    "rating",
    "review_text",
    "created_at",
}
MESSAGE = {
    "id",
    "sender_id",
    "sender_name",
    "receiver_id",
    "receiver_name",
    "content",
    "is_read",
    "created_at",
}
NOTIFICATION = {
    "id",
    "user_id",
    "title",
    "content",
    "notification_type",
    "related_id",
    "is_read",
    "created_at",
}

# (method, path) -> (success status, fields of the object or of each list item, nested fields).
SPEC_RESPONSES = {
    ("post", "/api/users/register/"): ("201", AUTH, {}),
    ("post", "/api/users/login/"): ("200", AUTH, {}),
    ("post", "/api/users/logout/"): ("200", {"success", "message"}, {}),
    # The spec's user fields plus ours: `timezone` (an IANA name) and the expert's price
    # `credits_per_hour`, both settable by PUT.
    ("get", "/api/users/me/"): ("200", USER | {"timezone", "credits_per_hour"}, {}),
    ("put", "/api/users/me/"): ("200", USER | {"timezone", "credits_per_hour"}, {}),
    ("get", "/api/user-skills/"): ("200", SKILL, {}),
    ("post", "/api/user-skills/"): ("201", SKILL, {}),
    ("get", "/api/user-availability/"): ("200", SLOT, {}),
    ("post", "/api/user-availability/"): ("201", SLOT, {}),
    # Plus the credits held on open meetings: paid by me (held), for me as expert (incoming).
    ("get", "/api/credits/balance/"): (
        "200",
        {"id", "user", "balance", "updated_at", "held", "incoming"},
        {},
    ),
    ("post", "/api/credits/transfer/"): ("200", {"success", "message", "new_balance"}, {}),
    ("get", "/api/credit-transactions/"): ("200", TRANSACTION, {}),
    ("post", "/api/payments/purchase_credits/"): (
        "200",
        {"success", "payment", "transaction", "new_balance"},
        {"payment": PAYMENT, "transaction": TRANSACTION},
    ),
    # Plus the meeting's price (every meeting response) and what was paid for it (the detail).
    ("get", "/api/meetings/"): ("200", MEETING | {"price_credits"}, {}),
    ("post", "/api/meetings/"): ("201", MEETING | {"price_credits"}, {}),
    ("get", "/api/meetings/{id}/"): (
        "200",
        MEETING | {"price_credits", "paid_credits", "payment_status", "reviews"},
        {"reviews": MEETING_REVIEW},
    ),
    ("patch", "/api/meetings/{id}/update_status/"): ("200", {"id", "status", "updated_at"}, {}),
    ("post", "/api/reviews/"): ("201", MEETING_REVIEW | {"meeting_id"}, {}),
    ("get", "/api/messages/"): ("200", MESSAGE, {}),
    ("post", "/api/messages/"): ("201", MESSAGE, {}),
    ("get", "/api/notifications/"): ("200", NOTIFICATION, {}),
    ("patch", "/api/notifications/{id}/"): ("200", {"id", "is_read", "updated_at"}, {}),
}

# Endpoints the spec does not have, field for field as the code answers them (the handlers in
# expertconnect/handlers/experts.py and messages.py, the queries behind them).
CARD = {
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
CARD_SKILL = {"id", "category", "category_name", "skill_name", "proficiency_level"}
RECEIVED_REVIEW = {
    "id",
    "meeting_id",
    "reviewer_id",
    "reviewer_name",
    "rating",
    "review_text",
    "created_at",
}
ADDED_RESPONSES = {
    ("get", "/api/experts/"): ("200", CARD, {"skills": CARD_SKILL}),
    ("get", "/api/users/{id}/"): (
        "200",
        CARD | {"reviews"},
        {"skills": CARD_SKILL, "reviews": RECEIVED_REVIEW},
    ),
    ("get", "/api/users/{id}/slots/"): ("200", {"start", "end"}, {}),
    ("get", "/api/conversations/"): (
        "200",
        {"user_id", "user_name", "last_message", "unread_count"},
        {"last_message": MESSAGE},
    ),
}
RESPONSES = SPEC_RESPONSES | ADDED_RESPONSES


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        node = DOCUMENT
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def object_fields(schema: dict) -> dict:
    """The object schema itself, or the one of its items for a list."""
    schema = resolve(schema)
    if schema.get("type") == "array":
        schema = resolve(schema["items"])
    assert schema["type"] == "object"
    return schema


def route_table() -> set[tuple[str, str]]:
    """(method, path) of every REST route: regex groups become {id}; a method counts when the
    handler class, or a class between it and BaseHandler, defines it."""
    table = set()
    for module in HANDLER_MODULES:
        for pattern, handler in module.ROUTES:
            # Only /api/ is the REST API: /ws/ are WebSockets and /metrics is for Prometheus.
            if not pattern.startswith("/api/"):
                continue
            path = re.sub(r"\([^)]*\)", "{id}", pattern)
            own = [
                c for c in handler.__mro__ if issubclass(c, BaseHandler) and c is not BaseHandler
            ]
            table |= {(m, path) for m in HTTP_METHODS if any(m in vars(c) for c in own)}
    return table


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method not in ("parameters", "summary", "description")
    }


def test_the_document_has_exactly_the_routes_and_methods_of_the_app():
    table = route_table()
    assert ("get", "/api/meetings/{id}/") in table and ("delete", "/api/user-skills/{id}/") in table
    documented = documented_operations()
    assert documented - table == set(), "documented but not routed"
    assert table - documented == set(), "routed but not documented"


@pytest.mark.parametrize("operation", sorted(RESPONSES), ids=" ".join)
def test_response_fields_are_exactly_the_specs(operation):
    method, path = operation
    status, fields, nested = RESPONSES[operation]
    response = resolve(DOCUMENT["paths"][path][method]["responses"][status])
    schema = object_fields(response["content"]["application/json"]["schema"])
    assert set(schema["properties"]) == fields
    assert set(schema["required"]) == fields, "every documented field is always present"
    assert schema["additionalProperties"] is False
    for name, nested_fields in nested.items():
        inner = object_fields(schema["properties"][name])
        assert set(inner["properties"]) == set(inner["required"]) == nested_fields


def _response_schemas():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media in resolve(response).get("content", {}).values():
                    yield f"{method.upper()} {path} {status}", media["schema"]


def test_every_response_object_refuses_unknown_fields_so_drift_is_caught():
    def walk(where, schema):
        schema = resolve(schema)
        for option in schema.get("oneOf", []):
            walk(where, option)
        if schema.get("type") == "array":
            walk(where, schema["items"])
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, where
            for name, prop in schema["properties"].items():
                walk(f"{where} .{name}", prop)

    checked = 0
    for where, schema in _response_schemas():
        if where.startswith(("GET /api/openapi.json", "GET /api/asyncapi.json")):
            continue  # the documents themselves: described loosely on purpose
        walk(where, schema)
        checked += 1
    assert checked > 80


def test_errors_and_limits_are_documented_with_their_shapes():
    errors = DOCUMENT["components"]["responses"]
    assert {
        s["$ref"] for s in errors["BadRequest"]["content"]["application/json"]["schema"]["oneOf"]
    } == {"#/components/schemas/Error", "#/components/schemas/ValidationErrors"}
    assert set(errors["TooManyRequests"]["headers"]) == {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
    }
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            public = operation.get("security") == []
            codes = set(operation["responses"])
            if path not in (
                "/api/health/",
                "/api/health/live/",
                "/api/openapi.json",
                "/api/asyncapi.json",
            ):
                assert "429" in codes, (method, path)
            assert ("401" in codes) == (not public or path == "/api/users/login/"), (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= codes, (method, path)


def test_the_server_serves_the_document_as_json_without_a_token_or_a_rate_limit(api):
    r = api("GET", "/api/openapi.json")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-RateLimit-Limit") is None
    assert r.json == DOCUMENT and r.json["openapi"].startswith("3.")


def test_the_document_may_be_cached_but_errors_and_api_answers_may_not(api, make_user):
    r = api("GET", "/api/openapi.json")
    assert r.headers.get_all("Cache-Control") == ["public, max-age=3600"]
    # An error on the same URL is still no-store: send_error resets the headers.
    r = api("POST", "/api/openapi.json", json={})
    assert r.status == 405 and r.headers["Cache-Control"] == "no-store"
    r = api("GET", "/api/users/me/", token=make_user().token)
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"


def test_a_405_lists_in_allow_exactly_the_documented_methods_of_the_route(api, make_user):
    """RFC 9110 15.5.6, on every route: a method the route lacks is a 405 whose Allow header
    names the methods it has (and so the ones this document lists)."""
    token = make_user().token
    checked = 0
    for path, item in DOCUMENT["paths"].items():
        documented = [m.upper() for m in HTTP_METHODS if m in item]
        missing = [m.upper() for m in HTTP_METHODS if m not in item]
        for method in missing:
            r = api(method, path.replace("{id}", "1"), token=token)
            assert r.status == 405, (method, path, r.status, r.text)
            assert r.json == {"error": "Method not allowed"}
            assert r.headers.get_all("Allow") == [", ".join(documented)], (method, path)
            checked += 1
    assert checked > 80
    # A method Tornado itself does not know is a 405 with the same header.
    r = api("FETCH", "/api/users/me/", token=token)
    assert r.status == 405 and r.headers["Allow"] == "GET, PUT"
    # Only a 405 carries it.
    assert "Allow" not in api("GET", "/api/users/me/", token=token).headers
