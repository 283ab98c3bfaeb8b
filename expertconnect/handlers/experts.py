"""Finding experts: search with filters, public profiles, and a user's free slots."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import TypedDict

from expertconnect import slots
from expertconnect.db.queries import experts as experts_q
from expertconnect.errors import NotFound
from expertconnect.handlers.base import BaseHandler
from expertconnect.validation import Form

USER_NOT_FOUND = "User not found"
SEARCH_MAX = 200
# A profile shows the latest reviews; the full history is not a profile's job.
PROFILE_REVIEWS = 50
# Slots: a meeting is 15 minutes to 8 hours; a range of a month bounds the work per request
# (at most 31 days x 96 quarter hours of slots).
SLOT_MINUTES_DEFAULT, SLOT_MINUTES_MIN, SLOT_MINUTES_MAX = 60, 15, 480
WINDOW_MAX = dt.timedelta(days=31)


def _rating(form: Form, field: str) -> float | None:
    """An average rating bound, 1 to 5, as a number (e.g. 4 or 4.5)."""
    value = form.data.get(field)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or not 1 <= number <= 5:
        form.error(field, "Must be a number from 1 to 5.")
        return None
    return number


class _Filters(TypedDict):
    category_id: int | None
    min_rating: float | None
    available_at: dt.datetime | None


class ExpertsHandler(BaseHandler):
    async def get(self) -> None:
        form = self.query_form()
        text = form.string("q", required=False, max_length=SEARCH_MAX)
        filters: _Filters = {
            "category_id": form.object_id("category", required=False),
            "min_rating": _rating(form, "min_rating"),
            "available_at": form.timestamp("available_at", required=False),
        }
        page = self.page(form)
        form.validate()
        if text is None:
            self.write_json_page(
                await experts_q.list_experts_json(
                    self.db, **filters, viewer_id=self.user_id, **page
                ),
                page,
            )
        else:
            # Ranked results are not in id order, so an id cursor cannot page them: with q,
            # before_id is ignored and `limit` takes the best matches.
            self.finish(
                await experts_q.search_experts_json(
                    self.db, text, **filters, viewer_id=self.user_id, limit=page["limit"]
                )
            )


class PublicProfileHandler(BaseHandler):
    async def get(self, raw_id: str) -> None:
        user_id = self.path_id(raw_id, USER_NOT_FOUND)
        profile = await experts_q.get_public_profile(self.db, user_id)
        if profile is None:
            raise NotFound(USER_NOT_FOUND)
        profile["reviews"] = await experts_q.list_reviews_received(
            self.db, user_id, limit=PROFILE_REVIEWS
        )
        self.write_json(profile)


class FreeSlotsHandler(BaseHandler):
    async def get(self, raw_id: str) -> None:
        user_id = self.path_id(raw_id, USER_NOT_FOUND)
        form = self.query_form()
        start = form.timestamp("from")
        end = form.timestamp("to")
        minutes = form.integer(
            "duration", required=False, min_value=SLOT_MINUTES_MIN, max_value=SLOT_MINUTES_MAX
        )
        if start is not None and end is not None:
            form.check(end > start, "to", "Must be after from.")
            form.check(
                end - start <= WINDOW_MAX,
                "to",
                f"The window may span at most {WINDOW_MAX.days} days.",
            )
        form.validate()
        start, end = form.valid(start), form.valid(end)
        schedule = await experts_q.get_schedule(
            self.db, user_id, start, end, viewer_id=self.user_id
        )
        if schedule is None:
            raise NotFound(USER_NOT_FOUND)
        free = slots.free_slots(
            [slots.WeeklyHours(*hours) for hours in schedule["weekly"]],
            zoneinfo.ZoneInfo(schedule["timezone"]),
            schedule["busy"],
            start,
            end,
            dt.timedelta(minutes=minutes or SLOT_MINUTES_DEFAULT),
        )
        self.write_json([{"start": lo, "end": hi} for lo, hi in free])


# Digits only, so these never shadow /api/users/me/, /api/users/login/ and the like.
ROUTES = [
    (r"/api/experts/", ExpertsHandler),
    (r"/api/users/(\d+)/", PublicProfileHandler),
    (r"/api/users/(\d+)/slots/", FreeSlotsHandler),
]
