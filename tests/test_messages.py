"""Messages: sending, listing (all mine and one conversation), marking a conversation read,
and the notification and events a message leaves behind."""

import json

MESSAGE_FIELDS = {
    "id",
    "sender_id",
    "sender_name",
    "receiver_id",
    "receiver_name",
    "content",
    "is_read",
    "created_at",
}


def send(api, sender, receiver, content="Hello there"):
    r = api(
        "POST",
        "/api/messages/",
        token=sender.token,
        json={"receiver_id": receiver.id, "content": content},
    )
    assert r.status == 201, r.text
    return r.json


def ids(rows):
    return [row["id"] for row in rows]


def test_sent_message_has_the_spec_fields_and_both_parties_see_it(api, make_user):
    alice, bob, carol = make_user(), make_user(first_name="", last_name=""), make_user()
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "  Looking forward to it.  "},
    )
    assert r.status == 201
    message = r.json
    assert set(message) == MESSAGE_FIELDS
    assert (message["sender_id"], message["receiver_id"]) == (alice.id, bob.id)
    assert message["sender_name"] == alice.name
    assert message["receiver_name"] == bob.username  # no first/last name: the username
    assert message["content"] == "Looking forward to it."
    assert message["is_read"] is False and message["created_at"].endswith("Z")
    for user in (alice, bob):
        listed = api("GET", "/api/messages/", token=user.token)
        assert listed.status == 200 and listed.json == [message]
    assert api("GET", "/api/messages/", token=carol.token).json == []


def test_send_ignores_server_owned_fields(api, make_user, db):
    alice, bob, carol = make_user(), make_user(), make_user()
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={
            "receiver_id": bob.id,
            "content": "hi",
            "sender_id": carol.id,
            "is_read": True,
            "id": 999999999,
        },
    )
    assert r.status == 201
    assert r.json["sender_id"] == alice.id and r.json["is_read"] is False
    assert r.json["id"] != 999999999
    row = db.fetchrow("SELECT sender_id, is_read FROM messages WHERE id = $1", r.json["id"])
    assert dict(row) == {"sender_id": alice.id, "is_read": False}


def test_sending_to_yourself_or_to_nobody_is_a_400_on_receiver_id(api, make_user, db):
    alice = make_user()
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": alice.id, "content": "note to self"},
    )
    assert r.status == 400 and set(r.json["errors"]) == {"receiver_id"}
    missing = db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM users")
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": missing, "content": "anyone there?"},
    )
    assert r.status == 400
    assert r.json == {"errors": {"receiver_id": ["User with this ID does not exist."]}}
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", alice.id) == 0
    assert db.fetchval("SELECT count(*) FROM user_events WHERE user_id = $1", alice.id) == 0


def test_send_validates_every_field(api, make_user):
    alice, bob = make_user(), make_user()
    cases = [
        ({}, {"receiver_id", "content"}),
        ({"receiver_id": bob.id, "content": "   "}, {"content"}),
        ({"receiver_id": bob.id, "content": "x" * 5001}, {"content"}),
        ({"receiver_id": bob.id, "content": 42}, {"content"}),
        ({"receiver_id": str(bob.id), "content": "hi"}, {"receiver_id"}),
        ({"receiver_id": True, "content": "hi"}, {"receiver_id"}),
        ({"receiver_id": 0, "content": "hi"}, {"receiver_id"}),
        ({"receiver_id": 2**63, "content": "hi"}, {"receiver_id"}),
    ]
    for body, fields in cases:
        r = api("POST", "/api/messages/", token=alice.token, json=body)
        assert r.status == 400, body
        assert set(r.json["errors"]) == fields, body
    longest = send(api, alice, bob, " " + "y" * 5000 + " ")
    assert longest["content"] == "y" * 5000


