"""Notifications: listing with the is_read filter, reading one, marking one or all read, and
the unread count. Messages are the notifications' source here."""

from helpers import no_frame, recv

NOTIFICATION_FIELDS = {
    "id",
    "user_id",
    "title",
    "content",
    "notification_type",
    "related_id",
    "is_read",
    "created_at",
}


def notify(api, sender, receiver, count=1):
    """Send `count` messages; returns the receiver's new notifications, newest first."""
    for i in range(count):
        r = api(
            "POST",
            "/api/messages/",
            token=sender.token,
            json={"receiver_id": receiver.id, "content": f"message {i}"},
        )
        assert r.status == 201, r.text
    return api("GET", "/api/notifications/", token=receiver.token).json[:count]


def ids(rows):
    return [row["id"] for row in rows]


def test_list_has_the_spec_fields_newest_first(api, make_user):
    alice, bob = make_user(), make_user()
    notes = notify(api, alice, bob, 3)
    r = api("GET", "/api/notifications/", token=bob.token)
    assert r.status == 200 and len(r.json) == 3
    assert all(set(n) == NOTIFICATION_FIELDS for n in r.json)
    assert ids(r.json) == sorted(ids(notes), reverse=True)
    assert all(n["user_id"] == bob.id for n in r.json)
    assert api("GET", "/api/notifications/", token=alice.token).json == []
    assert api("GET", "/api/notifications/").status == 401


def test_is_read_filter(api, make_user):
    alice, bob = make_user(), make_user()
    newest, middle, oldest = notify(api, alice, bob, 3)
    r = api("PATCH", f"/api/notifications/{middle['id']}/", token=bob.token, json={"is_read": True})
    assert r.status == 200
    unread = api("GET", "/api/notifications/?is_read=false", token=bob.token)
    assert unread.status == 200 and ids(unread.json) == [newest["id"], oldest["id"]]
    read = api("GET", "/api/notifications/?is_read=true", token=bob.token).json
    assert ids(read) == [middle["id"]] and read[0]["is_read"] is True
    assert len(api("GET", "/api/notifications/", token=bob.token).json) == 3
    for value in ["yes", "", "2", "null"]:
        r = api("GET", f"/api/notifications/?is_read={value}", token=bob.token)
        assert r.status == 400 and set(r.json["errors"]) == {"is_read"}, value


def test_get_one_is_404_for_someone_elses_or_a_missing_id(api, make_user, db):
    alice, bob = make_user(), make_user()
    (note,) = notify(api, alice, bob)
    r = api("GET", f"/api/notifications/{note['id']}/", token=bob.token)
    assert r.status == 200 and r.json == note
    missing = db.fetchval("SELECT coalesce(max(id), 0) + 1000 FROM notifications")
    for user, nid in [(alice, note["id"]), (bob, missing), (bob, 0), (bob, 10**30)]:
        r = api("GET", f"/api/notifications/{nid}/", token=user.token)
        assert r.status == 404 and r.json == {"error": "Notification not found"}, nid
    assert api("GET", "/api/notifications/abc/", token=bob.token).status == 404


def test_patch_marks_own_notification_and_sets_updated_at(api, make_user, db):
    alice, bob = make_user(), make_user()
    (note,) = notify(api, alice, bob)
    db.execute(
        "UPDATE notifications SET updated_at = now() - interval '1 day' WHERE id = $1", note["id"]
    )
    r = api(
        "PATCH",
        f"/api/notifications/{note['id']}/",
        token=bob.token,
        json={"is_read": True, "title": "hijacked", "user_id": alice.id},
    )
    assert r.status == 200
    assert set(r.json) == {"id", "is_read", "updated_at"}
    assert r.json["id"] == note["id"] and r.json["is_read"] is True
    row = db.fetchrow(
        "SELECT is_read, title, user_id, updated_at > now() - interval '1 minute' "
        "AS fresh FROM notifications WHERE id = $1",
        note["id"],
    )
    assert dict(row) == {"is_read": True, "title": note["title"], "user_id": bob.id, "fresh": True}
    back = api(
        "PATCH", f"/api/notifications/{note['id']}/", token=bob.token, json={"is_read": False}
    )
    assert back.status == 200 and back.json["is_read"] is False


def test_patch_requires_a_json_boolean(api, make_user, db):
    alice, bob = make_user(), make_user()
    (note,) = notify(api, alice, bob)
    for body in [{}, {"is_read": "true"}, {"is_read": 1}, {"is_read": None}]:
        r = api("PATCH", f"/api/notifications/{note['id']}/", token=bob.token, json=body)
        assert r.status == 400 and set(r.json["errors"]) == {"is_read"}, body
    assert db.fetchval("SELECT is_read FROM notifications WHERE id = $1", note["id"]) is False


