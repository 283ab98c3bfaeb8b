"""Experts as clients see them: search, public profiles with ratings, reviews received, and the
schedule (availability and busy meetings) that free slots are computed from."""

from __future__ import annotations

import datetime as dt
import json

from asyncpg import Record

from expertconnect.db import Executor, Row
from expertconnect.db.queries import (
    NO_CURSOR,
    JsonPage,
    fetch_json_page,
    json_array,
    json_page,
    wire_columns,
)

# The public card of a user (never email, never balance); u is a users row. Skills, rating and
# meeting counts come from per-user LATERAL subqueries on (user_id ...) indexes. The lists
# pick their page of ids first (CTE `hits`) and build cards only for that page: no N+1 round
# trips, and no card work for rows that the LIMIT drops.
_CARD_COLUMNS = """u.id, u.username, u.first_name, u.last_name, u.bio, u.profile_picture,
                   u.timezone, sk.skills, rv.average_rating, rv.review_count,
                   mt.completed_meetings, u.credits_per_hour"""
# The same columns as the lists write them in JSON.
_CARD_WIRE_COLUMNS = wire_columns(_CARD_COLUMNS, floats=("rv.average_rating",))

_CARD_JOINS = f"""
    CROSS JOIN LATERAL (
        SELECT {json_array(order_by="s.id DESC", of="skill")}::json AS skills
        FROM user_skills s JOIN categories c ON c.id = s.category_id
        CROSS JOIN LATERAL (
            SELECT s.id, s.category_id AS category, c.name AS category_name, s.skill_name,
                   s.proficiency_level) skill
        WHERE s.user_id = u.id) sk
    CROSS JOIN LATERAL (
        SELECT round(avg(r.rating), 2)::float8 AS average_rating, count(*) AS review_count
        FROM reviews r WHERE r.reviewee_id = u.id) rv
    CROSS JOIN LATERAL (
        SELECT count(*) AS completed_meetings
        FROM meetings m WHERE m.expert_id = u.id AND m.status = 'completed') mt"""

# The filters shared by both lists. $1 category id, $2 minimum average rating (compared as
# shown, rounded to 2 decimals), $3 an instant the expert must be free at: inside their weekly
# hours read in their own time zone, in none of their confirmed meetings (as expert or as
# requester: user_busy_intervals, through its gist index), and in none of the searcher's ($6)
# own pending requests that involve them. Other people's pending requests do not count: a
# stranger's request must not hide an expert from everyone else. NULL means "no filter"; OR
# stops at a true `IS NULL`, so no subquery runs then. They read u.id and u.timezone only
# (the search applies them to its ranked matches).
_EXPERT_FILTERS = """
    EXISTS (SELECT 1 FROM user_skills s
            WHERE s.user_id = u.id AND ($1::bigint IS NULL OR s.category_id = $1))
    AND ($2::float8 IS NULL
         OR (SELECT round(avg(r.rating), 2) FROM reviews r WHERE r.reviewee_id = u.id) >= $2)
    AND ($3::timestamptz IS NULL OR (
        EXISTS (SELECT 1 FROM user_availability a
                WHERE a.user_id = u.id
                  AND a.day_of_week = extract(dow FROM $3 AT TIME ZONE u.timezone)
                  AND a.start_time <= ($3 AT TIME ZONE u.timezone)::time
                  AND a.end_time > ($3 AT TIME ZONE u.timezone)::time)
        AND NOT EXISTS (SELECT 1 FROM user_busy_intervals b
                        WHERE b.user_id = u.id AND b.during @> $3::timestamptz)
        AND NOT EXISTS (SELECT 1 FROM meetings m
                        WHERE m.requester_id = $6 AND m.status = 'pending'
                          AND u.id IN (m.expert_id, m.requester_id)
                          AND m.scheduled_start <= $3 AND m.scheduled_end > $3)))"""


# The cards of the page of ids in `hits`, as a JSON page.
_HITS_PAGE = json_page(
    f"SELECT {_CARD_WIRE_COLUMNS} FROM hits JOIN users u ON u.id = hits.id {_CARD_JOINS}"
)


def _card(row: Record) -> Row:
    card = dict(row)
    card["skills"] = json.loads(card["skills"])
    return card


async def list_experts_json(
    conn: Executor,
    *,
    category_id: int | None,
    min_rating: float | None,
    available_at: dt.datetime | None,
    viewer_id: int,
    limit: int,
    before_id: int | None,
) -> JsonPage:
    """Users with at least one skill, newest first: a backward walk of users_pkey. `viewer_id`
    is the searcher (their own pending requests count as taken time)."""
    return await fetch_json_page(
        conn,
        f"""WITH hits AS (
                SELECT u.id FROM users u
                WHERE u.id < $4 AND {_EXPERT_FILTERS}
                ORDER BY u.id DESC
                LIMIT $5)
            {_HITS_PAGE}""",
        category_id,
        min_rating,
        available_at,
        before_id or NO_CURSOR,
        limit,
        viewer_id,
    )


