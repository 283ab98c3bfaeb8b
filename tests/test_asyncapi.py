"""docs/asyncapi.yaml against the server: real sockets provoke every frame the document
describes, and each frame the server sends is checked against the schema of its message and
must be one its channel lists. The server serves the document as JSON."""

from __future__ import annotations

import json

import jsonschema_rs
import yaml
from helpers import recv

from expertconnect.handlers.docs import ASYNCAPI_PATH

DOCUMENT = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
MESSAGES = DOCUMENT["components"]["messages"]


def _ref(ref: str) -> dict:
    node = DOCUMENT
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _validator(message: dict):
    # The document's components travel along, so that the payload's $refs resolve against it.
    root = {"components": DOCUMENT["components"], "$ref": message["payload"]["$ref"]}
    return jsonschema_rs.Draft7Validator(root, validate_formats=True)


VALIDATORS = {message["name"]: _validator(message) for message in MESSAGES.values()}


def channel_messages(channel: str, direction: str) -> set[str]:
    """The names of the messages a channel lists for `subscribe` (server to client) or
    `publish` (client to server)."""
    operation = DOCUMENT["channels"][channel].get(direction)
    if operation is None:
        return set()
    message = operation["message"]
    refs = message.get("oneOf", [message])
    return {_ref(m["$ref"])["name"] for m in refs}


class Checked:
    """Collects the frame types validated, so the test can show it covered the document."""

    def __init__(self):
        self.types: set[str] = set()

    def frame(self, channel: str, frame: dict, direction: str = "subscribe") -> dict:
        name = frame.get("type")
        assert name in channel_messages(channel, direction), (channel, frame)
        errors = [e.message for e in VALIDATORS[name].iter_errors(frame)]
        assert errors == [], (channel, frame, errors)
        self.types.add(name)
        return frame


def test_every_schema_refuses_unknown_fields_and_every_ref_resolves():
    def walk(where, schema):
        if "$ref" in schema:
            walk(schema["$ref"], _ref(schema["$ref"]))
            return
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, where
            assert set(schema["required"]) <= set(schema["properties"]), where
            for name, prop in schema["properties"].items():
                walk(f"{where}.{name}", prop)

    for channel in DOCUMENT["channels"]:
        for direction in ("publish", "subscribe"):
            for name in channel_messages(channel, direction):
                assert name in VALIDATORS, (channel, name)
    for key, message in MESSAGES.items():
        walk(key, message["payload"])


async def test_the_server_sends_exactly_the_documented_frames(ws, api, make_user):
    alice, bob = make_user(), make_user()
    checked = Checked()
    a_chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    b_all = await ws("/ws/", bob.token)
    b_notes = await ws("/ws/notifications/", bob.token)
    a_all = await ws("/ws/", alice.token)

    # message.send in; message.receive out to both parties, notification.receive to the receiver.
    send = {"type": "message.send", "content": "hello Bob", "client_msg_id": "hello-1"}
    checked.frame("/ws/chat/{receiver_id}/", send, "publish")
    a_chat.write_message(json.dumps(send))
    echo = checked.frame("/ws/chat/{receiver_id}/", await recv(a_chat))
    assert echo["type"] == "message.receive" and echo["message"]["content"] == "hello Bob"
    assert echo["client_msg_id"] == "hello-1"
    assert checked.frame("/ws/", await recv(a_all))["type"] == "message.receive"
    got = [checked.frame("/ws/", await recv(b_all)) for _ in range(2)]
    assert {f["type"] for f in got} == {"message.receive", "notification.receive"}
    note = checked.frame("/ws/notifications/", await recv(b_notes))
    assert note["notification"]["related_id"] == echo["message"]["id"]

    # message.read to the sender; the reader's notification again, now read.
    r = api("POST", "/api/messages/mark_read/", token=bob.token, json={"with_user": alice.id})
    assert r.status == 200 and r.json["marked_read"] == 1
    read = checked.frame("/ws/chat/{receiver_id}/", await recv(a_chat))
    assert read == {
        "type": "message.read",
        "reader_id": bob.id,
        "up_to_id": echo["message"]["id"],
        "event_id": read["event_id"],
    }
    assert checked.frame("/ws/", await recv(a_all))["type"] == "message.read"
    again = checked.frame("/ws/notifications/", await recv(b_notes))
    assert again["notification"]["id"] == note["notification"]["id"]
    assert again["notification"]["is_read"] is True
    assert checked.frame("/ws/", await recv(b_all)) == again

    # error: a bad frame on a chat socket and any frame on /ws/; both sockets stay open.
    a_chat.write_message("{not json")
    assert checked.frame("/ws/chat/{receiver_id}/", await recv(a_chat))["type"] == "error"
    b_all.write_message('{"type": "message.send", "content": "x"}')
    assert checked.frame("/ws/", await recv(b_all))["type"] == "error"

    # resync_required: resuming from an event the server never gave out.
    ahead = await ws("/ws/notifications/?last_event_id=999999", bob.token)
    assert checked.frame("/ws/notifications/", await recv(ahead)) == {"type": "resync_required"}

    assert checked.types == set(VALIDATORS), "every documented frame was provoked"


def test_the_server_serves_the_document_as_json_without_a_token(api):
    r = api("GET", "/api/asyncapi.json")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "public, max-age=3600"
    assert r.json == DOCUMENT and r.json["asyncapi"].startswith("2.")
