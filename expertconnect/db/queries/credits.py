"""Credit accounts, the credit ledger and payments."""

from __future__ import annotations

from decimal import Decimal

from expertconnect.db import Executor, Row, channels, exactly_one
from expertconnect.db.queries import NO_CURSOR, JsonPage, fetch_json_page, json_page
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries.notifications import NOTIFICATION_COLUMNS, NOTIFICATION_KEYS
from expertconnect.wire import sql_timestamp

# The largest balance an `integer` column holds: a credit that would pass it is refused.
BALANCE_MAX = 2**31 - 1

_ACCOUNT_COLUMNS = "id, user_id AS user, balance, updated_at"
# A meeting as a payment judges it (get_meeting_for_payment, insert_held_payment).
_MEETING_PAYMENT_KEYS = (
    "id",
    "title",
    "requester_id",
    "expert_id",
    "status",
    "price_credits",
    "paid_credits",
    "payment_status",
)
_MEETING_PAYMENT_COLUMNS = ", ".join(_MEETING_PAYMENT_KEYS)
# The notification payload of the event a held payment logs (insert_held_payment's `n`).
_NOTIFICATION_PAYLOAD = events_q.wire_object("n", NOTIFICATION_KEYS)
_PAYMENT_COLUMNS = (
    "id, user_id AS user, payment_method, amount, currency, status, "
    "credits_purchased, transaction_id, created_at"
)


async def insert_account(conn: Executor, user_id: int, balance: int) -> Row:
    row = await conn.fetchrow(
        f"""INSERT INTO credit_accounts (user_id, balance) VALUES ($1, $2)
            RETURNING {_ACCOUNT_COLUMNS}""",
        user_id,
        balance,
    )
    return exactly_one(row)


async def get_account(conn: Executor, user_id: int) -> Row | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM credit_accounts WHERE user_id = $1", user_id
    )
    return dict(row) if row else None


async def get_balance(conn: Executor, user_id: int) -> Row | None:
    """The account with `held`, the credits the user paid that wait on meetings, and
    `incoming`, the credits held for the user as an expert (the partial indexes
    meetings_requester_held_idx and meetings_expert_held_idx)."""
    row = await conn.fetchrow(
        f"""SELECT {_ACCOUNT_COLUMNS},
                   (SELECT coalesce(sum(paid_credits), 0) FROM meetings
                    WHERE requester_id = $1 AND payment_status = 'held')::bigint AS held,
                   (SELECT coalesce(sum(paid_credits), 0) FROM meetings
                    WHERE expert_id = $1 AND payment_status = 'held')::bigint AS incoming
            FROM credit_accounts WHERE user_id = $1""",
        user_id,
    )
    return dict(row) if row else None


async def lock_accounts(conn: Executor, user_ids: list[int]) -> list[Row]:
    """Row-lock the accounts of `user_ids` in ascending user_id order (LockRows runs above the
    Sort), so two transfers between the same pair, in either direction, cannot deadlock."""
    rows = await conn.fetch(
        """SELECT user_id, balance FROM credit_accounts
           WHERE user_id = ANY($1::bigint[])
           ORDER BY user_id
           FOR UPDATE""",
        user_ids,
    )
    return [dict(r) for r in rows]


async def update_debit(conn: Executor, user_id: int, amount: int) -> int | None:
    """Take `amount` from the balance; None (and nothing changed) if it is not there."""
    return await conn.fetchval(
        """UPDATE credit_accounts SET balance = balance - $2, updated_at = now()
           WHERE user_id = $1 AND balance >= $2
           RETURNING balance""",
        user_id,
        amount,
    )


async def update_credit(conn: Executor, user_id: int, amount: int) -> int | None:
    """Add `amount` to the balance; None (and nothing changed) if the balance cannot hold it."""
    return await conn.fetchval(
        """UPDATE credit_accounts SET balance = balance + $2, updated_at = now()
           WHERE user_id = $1 AND balance <= $3::integer - $2::integer
           RETURNING balance""",
        user_id,
        amount,
        BALANCE_MAX,
    )


async def insert_transaction(
    conn: Executor,
    *,
    user_id: int,
    transaction_type: str,
    amount: int,
    description: str,
    related_meeting_id: int | None = None,
) -> Row:
    row = await conn.fetchrow(
        """WITH t AS (
               INSERT INTO credit_transactions
                   (user_id, transaction_type, amount, description, related_meeting_id)
               VALUES ($1, $2, $3, $4, $5)
               RETURNING *)
           SELECT t.id, t.user_id AS user, u.username, t.transaction_type, t.amount,
                  t.description, t.related_meeting_id, t.created_at
           FROM t JOIN users u ON u.id = t.user_id""",
        user_id,
        transaction_type,
        amount,
        description,
        related_meeting_id,
    )
    return exactly_one(row)


async def list_transactions_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None = None
) -> JsonPage:
    """One user's ledger, newest first (credit_transactions_user_id_id_idx)."""
    return await fetch_json_page(
        conn,
        json_page(
            f"""SELECT t.id, t.user_id AS user, u.username, t.transaction_type, t.amount,
                       t.description, t.related_meeting_id, {sql_timestamp("t.created_at")}
                           AS created_at
                FROM credit_transactions t JOIN users u ON u.id = t.user_id
                WHERE t.user_id = $1 AND t.id < $2
                ORDER BY t.id DESC
                LIMIT $3"""
        ),
        user_id,
        before_id or NO_CURSOR,
        limit,
    )


