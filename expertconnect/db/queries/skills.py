"""Categories and the skills users offer in them."""

from __future__ import annotations

from expertconnect.db import Executor, Row, exactly_one
from expertconnect.db.queries import JsonPage, fetch_json_page, json_page

_SKILL_COLUMNS = """s.id, s.user_id AS user, s.category_id AS category, c.name AS category_name,
                    s.skill_name, s.proficiency_level"""


async def list_categories(conn: Executor) -> list[Row]:
    # A fixed, seeded vocabulary: served whole, in the order of categories_name_key.
    rows = await conn.fetch("SELECT id, name FROM categories ORDER BY name")
    return [dict(r) for r in rows]


async def list_user_skills_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None = None
) -> JsonPage:
    """A user's skills, newest first; `before_id` is the cursor from the previous page."""
    return await fetch_json_page(
        conn,
        json_page(
            f"""SELECT {_SKILL_COLUMNS}
                FROM user_skills s JOIN categories c ON c.id = s.category_id
                WHERE s.user_id = $1 AND ($2::bigint IS NULL OR s.id < $2)
                ORDER BY s.id DESC
                LIMIT $3"""
        ),
        user_id,
        before_id,
        limit,
    )


async def insert_user_skill(
    conn: Executor, user_id: int, *, category_id: int, skill_name: str, proficiency_level: str
) -> Row:
    """Raises ForeignKeyViolationError (user_skills_category_id_fkey) for an unknown category
    and UniqueViolationError (user_skills_user_category_skill_key) for a repeated skill."""
    row = await conn.fetchrow(
        f"""WITH s AS (
                INSERT INTO user_skills (user_id, category_id, skill_name, proficiency_level)
                VALUES ($1, $2, $3, $4)
                RETURNING *)
            SELECT {_SKILL_COLUMNS} FROM s JOIN categories c ON c.id = s.category_id""",
        user_id,
        category_id,
        skill_name,
        proficiency_level,
    )
    return exactly_one(row)


async def delete_user_skill(conn: Executor, skill_id: int, user_id: int) -> bool:
    """Delete the skill if `user_id` owns it; False if there is no such skill of theirs."""
    deleted = await conn.fetchval(
        "DELETE FROM user_skills WHERE id = $1 AND user_id = $2 RETURNING id", skill_id, user_id
    )
    return deleted is not None
