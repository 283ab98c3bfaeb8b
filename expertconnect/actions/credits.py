"""Credit purchases and meeting payments: each one transaction that moves a balance and writes
the ledger rows that explain it, so balance == signed sum of the ledger at every commit."""

from __future__ import annotations

from decimal import Decimal

from expertconnect.actions import outbox
from expertconnect.actions.errors import DoesNotExist, Refused
from expertconnect.db.queries import credits as credits_q
from expertconnect.services import Services

SPENT_DESCRIPTION = "Credit spent for meeting with expert"
EARNED_DESCRIPTION = "Credit earned for meeting with requester"


async def purchase(
    services: Services, user_id: int, *, payment_method: str, amount: Decimal, credits: int
) -> dict:
    """Record a (simulated, always completed) payment and add `credits` to the balance."""
    async with services.db.transaction() as conn:
        payment = await credits_q.insert_payment(
            conn, user_id=user_id, payment_method=payment_method, amount=amount, credits=credits
        )
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
    return {
        "success": True,
        "payment": payment,
        "transaction": transaction,
        "new_balance": new_balance,
    }


async def pay_for_meeting(
    services: Services, payer_id: int, *, meeting_id: int, amount: int
) -> int:
    """Move `amount` credits from the meeting's requester (the caller) to its expert.
    Returns the payer's new balance. Any refusal raises, which rolls everything back."""
    async with outbox.transaction(services) as box:
        conn = box.conn
        meeting = await credits_q.get_meeting_for_payment(conn, meeting_id, payer_id)
        if meeting is None:
            raise DoesNotExist("Meeting not found")
        if meeting["requester_id"] != payer_id:
            raise Refused("Only the requester of a meeting can pay for it")
        if meeting["status"] == "cancelled":
            raise Refused("Cannot pay for a cancelled meeting")
        expert_id = meeting["expert_id"]
        # Both rows locked in ascending user_id order before either is changed: two users paying
        # each other at the same moment queue up instead of deadlocking.
        await credits_q.lock_accounts(conn, [payer_id, expert_id])
        new_balance = await credits_q.update_debit(conn, payer_id, amount)
        if new_balance is None:
            raise Refused("Insufficient credits")
        if await credits_q.update_credit(conn, expert_id, amount) is None:
            raise Refused("The expert's credit balance cannot hold that many credits")
        await credits_q.insert_transaction(
            conn,
            user_id=payer_id,
            transaction_type="spent",
            amount=amount,
            description=SPENT_DESCRIPTION,
            related_meeting_id=meeting_id,
        )
        await credits_q.insert_transaction(
            conn,
            user_id=expert_id,
            transaction_type="earned",
            amount=amount,
            description=EARNED_DESCRIPTION,
            related_meeting_id=meeting_id,
        )
        await box.add_notification(
            user_id=expert_id,
            notification_type="credits_received",
            title="Credits Received",
            content=f"You received {amount} credit(s) for the meeting '{meeting['title']}'.",
            related_id=meeting_id,
        )
    return new_balance
