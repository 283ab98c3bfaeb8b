"""Credit accounts, the credit ledger and payments."""

from __future__ import annotations


async def insert_account(conn, user_id: int, balance: int) -> dict:
    row = await conn.fetchrow(
        """INSERT INTO credit_accounts (user_id, balance) VALUES ($1, $2)
           RETURNING id, user_id AS user, balance, updated_at""",
        user_id, balance)
    return dict(row)


async def insert_transaction(conn, *, user_id: int, transaction_type: str, amount: int,
                             description: str, related_meeting_id: int | None = None) -> dict:
    row = await conn.fetchrow(
        """WITH t AS (
               INSERT INTO credit_transactions
                   (user_id, transaction_type, amount, description, related_meeting_id)
               VALUES ($1, $2, $3, $4, $5)
               RETURNING *)
           SELECT t.id, t.user_id AS user, u.username, t.transaction_type, t.amount,
                  t.description, t.related_meeting_id, t.created_at
           FROM t JOIN users u ON u.id = t.user_id""",
        user_id, transaction_type, amount, description, related_meeting_id)
    return dict(row)
