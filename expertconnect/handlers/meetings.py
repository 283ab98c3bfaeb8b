"""Meetings (list, book, detail, status changes) and reviews."""

from __future__ import annotations

import datetime as dt

from expertconnect.actions import meetings
from expertconnect.db.queries import meetings as meetings_q
from expertconnect.db.queries import reviews as reviews_q
from expertconnect.errors import NotFound
from expertconnect.handlers.base import BaseHandler

STATUSES = ("pending", "confirmed", "completed", "cancelled")
ROLES = ("requester", "expert")
TITLE_MAX = 200
TEXT_MAX = 5000

_LISTS = {
    None: meetings_q.list_meetings_of_participant_json,
    "requester": meetings_q.list_meetings_as_requester_json,
    "expert": meetings_q.list_meetings_as_expert_json,
}


class MeetingListHandler(BaseHandler):
    idempotent_methods = ("POST",)

    async def get(self) -> None:
        form = self.query_form()
        status = form.choice("status", STATUSES, required=False)
        role = form.choice("role", ROLES, required=False)
        page = self.page(form)
        form.validate()
        meetings_json = await _LISTS[role](self.db, self.user_id, status=status, **page)
        self.write_json_page(meetings_json, page)

    async def post(self) -> None:
        # requester_id, status and id are the server's to set: ignored if sent.
        form = self.form()
        title = form.string("title", max_length=TITLE_MAX)
        description = form.string(
            "description", required=False, max_length=TEXT_MAX, allow_blank=True, default=""
        )
        expert_id = form.object_id("expert_id")
        category_id = form.object_id("category_id")
        start = form.timestamp("scheduled_start")
        end = form.timestamp("scheduled_end")
        if expert_id is not None:
            form.check(
                expert_id != self.user_id, "expert_id", "You cannot book a meeting with yourself."
            )
        if start is not None:
            form.check(
                start > dt.datetime.now(dt.UTC),
                "scheduled_start",
                "scheduled_start must be in the future.",
            )
        if start is not None and end is not None:
            form.check(end > start, "scheduled_end", "scheduled_end must be after scheduled_start.")
        form.validate()
        await self.answer(
            lambda idempotency: meetings.book(
                self.services,
                requester_id=self.user_id,
                expert_id=form.valid(expert_id),
                category_id=form.valid(category_id),
                title=form.valid(title),
                description=form.valid(description),
                scheduled_start=form.valid(start),
                scheduled_end=form.valid(end),
                idempotency=idempotency,
            ),
            status=201,
        )


class MeetingDetailHandler(BaseHandler):
    async def get(self, raw_id: str) -> None:
        meeting_id = self.path_id(raw_id, meetings.MEETING_NOT_FOUND)
        meeting = await meetings_q.get_meeting_for_participant(self.db, meeting_id, self.user_id)
        if meeting is None:
            raise NotFound(meetings.MEETING_NOT_FOUND)
        meeting["reviews"] = await reviews_q.list_reviews_of_meeting(self.db, meeting_id)
        self.write_json(meeting)


class MeetingStatusHandler(BaseHandler):
    idempotent_methods = ("PATCH",)

    async def patch(self, raw_id: str) -> None:
        meeting_id = self.path_id(raw_id, meetings.MEETING_NOT_FOUND)
        form = self.form()
        status = form.choice("status", STATUSES)
        form.validate()
        await self.answer(
            lambda idempotency: meetings.change_status(
                self.services,
                meeting_id=meeting_id,
                user_id=self.user_id,
                new_status=form.valid(status),
                idempotency=idempotency,
            )
        )


class ReviewListHandler(BaseHandler):
    idempotent_methods = ("POST",)

    async def post(self) -> None:
        form = self.form()
        meeting_id = form.object_id("meeting_id")
        reviewee_id = form.object_id("reviewee_id")
        rating = form.integer("rating", min_value=1, max_value=5)
        review_text = form.string(
            "review_text", required=False, max_length=TEXT_MAX, allow_blank=True, default=""
        )
        form.validate()
        await self.answer(
            lambda idempotency: meetings.review(
                self.services,
                meeting_id=form.valid(meeting_id),
                reviewer_id=self.user_id,
                reviewee_id=form.valid(reviewee_id),
                rating=form.valid(rating),
                review_text=form.valid(review_text),
                idempotency=idempotency,
            ),
            status=201,
        )


ROUTES = [
    (r"/api/meetings/", MeetingListHandler),
    (r"/api/meetings/([^/]+)/", MeetingDetailHandler),
    (r"/api/meetings/([^/]+)/update_status/", MeetingStatusHandler),
    (r"/api/reviews/", ReviewListHandler),
]
