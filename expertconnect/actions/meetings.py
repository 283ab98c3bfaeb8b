"""Booking a meeting, moving it through its statuses, and reviewing it: each one transaction
that also stores the notification for the other party (published after commit)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from expertconnect.actions import outbox
from expertconnect.db.queries import meetings as meetings_q
from expertconnect.db.queries import reviews as reviews_q
from expertconnect.errors import BadRequest, NotFound, ValidationError
from expertconnect.services import Services

MEETING_NOT_FOUND = "Meeting not found"

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
    "confirmed": ("meeting_confirmed", "Meeting Confirmed",
                  "Your meeting '{title}' has been confirmed."),
    "completed": ("meeting_completed", "Meeting Completed",
                  "Your meeting '{title}' has been completed."),
    "cancelled": ("meeting_cancelled", "Meeting Cancelled",
                  "Your meeting '{title}' has been cancelled."),
}


async def book(services: Services, *, requester_id: int, expert_id: int, category_id: int,
               title: str, description: str, scheduled_start: dt.datetime,
               scheduled_end: dt.datetime) -> dict:
    """Create a pending meeting and tell the expert."""
    try:
        async with outbox.transaction(services) as box:
            meeting = await meetings_q.insert_meeting(
                box.conn, title=title, description=description, requester_id=requester_id,
                expert_id=expert_id, category_id=category_id, scheduled_start=scheduled_start,
                scheduled_end=scheduled_end)
            await box.notify(
                user_id=expert_id, notification_type="meeting_request", title="Meeting Request",
                content=f"You have a new meeting request from {meeting['requester_name']}.",
                related_id=meeting["id"])
    except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as exc:
        if exc.constraint_name not in _BOOKING_CONSTRAINTS:
            raise
        raise ValidationError.single(*_BOOKING_CONSTRAINTS[exc.constraint_name]) from None
    return meeting


async def change_status(services: Services, *, meeting_id: int, user_id: int,
                        new_status: str) -> dict:
    """Apply one allowed transition and tell the other party. The meeting row is locked first,
    so of two concurrent changes the second sees the first's result and is judged on it."""
    async with outbox.transaction(services) as box:
        meeting = await meetings_q.get_meeting_for_update(box.conn, meeting_id, user_id)
        if meeting is None:
            raise NotFound(MEETING_NOT_FOUND)
        old_status = meeting["status"]
        who = TRANSITIONS.get((old_status, new_status))
        if who is None:
            raise BadRequest(f"Cannot change status from {old_status} to {new_status}")
        if who == EXPERT and user_id != meeting["expert_id"]:
            raise BadRequest(f"Only the expert can change status from {old_status} to {new_status}")
        updated = await meetings_q.update_status(
            box.conn, meeting_id, from_status=old_status, to_status=new_status)
        if updated is None:  # cannot happen under the row lock; never apply a stale transition
            raise BadRequest(f"Cannot change status from {old_status} to {new_status}")
        other = (meeting["requester_id"] if user_id == meeting["expert_id"]
                 else meeting["expert_id"])
        notification_type, title, content = _STATUS_NOTICES[new_status]
        await box.notify(user_id=other, notification_type=notification_type, title=title,
                         content=content.format(title=meeting["title"]), related_id=meeting_id)
    return updated


async def review(services: Services, *, meeting_id: int, reviewer_id: int, reviewee_id: int,
                 rating: int, review_text: str) -> dict:
    """A participant's review of the other participant of a completed meeting; tells the
    reviewee. A completed meeting never changes again, so no lock is needed."""
    try:
        async with outbox.transaction(services) as box:
            meeting = await meetings_q.get_meeting_for_participant(
                box.conn, meeting_id, reviewer_id)
            if meeting is None:
                raise NotFound(MEETING_NOT_FOUND)
            if meeting["status"] != "completed":
                raise BadRequest("Only completed meetings can be reviewed")
            other = (meeting["requester_id"] if reviewer_id == meeting["expert_id"]
                     else meeting["expert_id"])
            if reviewee_id != other:
                raise ValidationError.single(
                    "reviewee_id", "The reviewee must be the other participant of the meeting.")
            created = await reviews_q.insert_review(
                box.conn, meeting_id=meeting_id, reviewer_id=reviewer_id,
                reviewee_id=reviewee_id, rating=rating, review_text=review_text)
            await box.notify(
                user_id=reviewee_id, notification_type="new_review", title="New Review",
                content=f"{created['reviewer_name']} left you a {rating}-star review.",
                related_id=created["id"])
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "reviews_meeting_reviewer_key":
            raise
        raise ValidationError.single(
            "meeting_id", "You have already reviewed this meeting.") from None
    return created
