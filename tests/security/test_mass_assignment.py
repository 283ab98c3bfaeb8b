"""Mass assignment: server-owned fields sent in a body (ids, owners, balances, statuses, read
flags, timestamps) are ignored by PUT /api/users/me/ and every POST and PATCH."""

import pytest
from helpers import PASSWORD

from .probes import at, book, meeting_in, snapshot

LONG_AGO = "2001-01-01T00:00:00Z"


def server_owned(victim_id: int, **extra) -> dict:
    """What an attacker would like to set: another user's id everywhere, money, flags, dates."""
    fields = {
        "id": 999_999,
        "pk": 999_999,
        "user": victim_id,
        "user_id": victim_id,
        "owner": victim_id,
        "owner_id": victim_id,
        "requester": victim_id,
        "requester_id": victim_id,
        "sender": victim_id,
        "sender_id": victim_id,
        "reviewer": victim_id,
        "reviewer_id": victim_id,
        "payer_id": victim_id,
        "balance": 1_000_000,
        "credits": 1_000_000,
        "new_balance": 1_000_000,
        "status": "completed",
        "is_read": True,
        "is_staff": True,
        "is_superuser": True,
        "is_admin": True,
        "role": "admin",
        "created_at": LONG_AGO,
        "updated_at": LONG_AGO,
        "date_joined": LONG_AGO,
        "password_hash": "$2b$04$" + "x" * 53,
        "transaction_id": "sim_forged",
        "currency": "EUR",
        "username": "hijacked",
        "email": "hijacked@example.com",
        "password": "hijacked-password",
    }
    fields.update(extra)
    return fields


def test_put_me_changes_only_the_four_profile_fields(api, db, make_user):
    user, victim = make_user(), make_user()
    before = db.fetchrow("SELECT * FROM users WHERE id = $1", user.id)
    victim_before = snapshot(db, victim)
    r = api(
        "PUT",
        "/api/users/me/",
        token=user.token,
        json={
            **server_owned(victim.id),
            "first_name": "Ada",
            "last_name": "Lovelace",
            "bio": "Analyst",
            "profile_picture": "https://example.com/ada.png",
        },
    )
    assert r.status == 200, r.text
    after = db.fetchrow("SELECT * FROM users WHERE id = $1", user.id)
    # search_document is generated from the names and bio by PostgreSQL itself.
    changed = {k for k in before.keys() if before[k] != after[k]} - {"search_document"}
    assert changed == {"first_name", "last_name", "bio", "profile_picture"}
    assert (r.json["id"], r.json["username"], r.json["email"]) == (
        user.id,
        user.username,
        user.email,
    )
    assert snapshot(db, victim) == victim_before
    assert db.fetchval("SELECT balance FROM credit_accounts WHERE user_id = $1", user.id) == 1
    # The password did not change: the old one logs in, the sent one does not.
    assert (
        api(
            "POST", "/api/users/login/", json={"username": user.username, "password": PASSWORD}
        ).status
        == 200
    )
    assert (
        api(
            "POST",
            "/api/users/login/",
            json={"username": user.username, "password": "hijacked-password"},
        ).status
        == 401
    )


