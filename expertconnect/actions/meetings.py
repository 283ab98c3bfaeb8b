"""Booking a meeting, moving it through its statuses (settling what was paid for it), reviewing
it, and the periodic sweeps over meetings (expiry, auto-completion, reminders): each one
transaction that also stores the notifications it causes (published after commit)."""

from __future__ import annotations

import datetime as dt
import logging

import asyncpg

from expertconnect.actions import credits, outbox
from expertconnect.actions.errors import CallerGone, DoesNotExist, InvalidField, Refused
from expertconnect.actions.idempotency import Idempotency
from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import meetings as meetings_q
from expertconnect.db.queries import reviews as reviews_q
from expertconnect.services import Services

log = logging.getLogger(__name__)

MEETING_NOT_FOUND = "Meeting not found"
EXPERT_COMPLETES_TOO_EARLY = "The expert can mark a meeting completed only once it has started"
OVERLAP = "This meeting overlaps another confirmed meeting"
NOT_AVAILABLE = "The expert is not available at that time."
TOO_MANY_OPEN = (
    "You have {limit} open meeting requests, the most allowed at once: "
    "wait for an answer or cancel one first."
)

# The exclusion constraints (0004) that keep a person's confirmed meetings apart: per role on
# meetings, and across roles on user_busy_intervals (kept by a trigger on meetings).
_OVERLAP_CONSTRAINTS = {
    "meetings_expert_no_overlap_excl",
    "meetings_requester_no_overlap_excl",
    "user_busy_intervals_no_overlap_excl",
}

# Meetings expired, completed or reminded of per sweep transaction: bounds the locks held and
# the notifications written at once; a backlog is worked off batch after batch in the same run.
EXPIRY_BATCH = 100
SWEEP_BATCH = EXPIRY_BATCH

# Constraint -> (field, message) for a booking the schema refuses.
_BOOKING_CONSTRAINTS = {
    "meetings_expert_id_fkey": ("expert_id", "Expert with this ID does not exist."),
    "meetings_category_id_fkey": ("category_id", "Category with this ID does not exist."),
    "meetings_not_self_check": ("expert_id", "You cannot book a meeting with yourself."),
    "meetings_time_order_check": ("scheduled_end", "scheduled_end must be after scheduled_start."),
}

# (from, to) -> who may make the move. completed and cancelled are final.
EITHER, EXPERT = "either", "expert"
TRANSITIONS = {
    ("pending", "confirmed"): EXPERT,
    ("pending", "cancelled"): EITHER,
    ("confirmed", "completed"): EITHER,
    ("confirmed", "cancelled"): EITHER,
}

# New status -> (notification_type, title, content template) for the other party.
_STATUS_NOTICES = {
    "confirmed": (
        "meeting_confirmed",
        "Meeting Confirmed",
        "Your meeting '{title}' has been confirmed.",
    ),
    "completed": (
        "meeting_completed",
        "Meeting Completed",
        "Your meeting '{title}' has been completed.",
    ),
    "cancelled": (
        "meeting_cancelled",
        "Meeting Cancelled",
        "Your meeting '{title}' has been cancelled.",
    ),
}


async def book(
    services: Services,
    *,
    requester_id: int,
    expert_id: int,
    category_id: int,
    title: str,
    description: str,
    scheduled_start: dt.datetime,
    scheduled_end: dt.datetime,
    idempotency: Idempotency | None = None,
) -> dict:
    """Create a pending meeting and tell the expert. If the expert has declared weekly
    availability, the meeting must fit inside one availability window (read in the expert's
    time zone). A requester holds at most meetings.max_open_requests pending requests: their
    bookings take turns on a lock of their users row, so concurrent ones cannot pass the cap
    together (each counts after the previous one committed, a fresh snapshot under READ
    COMMITTED)."""
    max_open = services.config.meetings.max_open_requests
    try:
        async with outbox.transaction(services, idempotency) as box:
            await meetings_q.lock_participants(box.conn, [requester_id])
            held = await meetings_q.count_open_requests(box.conn, requester_id, up_to=max_open)
            if held >= max_open:
                raise Refused(TOO_MANY_OPEN.format(limit=max_open))
            if not await meetings_q.fits_availability(
                box.conn, expert_id, scheduled_start, scheduled_end
            ):
                raise InvalidField("scheduled_start", NOT_AVAILABLE)
            meeting = await meetings_q.insert_meeting(
                box.conn,
                title=title,
                description=description,
                requester_id=requester_id,
                expert_id=expert_id,
                category_id=category_id,
                scheduled_start=scheduled_start,
                scheduled_end=scheduled_end,
            )
            await box.add_notification(
                user_id=expert_id,
                notification_type="meeting_request",
                title="Meeting Request",
                content=f"You have a new meeting request from {meeting['requester_name']}.",
                related_id=meeting["id"],
            )
            box.result = meeting
    except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as exc:
        if exc.constraint_name == "meetings_requester_id_fkey":
            raise CallerGone() from None
        if exc.constraint_name not in _BOOKING_CONSTRAINTS:
            raise
        raise InvalidField(*_BOOKING_CONSTRAINTS[exc.constraint_name]) from None
    return meeting


