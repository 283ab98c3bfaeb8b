"""Credit purchases, meeting payments and their escrow: each one transaction that moves a balance
and writes the ledger rows that explain it, so balance == signed sum of the ledger at every commit.
A payment for an open meeting is held on the meeting (meetings.paid_credits, payment_status) and
settled by whoever moves the meeting's status: released to the expert on completion, refunded
to the requester on cancellation, in that same transaction."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from expertconnect.actions import outbox
from expertconnect.actions.errors import CallerGone, DoesNotExist, Refused
from expertconnect.actions.idempotency import Idempotency
from expertconnect.db import Executor
from expertconnect.db.queries import credits as credits_q
from expertconnect.realtime import events
from expertconnect.services import Services

SPENT_DESCRIPTION = "Credit spent for meeting with expert"
EARNED_DESCRIPTION = "Credit earned for meeting with requester"
REFUND_DESCRIPTION = "Refund for cancelled meeting"
HELD_TITLE = "Credits Held"
HELD_CONTENT = (
    "{amount} credit(s) for the meeting '{title}' are held for you until it is completed."
)

# meetings.payment_status; see 0009_escrow_prices_reminders.sql.
NONE, HELD, RELEASED, REFUNDED = "none", "held", "released", "refunded"
# What a status change does to a meeting's held credits; other payment states stay as they are.
_SETTLEMENTS = {"completed": RELEASED, "cancelled": REFUNDED}


async def purchase(
    services: Services,
    user_id: int,
    *,
    payment_method: str,
    amount: Decimal,
    credits: int,
    idempotency: Idempotency | None = None,
) -> dict:
    """Record a (simulated, always completed) payment and add `credits` to the balance."""
    async with outbox.transaction(services, idempotency) as box:
        conn = box.conn
        try:
            payment = await credits_q.insert_payment(
                conn, user_id=user_id, payment_method=payment_method, amount=amount, credits=credits
            )
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name != "payments_user_id_fkey":
                raise
            raise CallerGone() from None
        new_balance = await credits_q.update_credit(conn, user_id, credits)
        if new_balance is None:
            raise Refused("Credit balance limit reached")
        transaction = await credits_q.insert_transaction(
            conn,
            user_id=user_id,
            transaction_type="purchased",
            amount=credits,
            description=f"Purchased {credits} credits for ${amount:.2f}",
        )
        box.result = {
            "success": True,
            "payment": payment,
            "transaction": transaction,
            "new_balance": new_balance,
        }
    return box.result


async def pay_for_meeting(
    services: Services,
    payer_id: int,
    *,
    meeting_id: int,
    amount: int,
    idempotency: Idempotency | None = None,
) -> int:
    """Take `amount` credits from the meeting's requester (the caller): held on the meeting while
    it is pending or confirmed, paid to its expert at once if it is completed. Returns the payer's
    new balance. Any refusal raises, which rolls everything back."""
    if idempotency is None:
        # The common case, a payment held on an open meeting, is one statement in autocommit:
        # atomic on its own, committed when it answers. It pays nothing if anything is amiss,
        # and what it read of the meeting says why.
        held = await credits_q.insert_held_payment(
            services.db,
            meeting_id,
            payer_id,
            amount,
            description=SPENT_DESCRIPTION,
            notification_title=HELD_TITLE,
            notification_content=HELD_CONTENT.format(amount=amount, title="%s"),
            notify_origin=services.relay.origin if services.relay is not None else None,
        )
        if held["new_balance"] is not None:
            notice = events.notification_received(held["notification"])
            notice.seq = held["seq"]
            services.hub.publish([notice])
            return held["new_balance"]
        meeting = held["meeting"]
        if meeting is None or meeting["status"] != "completed":
            _payable(meeting, payer_id, amount)
            raise Refused("Insufficient credits")
    async with outbox.transaction(services, idempotency) as box:
        conn = box.conn
        meeting = _payable(
            await credits_q.get_meeting_for_payment(conn, meeting_id, payer_id), payer_id, amount
        )
        expert_id = meeting["expert_id"]
        pay_now = meeting["status"] == "completed"
        if pay_now:
            # Both rows locked in ascending user_id order before either is changed: two users
            # paying each other at the same moment queue up instead of deadlocking.
            await credits_q.lock_accounts(conn, [payer_id, expert_id])
        new_balance = await credits_q.update_debit(conn, payer_id, amount)
        if new_balance is None:
            raise Refused("Insufficient credits")
        await credits_q.insert_transaction(
            conn,
            user_id=payer_id,
            transaction_type="spent",
            amount=amount,
            description=SPENT_DESCRIPTION,
            related_meeting_id=meeting_id,
        )
        await credits_q.update_meeting_paid(conn, meeting_id, amount, RELEASED if pay_now else HELD)
        if pay_now:
            await _credit(conn, expert_id, amount, "earned", EARNED_DESCRIPTION, meeting_id)
            title = "Credits Received"
            content = f"You received {amount} credit(s) for the meeting '{meeting['title']}'."
        else:
            title = HELD_TITLE
            content = HELD_CONTENT.format(amount=amount, title=meeting["title"])
        await box.add_notification(
            user_id=expert_id,
            notification_type="credits_received",
            title=title,
            content=content,
            related_id=meeting_id,
        )
        box.result = new_balance
    return new_balance


def _payable(meeting: dict | None, payer_id: int, amount: int) -> dict:
    """`meeting` (as credits_q.get_meeting_for_payment reads it) if `payer_id` may pay `amount`
    for it, else the refusal raised; the balance is judged by the debit."""
    if meeting is None:
        raise DoesNotExist("Meeting not found")
    if meeting["requester_id"] != payer_id:
        raise Refused("Only the requester of a meeting can pay for it")
    if meeting["status"] == "cancelled":
        raise Refused("Cannot pay for a cancelled meeting")
    price = meeting["price_credits"]
    if price is not None and meeting["paid_credits"] + amount > price:
        raise Refused(
            f"Payments for this meeting may not exceed its price of {price} credit(s); "
            f"{meeting['paid_credits']} already paid"
        )
    return meeting


def payment_status_after(payment_status: str, new_status: str) -> str:
    """The payment state of a meeting moving to `new_status`: what is held is released on
    completion and refunded on cancellation; nothing else changes."""
    if payment_status != HELD:
        return payment_status
    return _SETTLEMENTS.get(new_status, HELD)


async def settle(box: outbox.Outbox, meetings: list[dict], outcome: str) -> None:
    """Pay out what `meetings` held, in the transaction that has just moved their status (and
    payment_status to `outcome`): RELEASED pays each expert (an earned row), REFUNDED the
    requester (a refund row), and both parties are told. Each dict has id, title, requester_id,
    expert_id and `held` (0: nothing to settle). The meetings are row-locked by the caller, so
    this runs once per meeting."""
    paid = [m for m in meetings if m["held"]]
    if not paid:
        return
    payee_key = "expert_id" if outcome == RELEASED else "requester_id"
    payees = sorted({m[payee_key] for m in paid})
    if len(payees) > 1:
        # A sweep's batch credits several accounts: locked in ascending order first, as every
        # writer of several accounts does, so two processes' batches cannot deadlock.
        await credits_q.lock_accounts(box.conn, payees)
    for meeting in paid:
        held, title = meeting["held"], meeting["title"]
        if outcome == RELEASED:
            await _credit(
                box.conn, meeting["expert_id"], held, "earned", EARNED_DESCRIPTION, meeting["id"]
            )
            notices = {
                meeting["expert_id"]: f"You received {held} credit(s) for the meeting '{title}'.",
                meeting["requester_id"]: f"The {held} credit(s) you paid for the meeting "
                f"'{title}' were released to the expert.",
            }
            notification_type, heading = "payment_released", "Payment Released"
        else:
            await _credit(
                box.conn,
                meeting["requester_id"],
                held,
                "refund",
                REFUND_DESCRIPTION,
                meeting["id"],
            )
            notices = {
                meeting["requester_id"]: f"The {held} credit(s) you paid for the meeting "
                f"'{title}' were refunded to you.",
                meeting["expert_id"]: f"The {held} credit(s) held for the meeting '{title}' "
                "were refunded to the requester.",
            }
            notification_type, heading = "payment_refunded", "Payment Refunded"
        for user_id, content in notices.items():
            await box.add_notification(
                user_id=user_id,
                notification_type=notification_type,
                title=heading,
                content=content,
                related_id=meeting["id"],
            )


async def _credit(
    conn: Executor,
    user_id: int,
    amount: int,
    transaction_type: str,
    description: str,
    meeting_id: int,
) -> None:
    """Add `amount` to a balance with the ledger row that explains it."""
    if await credits_q.update_credit(conn, user_id, amount) is None:
        raise Refused("The receiving credit balance cannot hold that many credits")
    await credits_q.insert_transaction(
        conn,
        user_id=user_id,
        transaction_type=transaction_type,
        amount=amount,
        description=description,
        related_meeting_id=meeting_id,
    )