def test_register_sets_its_own_id_balance_and_dates(api, db):
    r = api(
        "POST",
        "/api/users/register/",
        json={
            **server_owned(1),
            "username": "fresh_mass_user",
            "email": "fresh_mass@example.com",
            "password": PASSWORD,
        },
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM users WHERE id = $1", r.json["id"])
    assert r.json["id"] != 999_999 and row["username"] == "fresh_mass_user"
    assert row["date_joined"].year > 2001 and row["password_hash"] != "$2b$04$" + "x" * 53
    assert db.fetchval("SELECT balance FROM credit_accounts WHERE user_id = $1", r.json["id"]) == 1
    assert (
        api(
            "POST", "/api/users/login/", json={"username": "fresh_mass_user", "password": PASSWORD}
        ).status
        == 200
    )


def test_skills_and_availability_belong_to_the_caller(api, db, make_user):
    user, victim = make_user(), make_user()
    victim_before = snapshot(db, victim)
    r = api(
        "POST",
        "/api/user-skills/",
        token=user.token,
        json={
            **server_owned(victim.id),
            "category": 1,
            "skill_name": "Fuzzing",
            "proficiency_level": "advanced",
        },
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM user_skills WHERE id = $1", r.json["id"])
    assert row["user_id"] == user.id and row["id"] != 999_999

    r = api(
        "POST",
        "/api/user-availability/",
        token=user.token,
        json={
            **server_owned(victim.id),
            "day_of_week": 3,
            "start_time": "09:00:00",
            "end_time": "11:00:00",
        },
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM user_availability WHERE id = $1", r.json["id"])
    assert row["user_id"] == user.id and row["id"] != 999_999
    assert snapshot(db, victim) == victim_before


def test_a_booking_is_pending_and_requested_by_the_caller(api, db, make_user):
    requester, expert, victim = make_user(), make_user(), make_user()
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            **server_owned(victim.id),
            "title": "Mass assignment",
            "expert_id": expert.id,
            "category_id": 1,
            "scheduled_start": at(30),
            "scheduled_end": at(31),
        },
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM meetings WHERE id = $1", r.json["id"])
    assert (row["requester_id"], row["expert_id"], row["status"]) == (
        requester.id,
        expert.id,
        "pending",
    )
    assert row["id"] != 999_999 and row["created_at"].year > 2001


def test_a_status_change_moves_only_the_status(api, db, make_user):
    requester, expert, victim = make_user(), make_user(), make_user()
    meeting = book(api, requester, expert)
    before = db.fetchrow("SELECT * FROM meetings WHERE id = $1", meeting["id"])
    r = api(
        "PATCH",
        f"/api/meetings/{meeting['id']}/update_status/",
        token=expert.token,
        json={
            **server_owned(victim.id),
            "status": "confirmed",
            "expert_id": victim.id,
            "title": "renamed",
            "scheduled_start": at(100),
        },
    )
    assert r.status == 200, r.text
    after = db.fetchrow("SELECT * FROM meetings WHERE id = $1", meeting["id"])
    assert {k for k in before.keys() if before[k] != after[k]} == {"status", "updated_at"}
    assert after["status"] == "confirmed"


def test_a_review_is_by_the_caller(api, db, make_user):
    requester, expert, victim = make_user(), make_user(), make_user()
    meeting = meeting_in(api, requester, expert, "completed")
    r = api(
        "POST",
        "/api/reviews/",
        token=requester.token,
        json={
            **server_owned(victim.id),
            "meeting_id": meeting["id"],
            "reviewee_id": expert.id,
            "rating": 4,
        },
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM reviews WHERE id = $1", r.json["id"])
    assert (row["reviewer_id"], row["reviewee_id"]) == (requester.id, expert.id)
    assert row["id"] != 999_999 and row["created_at"].year > 2001


def test_a_message_is_from_the_caller_and_unread(api, db, make_user):
    sender, receiver, victim = make_user(), make_user(), make_user()
    r = api(
        "POST",
        "/api/messages/",
        token=sender.token,
        json={**server_owned(victim.id), "receiver_id": receiver.id, "content": "hi"},
    )
    assert r.status == 201, r.text
    row = db.fetchrow("SELECT * FROM messages WHERE id = $1", r.json["id"])
    assert (row["sender_id"], row["receiver_id"], row["is_read"]) == (sender.id, receiver.id, False)
    assert row["created_at"].year > 2001


def test_mark_read_and_mark_all_read_touch_only_the_callers_rows(api, db, make_user):
    user, friend, victim = make_user(), make_user(), make_user()
    # The victim has unread messages from the friend and unread notifications.
    assert (
        api(
            "POST",
            "/api/messages/",
            token=friend.token,
            json={"receiver_id": victim.id, "content": "for the victim"},
        ).status
        == 201
    )
    assert (
        api(
            "POST",
            "/api/messages/",
            token=friend.token,
            json={"receiver_id": user.id, "content": "for the user"},
        ).status
        == 201
    )
    victim_before = snapshot(db, victim)
    r = api(
        "POST",
        "/api/messages/mark_read/",
        token=user.token,
        json={**server_owned(victim.id), "with_user": friend.id, "receiver_id": victim.id},
    )
    assert r.status == 200 and r.json["marked_read"] == 1
    # Reading the conversation read its notification too: one more for mark_all_read.
    assert (
        api(
            "POST",
            "/api/messages/",
            token=friend.token,
            json={"receiver_id": user.id, "content": "for the user, again"},
        ).status
        == 201
    )
    r = api(
        "POST", "/api/notifications/mark_all_read/", token=user.token, json=server_owned(victim.id)
    )
    assert r.status == 200 and r.json["marked_read"] == 1
    assert snapshot(db, victim) == victim_before


def test_patching_a_notification_changes_only_is_read(api, db, make_user):
    user, friend, victim = make_user(), make_user(), make_user()
    assert (
        api(
            "POST",
            "/api/messages/",
            token=friend.token,
            json={"receiver_id": user.id, "content": "ping"},
        ).status
        == 201
    )
    note = api("GET", "/api/notifications/", token=user.token).json[0]
    before = db.fetchrow("SELECT * FROM notifications WHERE id = $1", note["id"])
    r = api(
        "PATCH",
        f"/api/notifications/{note['id']}/",
        token=user.token,
        json={
            **server_owned(victim.id),
            "is_read": True,
            "title": "forged",
            "content": "forged",
            "notification_type": "new_review",
            "related_id": 1,
        },
    )
    assert r.status == 200, r.text
    after = db.fetchrow("SELECT * FROM notifications WHERE id = $1", note["id"])
    assert {k for k in before.keys() if before[k] != after[k]} == {"is_read", "updated_at"}
    assert after["updated_at"].year > 2001


def test_a_purchase_credits_only_what_is_paid_for_to_the_caller(api, db, make_user):
    buyer, victim = make_user(), make_user()
    victim_before = snapshot(db, victim)
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=buyer.token,
        json={
            **server_owned(victim.id),
            "payment_method": "paypal",
            "amount": "2.00",
            "credits_to_purchase": 2,
            "credits_purchased": 500,
            "status": "pending",
        },
    )
    assert r.status == 200, r.text
    assert r.json["new_balance"] == 3
    payment = db.fetchrow("SELECT * FROM payments WHERE user_id = $1", buyer.id)
    assert (payment["credits_purchased"], payment["status"], payment["currency"]) == (
        2,
        "completed",
        "USD",
    )
    assert payment["transaction_id"] != "sim_forged"
    assert snapshot(db, victim) == victim_before


@pytest.mark.parametrize(
    "redirect",
    ["expert_id", "to_user", "to_user_id", "receiver_id", "payee_id", "from_user", "from_user_id"],
)
def test_a_transfer_moves_credits_from_the_caller_to_the_meetings_expert(
    api, db, make_user, redirect
):
    requester, expert, victim = make_user(), make_user(), make_user()
    meeting = book(api, requester, expert)
    victim_before = snapshot(db, victim)
    r = api(
        "POST",
        "/api/credits/transfer/",
        token=requester.token,
        json={
            **server_owned(victim.id),
            redirect: victim.id,
            "meeting_id": meeting["id"],
            "amount": 1,
        },
    )
    assert r.status == 200, r.text
    balances = dict(
        db.fetch(
            "SELECT user_id, balance FROM credit_accounts WHERE user_id = ANY($1::bigint[])",
            [requester.id, expert.id],
        )
    )
    # The meeting is pending: the credit is held on it for the expert, nobody else's.
    assert balances == {requester.id: 0, expert.id: 1}
    held = db.fetchrow(
        "SELECT paid_credits, payment_status FROM meetings WHERE id = $1", meeting["id"]
    )
    assert tuple(held) == (1, "held")
    assert snapshot(db, victim) == victim_before


def test_logout_revokes_only_the_callers_token(api, make_user):
    user, victim = make_user(), make_user()
    r = api(
        "POST",
        "/api/users/logout/",
        token=user.token,
        json=server_owned(
            victim.id, jti="00000000-0000-0000-0000-000000000000", token=victim.token
        ),
    )
    assert r.status == 200
    assert api("GET", "/api/users/me/", token=victim.token).status == 200
    assert api("GET", "/api/users/me/", token=user.token).status == 401