async def insert_payment(
    conn: Executor, *, user_id: int, payment_method: str, amount: Decimal, credits: int
) -> Row:
    """A completed (simulated) payment. Its transaction_id, sim_{id}_{credits}_{whole dollars},
    names the row's own id, so the id is drawn from the identity sequence first."""
    row = await conn.fetchrow(
        f"""WITH n AS (SELECT nextval(pg_get_serial_sequence('payments', 'id')) AS id)
            INSERT INTO payments (id, user_id, payment_method, amount, currency, status,
                                  credits_purchased, transaction_id)
            OVERRIDING SYSTEM VALUE
            SELECT n.id, $1::bigint, $2::text, $3::numeric, 'USD', 'completed', $4::integer,
                   'sim_' || n.id || '_' || $4::integer || '_' || trunc($3::numeric)::bigint
            FROM n
            RETURNING {_PAYMENT_COLUMNS}""",
        user_id,
        payment_method,
        amount,
        credits,
    )
    return exactly_one(row)


async def get_meeting_for_payment(conn: Executor, meeting_id: int, user_id: int) -> Row | None:
    """The meeting if `user_id` takes part in it, row-locked until the paying transaction ends:
    its status cannot change (e.g. to cancelled, refunding what is held) and payments to it
    take turns, each judged against the price on what the previous one left."""
    row = await conn.fetchrow(
        f"""SELECT {_MEETING_PAYMENT_COLUMNS}
           FROM meetings
           WHERE id = $1 AND (requester_id = $2 OR expert_id = $2)
           FOR NO KEY UPDATE""",
        meeting_id,
        user_id,
    )
    return dict(row) if row else None


async def update_meeting_paid(
    conn: Executor, meeting_id: int, amount: int, payment_status: str
) -> None:
    """Count a payment of `amount` on the meeting, now `payment_status` (held or released)."""
    await conn.execute(
        """UPDATE meetings SET paid_credits = paid_credits + $2, payment_status = $3
           WHERE id = $1""",
        meeting_id,
        amount,
        payment_status,
    )


async def insert_held_payment(
    conn: Executor,
    meeting_id: int,
    payer_id: int,
    amount: int,
    *,
    description: str,
    notification_title: str,
    notification_content: str,
    notify_origin: str | None,
) -> dict:
    """A payment held on an open (pending or confirmed) meeting in one statement, so that in
    autocommit it needs no BEGIN and COMMIT round trips: the meeting row-locked (as
    get_meeting_for_payment), the payer debited, the spent ledger row, the meeting's
    paid_credits and payment_status 'held', the expert's credits_received notification (its
    content `notification_content` with %s for the meeting's title, PostgreSQL's format()) and
    its notification.receive event logged (events_q.log_events_ctes). It pays only if the
    payer is the requester, the meeting is open, the price allows it and the balance holds it;
    otherwise it changes nothing. Returns {"meeting": the row as get_meeting_for_payment
    gives it, or None; "new_balance": None if nothing was paid; "notification"; "seq"}."""
    row = await conn.fetchrow(
        f"""WITH meeting AS (
                SELECT {_MEETING_PAYMENT_COLUMNS} FROM meetings
                WHERE id = $1 AND (requester_id = $2 OR expert_id = $2)
                FOR NO KEY UPDATE),
            payable AS (
                SELECT * FROM meeting
                WHERE requester_id = $2 AND status IN ('pending', 'confirmed')
                  AND (price_credits IS NULL OR paid_credits + $3 <= price_credits)),
            debited AS (
                UPDATE credit_accounts SET balance = balance - $3, updated_at = now()
                WHERE user_id = $2 AND balance >= $3 AND EXISTS (SELECT FROM payable)
                RETURNING balance),
            spent AS (
                INSERT INTO credit_transactions
                    (user_id, transaction_type, amount, description, related_meeting_id)
                SELECT $2, 'spent', $3, $4, $1 FROM debited),
            held AS (
                UPDATE meetings SET paid_credits = paid_credits + $3, payment_status = 'held'
                WHERE id = $1 AND EXISTS (SELECT FROM debited)),
            n AS (
                INSERT INTO notifications (user_id, notification_type, title, content, related_id)
                SELECT p.expert_id, 'credits_received', $5, format($6, p.title), p.id
                FROM payable p, debited
                RETURNING {NOTIFICATION_COLUMNS}),
            given AS (
                SELECT n.user_id AS u, 'notification.receive' AS t, NULL::bigint AS p,
                       jsonb_build_object('type', 'notification.receive',
                                          'notification', {_NOTIFICATION_PAYLOAD}) AS d,
                       1 AS ord
                FROM n),
            {events_q.log_events_ctes("$7::text", "$8::text")}
            SELECT {", ".join(f"meeting.{c} AS m_{c}" for c in _MEETING_PAYMENT_KEYS)},
                   debited.balance AS new_balance,
                   {", ".join(f"n.{c} AS n_{c}" for c in NOTIFICATION_KEYS)},
                   (SELECT seq FROM numbered) AS seq, (SELECT count(*) FROM notified) AS notified
            FROM (SELECT) one
            LEFT JOIN meeting ON true LEFT JOIN debited ON true LEFT JOIN n ON true""",
        meeting_id,
        payer_id,
        amount,
        description,
        notification_title,
        notification_content,
        notify_origin,
        channels.EVENTS,
    )
    found = exactly_one(row)  # FROM (SELECT) one: always one row
    return {
        "meeting": {key: found[f"m_{key}"] for key in _MEETING_PAYMENT_KEYS}
        if found["m_id"] is not None
        else None,
        "new_balance": found["new_balance"],
        "notification": {key: found[f"n_{key}"] for key in NOTIFICATION_KEYS},
        "seq": found["seq"],
    }