def test_patch_on_someone_elses_notification_is_404_and_changes_nothing(api, make_user, db):
    alice, bob = make_user(), make_user()
    (note,) = notify(api, alice, bob)
    before = db.fetchrow("SELECT is_read, updated_at FROM notifications WHERE id = $1", note["id"])
    r = api("PATCH", f"/api/notifications/{note['id']}/", token=alice.token, json={"is_read": True})
    assert r.status == 404 and r.json == {"error": "Notification not found"}
    after = db.fetchrow("SELECT is_read, updated_at FROM notifications WHERE id = $1", note["id"])
    assert after == before and after["is_read"] is False
    r = api("PATCH", f"/api/notifications/{10**30}/", token=bob.token, json={"is_read": True})
    assert r.status == 404 and r.json == {"error": "Notification not found"}


def test_mark_all_read_and_unread_count_move_together(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    notify(api, alice, bob, 3)
    notify(api, alice, carol, 2)

    def count(user):
        r = api("GET", "/api/notifications/unread_count/", token=user.token)
        assert r.status == 200
        return r.json["unread_count"]

    assert (count(bob), count(carol), count(alice)) == (3, 2, 0)
    r = api("POST", "/api/notifications/mark_all_read/", token=bob.token)
    assert r.status == 200 and r.json == {"success": True, "marked_read": 3}
    assert (count(bob), count(carol)) == (0, 2)
    assert all(n["is_read"] for n in api("GET", "/api/notifications/", token=bob.token).json)
    notify(api, alice, bob)
    assert count(bob) == 1
    r = api("POST", "/api/notifications/mark_all_read/", token=bob.token)
    assert r.json == {"success": True, "marked_read": 1}
    r = api("POST", "/api/notifications/mark_all_read/", token=bob.token)
    assert r.json == {"success": True, "marked_read": 0}
    assert api("GET", "/api/notifications/unread_count/").status == 401


def test_pages_are_disjoint_and_in_order(api, make_user):
    alice, bob = make_user(), make_user()
    notify(api, alice, bob, 5)
    full = ids(api("GET", "/api/notifications/", token=bob.token).json)
    assert len(full) == 5 and full == sorted(full, reverse=True)
    first = ids(api("GET", "/api/notifications/?limit=2", token=bob.token).json)
    second = ids(
        api("GET", f"/api/notifications/?limit=2&before_id={first[-1]}", token=bob.token).json
    )
    third = ids(
        api("GET", f"/api/notifications/?limit=2&before_id={second[-1]}", token=bob.token).json
    )
    assert first + second + third == full and [len(first), len(second), len(third)] == [2, 2, 1]
    unread = ids(
        api(
            "GET", f"/api/notifications/?is_read=false&limit=2&before_id={full[1]}", token=bob.token
        ).json
    )
    assert unread == full[2:4]
    r = api("GET", "/api/notifications/?limit=500", token=bob.token)
    assert r.status == 400 and set(r.json["errors"]) == {"limit"}


async def test_reading_a_conversation_reads_its_message_notifications_and_says_so_live(
    ws, api, make_user
):
    """mark_read also reads the reader's new_message notifications about that sender's
    messages, in its transaction, and pushes each again (now read) so a badge can follow."""
    alice, bob, carol = make_user(), make_user(), make_user()
    from_alice = notify(api, alice, bob, 2)
    from_carol = notify(api, carol, bob, 1)
    badge = await ws("/ws/notifications/", bob.token)
    r = api("POST", "/api/messages/mark_read/", token=bob.token, json={"with_user": alice.id})
    assert r.status == 200 and r.json == {"success": True, "marked_read": 2}
    frames = [await recv(badge), await recv(badge)]
    assert [f["type"] for f in frames] == ["notification.receive"] * 2
    assert [f["notification"]["id"] for f in frames] == sorted(ids(from_alice))
    assert all(f["notification"]["is_read"] is True for f in frames)
    assert all(set(f["notification"]) == NOTIFICATION_FIELDS for f in frames)
    unread = api("GET", "/api/notifications/?is_read=false", token=bob.token).json
    assert ids(unread) == ids(from_carol)
    assert api("GET", "/api/notifications/unread_count/", token=bob.token).json == {
        "unread_count": 1
    }
    # Nothing more to read: no frame, no change.
    r = api("POST", "/api/messages/mark_read/", token=bob.token, json={"with_user": alice.id})
    assert r.json == {"success": True, "marked_read": 0}
    await no_frame(badge)