async def search_experts_json(
    conn: Executor,
    text: str,
    *,
    category_id: int | None,
    min_rating: float | None,
    available_at: dt.datetime | None,
    viewer_id: int,
    limit: int,
) -> str:
    """Users with at least one skill whose search document (skills, names, bio) matches the
    web-search-style query `text`, best match first, then newest, as a JSON array. Candidates
    come from the GIN index users_search_document_idx.

    The matches are ranked first and the filters (a skill at all, rating, availability) then
    tried in rank order until `limit` pass (OFFSET 0 keeps the planner from pushing them
    into the scan): a page of 20 probes about 20 matches, not every match.

    The rank is the sum of each query word's own ts_rank, so a word scores by the field it is
    found in (skill > name > bio). ts_rank of the whole AND query would also reward words
    standing close together, and in a document that concatenates fields that proximity is
    noise: it ranked "Python" written twice in a bio above "Python" as a skill."""
    return await conn.fetchval(
        f"""WITH q AS (
                SELECT websearch_to_tsquery('simple', $4) AS query,
                       ARRAY(SELECT plainto_tsquery('simple', word)
                             FROM unnest(tsvector_to_array(to_tsvector('simple', $4))) AS word
                            ) AS words),
            hits AS (
                SELECT u.id, u.rank
                FROM (SELECT u.id, u.timezone,
                             (SELECT sum(ts_rank(u.search_document, w))
                              FROM unnest(q.words) AS w) AS rank
                      FROM users u CROSS JOIN q
                      WHERE u.search_document @@ q.query
                      ORDER BY rank DESC, u.id DESC
                      OFFSET 0) u
                WHERE {_EXPERT_FILTERS}
                ORDER BY u.rank DESC, u.id DESC
                LIMIT $5)
            SELECT {json_array(order_by="hits.rank DESC, u.id DESC", of="card")}
            FROM hits JOIN users u ON u.id = hits.id {_CARD_JOINS}
            CROSS JOIN LATERAL (SELECT {_CARD_WIRE_COLUMNS}) card""",
        category_id,
        min_rating,
        available_at,
        text,
        limit,
        viewer_id,
    )


async def get_public_profile(conn: Executor, user_id: int) -> Row | None:
    """Any user's public card (with or without skills)."""
    row = await conn.fetchrow(
        f"SELECT {_CARD_COLUMNS} FROM users u {_CARD_JOINS} WHERE u.id = $1", user_id
    )
    return _card(row) if row else None


async def list_reviews_received(conn: Executor, user_id: int, *, limit: int) -> list[Row]:
    """Reviews of the user, newest first, through reviews_reviewee_id_id_idx."""
    rows = await conn.fetch(
        """SELECT r.id, r.meeting_id, r.reviewer_id, user_display_name(w) AS reviewer_name,
                  r.rating, r.review_text, r.created_at
           FROM reviews r JOIN users w ON w.id = r.reviewer_id
           WHERE r.reviewee_id = $1
           ORDER BY r.id DESC
           LIMIT $2""",
        user_id,
        limit,
    )
    return [dict(r) for r in rows]


async def get_schedule(
    conn: Executor, user_id: int, start: dt.datetime, end: dt.datetime, *, viewer_id: int
) -> Row | None:
    """What free slots are made of, in one round trip: the user's time zone, weekly hours
    [(day_of_week, start_time, end_time)] and the busy [(start, end)] that overlap [start, end).
    None if there is no such user.

    Busy is what `viewer_id` may rely on: the user's confirmed meetings, as expert or requester
    (user_busy_intervals, through its gist index), plus the viewer's own pending requests that
    the user takes part in (meetings_requester_pending_idx), so a requester does not ask twice
    for the same time. Nobody else's pending requests count: a stranger's request must not
    blank an expert's calendar for everyone."""
    row = await conn.fetchrow(
        """SELECT u.timezone,
                  ARRAY(SELECT ROW(a.day_of_week, a.start_time, a.end_time)
                        FROM user_availability a WHERE a.user_id = u.id
                        ORDER BY a.day_of_week, a.start_time) AS weekly,
                  ARRAY(SELECT ROW(lower(b.during), upper(b.during))
                        FROM user_busy_intervals b
                        WHERE b.user_id = u.id AND b.during && tstzrange($2, $3)
                        UNION ALL
                        SELECT ROW(m.scheduled_start, m.scheduled_end)
                        FROM meetings m
                        WHERE m.requester_id = $4 AND m.status = 'pending'
                          AND u.id IN (m.expert_id, m.requester_id)
                          AND m.scheduled_start < $3 AND m.scheduled_end > $2) AS busy
           FROM users u WHERE u.id = $1""",
        user_id,
        start,
        end,
        viewer_id,
    )
    if row is None:
        return None
    return {
        "timezone": row["timezone"],
        "weekly": [tuple(r) for r in row["weekly"]],
        "busy": [tuple(r) for r in row["busy"]],
    }