def test_messages_require_a_token(api):
    assert api("GET", "/api/messages/").status == 401
    assert api("POST", "/api/messages/", json={"receiver_id": 1, "content": "x"}).status == 401
    assert api("POST", "/api/messages/mark_read/", json={"with_user": 1}).status == 401


def test_with_user_shows_only_that_conversation_in_both_directions(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    m1 = send(api, alice, bob, "a->b")
    m2 = send(api, carol, alice, "c->a")
    m3 = send(api, bob, alice, "b->a")
    m4 = send(api, bob, carol, "b->c")
    everything = api("GET", "/api/messages/", token=alice.token).json
    assert ids(everything) == [m3["id"], m2["id"], m1["id"]]
    with_bob = api("GET", f"/api/messages/?with_user={bob.id}", token=alice.token)
    assert with_bob.status == 200 and ids(with_bob.json) == [m3["id"], m1["id"]]
    assert with_bob.json[0] == m3
    with_carol = api("GET", f"/api/messages/?with_user={carol.id}", token=bob.token).json
    assert ids(with_carol) == [m4["id"]]
    assert api("GET", f"/api/messages/?with_user={alice.id}", token=alice.token).json == []


def test_bad_with_user_is_a_400(api, make_user):
    alice = make_user()
    for value in ["abc", "0", "-3", "1.5", "", "true", "99999999999999999999"]:
        r = api("GET", f"/api/messages/?with_user={value}", token=alice.token)
        assert r.status == 400, value
        assert set(r.json["errors"]) == {"with_user"}, value


def test_a_message_notifies_the_receiver_and_records_events_for_both(api, make_user, db):
    alice, bob = make_user(), make_user()
    message = send(api, alice, bob, "ping")
    notes = api("GET", "/api/notifications/", token=bob.token).json
    assert len(notes) == 1
    note = notes[0]
    assert note["notification_type"] == "new_message" and note["title"] == "New Message"
    assert note["content"] == f"You have a new message from {alice.name}."
    assert note["related_id"] == message["id"] and note["user_id"] == bob.id
    assert note["is_read"] is False
    assert api("GET", "/api/notifications/", token=alice.token).json == []

    rows = db.fetch(
        "SELECT user_id, seq, event_type, peer_id, payload FROM user_events "
        "WHERE user_id = ANY($1::bigint[]) ORDER BY user_id, seq",
        [alice.id, bob.id],
    )
    by_user = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row)
    assert [r["event_type"] for r in by_user[alice.id]] == ["message.receive"]
    assert sorted(r["event_type"] for r in by_user[bob.id]) == [
        "message.receive",
        "notification.receive",
    ]
    for user_id, peer in ((alice.id, bob.id), (bob.id, alice.id)):
        event = next(r for r in by_user[user_id] if r["event_type"] == "message.receive")
        assert event["peer_id"] == peer
        assert json.loads(event["payload"]) == {"type": "message.receive", "message": message}
    note_event = next(r for r in by_user[bob.id] if r["event_type"] == "notification.receive")
    assert json.loads(note_event["payload"])["notification"] == note
    assert sorted(r["seq"] for r in by_user[bob.id]) == [1, 2]


def test_reading_the_list_marks_nothing_read(api, make_user, db):
    alice, bob = make_user(), make_user()
    message = send(api, alice, bob)
    api("GET", "/api/messages/", token=bob.token)
    api("GET", f"/api/messages/?with_user={alice.id}", token=bob.token)
    assert db.fetchval("SELECT is_read FROM messages WHERE id = $1", message["id"]) is False