async def change_status(
    services: Services,
    *,
    meeting_id: int,
    user_id: int,
    new_status: str,
    idempotency: Idempotency | None = None,
) -> dict:
    """Apply one allowed transition and tell the other party. The meeting row is locked first,
    so of two concurrent changes the second sees the first's result and is judged on it.
    A confirmation that would overlap either person's confirmed meetings is refused by the
    exclusion constraints (400)."""
    try:
        async with outbox.transaction(services, idempotency) as box:
            meeting = await meetings_q.get_meeting_for_update(box.conn, meeting_id, user_id)
            if meeting is None:
                raise DoesNotExist(MEETING_NOT_FOUND)
            old_status = meeting["status"]
            who = TRANSITIONS.get((old_status, new_status))
            if who is None:
                raise Refused(f"Cannot change status from {old_status} to {new_status}")
            if who == EXPERT and user_id != meeting["expert_id"]:
                raise Refused(
                    f"Only the expert can change status from {old_status} to {new_status}"
                )
            if (
                new_status == "completed"
                and user_id == meeting["expert_id"]
                and dt.datetime.now(dt.UTC) < meeting["scheduled_start"]
            ):
                # Completing releases the requester's payment to the expert: the expert may
                # not claim it for a meeting that has not begun.
                raise Refused(EXPERT_COMPLETES_TOO_EARLY)
            if new_status == "confirmed":
                if _is_expired(meeting, services.config.meetings.pending_ttl_hours):
                    # Due for the expiry task, which may not have run yet.
                    raise Refused("This meeting request has expired")
                await meetings_q.lock_participants(
                    box.conn, [meeting["requester_id"], meeting["expert_id"]]
                )
            payment_status = credits.payment_status_after(meeting["payment_status"], new_status)
            updated = await meetings_q.update_status(
                box.conn,
                meeting_id,
                from_status=old_status,
                to_status=new_status,
                payment_status=payment_status,
            )
            if updated is None:  # cannot happen under the row lock; never apply a stale one
                raise Refused(f"Cannot change status from {old_status} to {new_status}")
            other = (
                meeting["requester_id"] if user_id == meeting["expert_id"] else meeting["expert_id"]
            )
            notification_type, title, content = _STATUS_NOTICES[new_status]
            await box.add_notification(
                user_id=other,
                notification_type=notification_type,
                title=title,
                content=content.format(title=meeting["title"]),
                related_id=meeting_id,
            )
            if payment_status != meeting["payment_status"]:
                held = {**meeting, "held": meeting["paid_credits"]}
                await credits.settle(box, [held], payment_status)
            box.result = updated
    except asyncpg.ExclusionViolationError as exc:
        if exc.constraint_name not in _OVERLAP_CONSTRAINTS:
            raise
        raise Refused(OVERLAP) from None
    return updated


def _is_expired(meeting: dict, ttl_hours: int) -> bool:
    """The rule of update_expired_to_cancelled, for one pending meeting."""
    now = dt.datetime.now(dt.UTC)
    return meeting["scheduled_start"] <= now or meeting["created_at"] <= now - dt.timedelta(
        hours=ttl_hours
    )


