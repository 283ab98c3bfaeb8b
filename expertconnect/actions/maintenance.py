"""Housekeeping that runs periodically in every process (run_sweeps, every
meetings.expiry_interval_seconds); each step is safe to run in several processes at once
(SKIP LOCKED, idempotent deletes)."""

from __future__ import annotations

import datetime as dt
import logging

from expertconnect.actions import meetings
from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import idempotency as idempotency_q
from expertconnect.db.queries import users as users_q
from expertconnect.services import Services

log = logging.getLogger(__name__)

# Rows deleted per statement, so a purge never holds many locks or runs one long statement.
PURGE_BATCH = 5000


async def purge_expired(services: Services) -> None:
    """Drop events past the retention window and revocations of tokens that have expired."""
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=services.config.realtime.retention_days)
    try:
        purged = 0
        while True:
            deleted = await events_q.delete_events_before(services.db, cutoff, PURGE_BATCH)
            purged += deleted
            if deleted < PURGE_BATCH:
                break
        await users_q.delete_expired_revocations(services.db, now)
        services.auth_cache.prune(now.timestamp())
    except DatabaseUnavailable as exc:
        log.warning("housekeeping skipped: %s", exc.message)
        return
    if purged:
        log.info("purged %d events older than %s", purged, cutoff.isoformat())


async def prune_idempotency_keys(services: Services) -> int:
    """Forget the stored answers of Idempotency-Key requests older than
    idempotency.retention_hours; returns how many."""
    hours = services.config.idempotency.retention_hours
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    pruned = 0
    while True:
        deleted = await idempotency_q.delete_answers_before(services.db, cutoff, PURGE_BATCH)
        pruned += deleted
        if deleted < PURGE_BATCH:
            return pruned


# The steps of one sweep, in order: expiry before auto-completion and reminders, so a request
# past its start is cancelled (and refunded) before anything else looks at it.
SWEEP_STEPS = (
    meetings.expire_pending_requests,
    meetings.complete_past_meetings,
    meetings.remind_upcoming_meetings,
    purge_expired,
    prune_idempotency_keys,
)


async def run_sweeps(services: Services) -> None:
    """Every periodic step once. A step that fails is logged and the others still run: a
    database hiccup in one must not stop refunds, completions or reminders in the rest."""
    for step in SWEEP_STEPS:
        try:
            await services.metrics.sweep(step.__name__, step(services))
        except DatabaseUnavailable as exc:
            log.warning("sweep step %s skipped: %s", step.__name__, exc.message)
        except Exception:
            log.exception("sweep step %s failed", step.__name__)
