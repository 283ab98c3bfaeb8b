"""Categories, user skills and weekly availability: simple CRUD, handler -> query directly."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

import asyncpg

from expertconnect.actions.errors import CallerGone
from expertconnect.db.queries import availability as availability_q
from expertconnect.db.queries import skills as skills_q
from expertconnect.db.queries import users as users_q
from expertconnect.errors import NotFound, ValidationError
from expertconnect.handlers.base import BaseHandler
from expertconnect.validation import Form

PROFICIENCY_LEVELS = ("beginner", "intermediate", "advanced", "expert")
SKILL_NAME_MAX = 100


class _OwnedListHandler(BaseHandler):
    async def _target_user_id(self, form: Form) -> int:
        """The caller, or the user named by ?user_id= (404 if there is none)."""
        user_id = form.object_id("user_id", required=False)
        form.validate()
        if user_id is None or user_id == self.user_id:
            return self.user_id
        if not await users_q.exists_user(self.db, user_id):
            raise NotFound("User not found")
        return user_id


class CategoriesHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json(await skills_q.list_categories(self.db))


class UserSkillsHandler(_OwnedListHandler):
    async def get(self) -> None:
        form = self.query_form()
        page = self.page(form)
        user_id = await self._target_user_id(form)
        self.write_json_page(await skills_q.list_user_skills_json(self.db, user_id, **page), page)

    async def post(self) -> None:
        # The owner is always the caller: "user" and "id" in the body are ignored.
        form = self.form()
        category_id = form.object_id("category")
        skill_name = form.string("skill_name", max_length=SKILL_NAME_MAX)
        level = form.choice("proficiency_level", PROFICIENCY_LEVELS)
        form.validate()
        try:
            skill = await skills_q.insert_user_skill(
                self.db,
                self.user_id,
                category_id=form.valid(category_id),
                skill_name=form.valid(skill_name),
                proficiency_level=form.valid(level),
            )
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name == "user_skills_user_id_fkey":
                raise CallerGone() from None
            if exc.constraint_name != "user_skills_category_id_fkey":
                raise
            raise ValidationError.single(
                "category", "Category with this ID does not exist."
            ) from None
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "user_skills_user_category_skill_key":
                raise
            raise ValidationError.single(
                "skill_name", "You already have this skill in this category."
            ) from None
        self.write_json(skill, status=201)


class UserSkillHandler(BaseHandler):
    async def delete(self, raw_id: str) -> None:
        skill_id = self.path_id(raw_id, "Skill not found")
        if not await skills_q.delete_user_skill(self.db, skill_id, self.user_id):
            raise NotFound("Skill not found")
        self.set_status(204)
        self.finish()


class _Window(TypedDict):
    day_of_week: int
    start_time: dt.time
    end_time: dt.time


class UserAvailabilityHandler(_OwnedListHandler):
    async def get(self) -> None:
        # The whole week in day/time order: a schedule, not a feed, so no id cursor.
        user_id = await self._target_user_id(self.query_form())
        self.finish(await availability_q.list_windows_json(self.db, user_id))

    async def post(self) -> None:
        form = self.form()
        day = form.integer("day_of_week", min_value=0, max_value=6)
        start = form.time_of_day("start_time")
        end = form.time_of_day("end_time")
        if start is not None and end is not None:
            form.check(end > start, "end_time", "End time must be after start time.")
        form.validate()
        window_args: _Window = {
            "day_of_week": form.valid(day),
            "start_time": form.valid(start),
            "end_time": form.valid(end),
        }
        try:
            window = await availability_q.insert_window(self.db, self.user_id, **window_args)
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name != "user_availability_user_id_fkey":
                raise
            raise CallerGone() from None
        except asyncpg.ExclusionViolationError as exc:
            if exc.constraint_name != "user_availability_no_overlap_excl":
                raise
            clash = await availability_q.get_overlapping_window(
                self.db, self.user_id, **window_args
            )
            message = "This slot overlaps another of your slots on the same day."
            if clash is not None:
                message = (
                    f"This slot overlaps your slot {clash['start_time']:%H:%M:%S}-"
                    f"{clash['end_time']:%H:%M:%S} on the same day (id {clash['id']})."
                )
            raise ValidationError.single("start_time", message) from None
        self.write_json(window, status=201)


class UserAvailabilityWindowHandler(BaseHandler):
    async def delete(self, raw_id: str) -> None:
        # The API's own wording ("slot") stays: it is part of the contract.
        window_id = self.path_id(raw_id, "Availability slot not found")
        if not await availability_q.delete_window(self.db, window_id, self.user_id):
            raise NotFound("Availability slot not found")
        self.set_status(204)
        self.finish()


ROUTES = [
    (r"/api/categories/", CategoriesHandler),
    (r"/api/user-skills/", UserSkillsHandler),
    (r"/api/user-skills/([^/]+)/", UserSkillHandler),
    (r"/api/user-availability/", UserAvailabilityHandler),
    (r"/api/user-availability/([^/]+)/", UserAvailabilityWindowHandler),
]