async def expire_pending_requests(services: Services) -> int:
    """Cancel every pending request not confirmed by its start or within
    meetings.pending_ttl_hours, refund what was paid for it, and tell both parties; returns how
    many. Runs periodically in every process: rows are claimed with FOR UPDATE SKIP LOCKED, a
    batch per transaction, so processes running at once never cancel (or refund, or notify
    about) the same request twice."""
    ttl_hours = services.config.meetings.pending_ttl_hours
    expired = 0
    try:
        while True:
            async with outbox.transaction(services) as box:
                rows = await meetings_q.update_expired_to_cancelled(
                    box.conn, ttl_hours=ttl_hours, batch=EXPIRY_BATCH
                )
                for meeting in rows:
                    for party in (meeting["requester_id"], meeting["expert_id"]):
                        await box.add_notification(
                            user_id=party,
                            notification_type="meeting_cancelled",
                            title="Meeting Request Expired",
                            content=f"The meeting request '{meeting['title']}' expired "
                            "before it was confirmed.",
                            related_id=meeting["id"],
                        )
                await credits.settle(box, rows, credits.REFUNDED)
            expired += len(rows)
            # Fewer than a batch: nothing left that another process is not already handling.
            if len(rows) < EXPIRY_BATCH:
                break
    except DatabaseUnavailable as exc:
        log.warning("meeting expiry skipped: %s", exc.message)
    if expired:
        log.info("cancelled %d expired meeting requests", expired)
    return expired


async def complete_past_meetings(services: Services) -> int:
    """Complete every confirmed meeting that ended meetings.auto_complete_hours ago and nobody
    marked, release what was paid for it, and tell both parties; returns how many. Claimed
    with SKIP LOCKED a batch per transaction, as the expiry, so each is completed once."""
    after_hours = services.config.meetings.auto_complete_hours
    completed = 0
    while True:
        async with outbox.transaction(services) as box:
            rows = await meetings_q.update_due_to_completed(
                box.conn, after_hours=after_hours, batch=SWEEP_BATCH
            )
            title, content = _STATUS_NOTICES["completed"][1:]
            for meeting in rows:
                for party in (meeting["requester_id"], meeting["expert_id"]):
                    await box.add_notification(
                        user_id=party,
                        notification_type="meeting_completed",
                        title=title,
                        content=content.format(title=meeting["title"]),
                        related_id=meeting["id"],
                    )
            await credits.settle(box, rows, credits.RELEASED)
        completed += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    if completed:
        log.info("completed %d past meetings", completed)
    return completed


async def remind_upcoming_meetings(services: Services) -> int:
    """Tell both parties of every confirmed meeting that starts within
    meetings.reminder_minutes (0: never), once per meeting; returns how many meetings."""
    minutes = services.config.meetings.reminder_minutes
    if minutes == 0:
        return 0
    reminded = 0
    while True:
        async with outbox.transaction(services) as box:
            rows = await meetings_q.update_due_reminders(
                box.conn, minutes=minutes, batch=SWEEP_BATCH
            )
            for meeting in rows:
                starts = meeting["scheduled_start"].strftime("%Y-%m-%d %H:%M UTC")
                for party in (meeting["requester_id"], meeting["expert_id"]):
                    await box.add_notification(
                        user_id=party,
                        notification_type="meeting_reminder",
                        title="Meeting Reminder",
                        content=f"Your meeting '{meeting['title']}' starts at {starts}.",
                        related_id=meeting["id"],
                    )
        reminded += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    return reminded


async def review(
    services: Services,
    *,
    meeting_id: int,
    reviewer_id: int,
    reviewee_id: int,
    rating: int,
    review_text: str,
    idempotency: Idempotency | None = None,
) -> dict:
    """A participant's review of the other participant of a completed meeting; tells the
    reviewee. A completed meeting never changes again, so no lock is needed."""
    try:
        async with outbox.transaction(services, idempotency) as box:
            meeting = await meetings_q.get_meeting_for_participant(
                box.conn, meeting_id, reviewer_id
            )
            if meeting is None:
                raise DoesNotExist(MEETING_NOT_FOUND)
            if meeting["status"] != "completed":
                raise Refused("Only completed meetings can be reviewed")
            other = (
                meeting["requester_id"]
                if reviewer_id == meeting["expert_id"]
                else meeting["expert_id"]
            )
            if reviewee_id != other:
                raise InvalidField(
                    "reviewee_id", "The reviewee must be the other participant of the meeting."
                )
            created = await reviews_q.insert_review(
                box.conn,
                meeting_id=meeting_id,
                reviewer_id=reviewer_id,
                reviewee_id=reviewee_id,
                rating=rating,
                review_text=review_text,
            )
            await box.add_notification(
                user_id=reviewee_id,
                notification_type="new_review",
                title="New Review",
                content=f"{created['reviewer_name']} left you a {rating}-star review.",
                related_id=created["id"],
            )
            box.result = created
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "reviews_meeting_reviewer_key":
            raise
        raise InvalidField("meeting_id", "You have already reviewed this meeting.") from None
    return created
