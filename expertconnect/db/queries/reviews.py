"""Reviews of meeting participants."""

from __future__ import annotations

from expertconnect.db import Executor, Row, exactly_one

# The spec's review fields after id (and meeting_id); `v` is reviews.
_REVIEW_FIELDS = """v.reviewer_id, user_display_name(reviewer) AS reviewer_name,
    v.reviewee_id, user_display_name(reviewee) AS reviewee_name,
    v.rating, v.review_text, v.created_at"""
_REVIEW_JOINS = """JOIN users reviewer ON reviewer.id = v.reviewer_id
    JOIN users reviewee ON reviewee.id = v.reviewee_id"""


async def insert_review(
    conn: Executor,
    *,
    meeting_id: int,
    reviewer_id: int,
    reviewee_id: int,
    rating: int,
    review_text: str,
) -> Row:
    row = await conn.fetchrow(
        f"""WITH v AS (
                INSERT INTO reviews (meeting_id, reviewer_id, reviewee_id, rating, review_text)
                VALUES ($1, $2, $3, $4, $5)
                RETURNING *)
            SELECT v.id, v.meeting_id, {_REVIEW_FIELDS} FROM v {_REVIEW_JOINS}""",
        meeting_id,
        reviewer_id,
        reviewee_id,
        rating,
        review_text,
    )
    return exactly_one(row)


async def list_reviews_of_meeting(conn: Executor, meeting_id: int) -> list[Row]:
    """Oldest first; served by the reviews_meeting_reviewer_key index."""
    rows = await conn.fetch(
        f"""SELECT v.id, {_REVIEW_FIELDS} FROM reviews v {_REVIEW_JOINS}
            WHERE v.meeting_id = $1
            ORDER BY v.id""",
        meeting_id,
    )
    return [dict(row) for row in rows]