def test_mark_read_touches_only_messages_that_user_sent_the_caller(api, make_user, db):
    alice, bob, carol = make_user(), make_user(), make_user()
    a1, a2 = send(api, alice, bob, "one"), send(api, alice, bob, "two")
    b1 = send(api, bob, alice, "reply")
    c1 = send(api, carol, bob, "other")
    a3 = send(api, alice, carol, "elsewhere")
    r = api("POST", "/api/messages/mark_read/", token=bob.token, json={"with_user": alice.id})
    assert r.status == 200 and r.json == {"success": True, "marked_read": 2}
    read = {
        row["id"]: row["is_read"]
        for row in db.fetch(
            "SELECT id, is_read FROM messages WHERE id = ANY($1::bigint[])",
            [a1["id"], a2["id"], b1["id"], c1["id"], a3["id"]],
        )
    }
    assert read == {
        a1["id"]: True,
        a2["id"]: True,
        b1["id"]: False,
        c1["id"]: False,
        a3["id"]: False,
    }
    listed = api("GET", f"/api/messages/?with_user={alice.id}", token=bob.token).json
    assert {m["id"]: m["is_read"] for m in listed} == {
        a1["id"]: True,
        a2["id"]: True,
        b1["id"]: False,
    }
    event = db.fetchrow(
        "SELECT peer_id, payload FROM user_events "
        "WHERE user_id = $1 AND event_type = 'message.read'",
        alice.id,
    )
    assert event["peer_id"] == bob.id
    assert json.loads(event["payload"]) == {
        "type": "message.read",
        "reader_id": bob.id,
        "up_to_id": a2["id"],
    }
    again = api("POST", "/api/messages/mark_read/", token=bob.token, json={"with_user": alice.id})
    assert again.json == {"success": True, "marked_read": 0}
    assert (
        db.fetchval(
            "SELECT count(*) FROM user_events WHERE user_id = $1 AND event_type = 'message.read'",
            alice.id,
        )
        == 1
    )


def test_mark_read_validates_with_user(api, make_user):
    alice = make_user()
    for body in [{}, {"with_user": "1"}, {"with_user": 0}, {"with_user": True}]:
        r = api("POST", "/api/messages/mark_read/", token=alice.token, json=body)
        assert r.status == 400, body
        assert set(r.json["errors"]) == {"with_user"}, body


def test_pages_are_disjoint_and_in_order(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    sent = []
    for i in range(7):
        pair = (alice, bob) if i % 2 == 0 else (bob, alice)
        sent.append(send(api, *pair, f"m{i}")["id"])
    send(api, carol, bob, "not in alice's list")
    newest_first = sent[::-1]
    for query in ("", f"with_user={bob.id}&"):
        pages, before = [], None
        while True:
            path = f"/api/messages/?{query}limit=3" + (f"&before_id={before}" if before else "")
            page = ids(api("GET", path, token=alice.token).json)
            if not page:
                break
            assert len(page) <= 3
            pages.append(page)
            before = page[-1]
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [i for p in pages for i in p] == newest_first, query
    default = ids(api("GET", "/api/messages/", token=alice.token).json)
    assert default == newest_first
    for value in ["0", "201", "abc", "-1"]:
        r = api("GET", f"/api/messages/?limit={value}", token=alice.token)
        assert r.status == 400 and set(r.json["errors"]) == {"limit"}, value
    r = api("GET", "/api/messages/?before_id=x", token=alice.token)
    assert r.status == 400 and set(r.json["errors"]) == {"before_id"}


def test_a_full_page_links_to_the_next_one(api, make_user):
    alice, bob = make_user(), make_user()
    ids = [
        api(
            "POST",
            "/api/messages/",
            token=alice.token,
            json={"receiver_id": bob.id, "content": f"m{i}"},
        ).json["id"]
        for i in range(3)
    ]
    first = api("GET", f"/api/messages/?with_user={alice.id}&limit=2", token=bob.token)
    assert [m["id"] for m in first.json] == [ids[2], ids[1]]
    link = first.headers["Link"]
    assert link.endswith('; rel="next"') and f"before_id={ids[1]}" in link
    next_url = link[link.index("<") + 1 : link.index(">")]
    second = api("GET", next_url, token=bob.token)
    assert [m["id"] for m in second.json] == [ids[0]]
    assert "Link" not in second.headers  # a short page is the last one
