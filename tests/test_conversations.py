"""GET /api/conversations/: one row per correspondent, latest exchange first, with the unread
count moving as messages are sent and marked read."""

CONVERSATION_FIELDS = {"user_id", "user_name", "last_message", "unread_count"}


def send(api, sender, receiver, content):
    r = api(
        "POST",
        "/api/messages/",
        token=sender.token,
        json={"receiver_id": receiver.id, "content": content},
    )
    assert r.status == 201, r.text
    return r.json


def conversations(api, user, query=""):
    r = api("GET", f"/api/conversations/{query}", token=user.token)
    assert r.status == 200, r.text
    return r.json


def summary(rows):
    return [(row["user_id"], row["last_message"]["content"], row["unread_count"]) for row in rows]


def test_one_row_per_correspondent_latest_first_with_unread_counts(api, make_user):
    alice = make_user()
    bob, carol = make_user(first_name="Bob", last_name="Stone"), make_user()
    send(api, bob, alice, "b1")
    send(api, alice, bob, "a1")
    send(api, bob, alice, "b2")
    send(api, alice, carol, "a2")
    last = send(api, carol, alice, "c1")
    rows = conversations(api, alice)
    assert summary(rows) == [(carol.id, "c1", 1), (bob.id, "b2", 2)]
    assert all(set(row) == CONVERSATION_FIELDS for row in rows)
    assert rows[0]["last_message"] == last  # the message object of GET /api/messages/
    assert rows[1]["user_name"] == "Bob Stone"
    # The other side: what alice sent is unread by them, not by alice.
    assert summary(conversations(api, bob)) == [(alice.id, "b2", 1)]
    assert summary(conversations(api, carol)) == [(alice.id, "c1", 1)]


def test_unread_counts_move_as_messages_are_sent_and_read(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    send(api, bob, alice, "b1")
    send(api, bob, alice, "b2")
    send(api, carol, alice, "c1")
    assert summary(conversations(api, alice)) == [(carol.id, "c1", 1), (bob.id, "b2", 2)]
    # Reading the list changes nothing.
    assert summary(conversations(api, alice)) == [(carol.id, "c1", 1), (bob.id, "b2", 2)]

    r = api("POST", "/api/messages/mark_read/", token=alice.token, json={"with_user": bob.id})
    assert r.status == 200 and r.json["marked_read"] == 2
    rows = conversations(api, alice)
    assert summary(rows) == [(carol.id, "c1", 1), (bob.id, "b2", 0)]
    assert rows[1]["last_message"]["is_read"] is True

    send(api, bob, alice, "b3")
    assert summary(conversations(api, alice)) == [(bob.id, "b3", 1), (carol.id, "c1", 1)]
    # Replying does not read what they sent; it makes the reply the last message.
    send(api, alice, carol, "a1")
    assert summary(conversations(api, alice)) == [(carol.id, "a1", 1), (bob.id, "b3", 1)]
    assert summary(conversations(api, carol)) == [(alice.id, "a1", 1)]


def test_limit_takes_the_latest_conversations(api, make_user):
    me = make_user()
    others = [make_user() for _ in range(3)]
    for other in others:
        send(api, other, me, f"from {other.id}")
    assert [row["user_id"] for row in conversations(api, me, "?limit=2")] == [
        others[2].id,
        others[1].id,
    ]
    assert len(conversations(api, me)) == 3
    for bad in ["0", "201", "x", "1.5"]:
        r = api("GET", f"/api/conversations/?limit={bad}", token=me.token)
        assert r.status == 400 and set(r.json["errors"]) == {"limit"}, bad


def test_no_messages_no_conversations_and_a_token_is_required(api, make_user):
    loner = make_user()
    assert conversations(api, loner) == []
    assert api("GET", "/api/conversations/").status == 401
