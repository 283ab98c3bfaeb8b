"""Credit balance, the caller's credit ledger, credit purchases and meeting payments."""

from __future__ import annotations

from expertconnect.actions import credits
from expertconnect.actions.idempotency import Idempotency
from expertconnect.db.queries import credits as credits_q
from expertconnect.errors import NotFound
from expertconnect.handlers.base import BaseHandler

PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "bank_transfer")
# Bounds on one request: large enough for any real use, small enough that a typo (or an
# attacker) cannot push a balance toward the integer column's limit in a few calls.
MAX_CREDITS_PER_PURCHASE = 10_000
MAX_CREDITS_PER_TRANSFER = 1_000_000


class BalanceHandler(BaseHandler):
    async def get(self) -> None:
        account = await credits_q.get_balance(self.db, self.user_id)
        if account is None:
            # Registration creates the account in the same transaction as the user.
            raise NotFound("Credit account not found")
        self.write_json(account)


class TransactionsHandler(BaseHandler):
    async def get(self) -> None:
        form = self.query_form()
        page = self.page(form)
        form.validate()
        transactions_json = await credits_q.list_transactions_json(self.db, self.user_id, **page)
        self.write_json_page(transactions_json, page)


class PurchaseHandler(BaseHandler):
    idempotent_methods = ("POST",)

    async def post(self) -> None:
        form = self.form()
        payment_method = form.choice("payment_method", PAYMENT_METHODS)
        amount = form.money("amount")
        credits_to_purchase = form.integer(
            "credits_to_purchase", min_value=1, max_value=MAX_CREDITS_PER_PURCHASE
        )
        if amount is not None and credits_to_purchase is not None:
            expected = credits_to_purchase * self.services.config.credits.price_usd
            form.check(
                amount == expected,
                "amount",
                f"Expected amount {expected:.2f} for {credits_to_purchase} credits.",
            )
        form.validate()

        async def purchase(idempotency: Idempotency | None) -> dict:
            # Inside the quota: a replayed purchase, which buys nothing, gives its unit back.
            with self.quota(self.services.limiters.purchase, self.user_id):
                return await credits.purchase(
                    self.services,
                    self.user_id,
                    payment_method=form.valid(payment_method),
                    amount=form.valid(amount),
                    credits=form.valid(credits_to_purchase),
                    idempotency=idempotency,
                )

        await self.answer(purchase)


class TransferHandler(BaseHandler):
    idempotent_methods = ("POST",)

    async def post(self) -> None:
        form = self.form()
        meeting_id = form.object_id("meeting_id")
        amount = form.integer("amount", min_value=1, max_value=MAX_CREDITS_PER_TRANSFER)
        form.validate()
        await self.answer(
            lambda idempotency: credits.pay_for_meeting(
                self.services,
                self.user_id,
                meeting_id=form.valid(meeting_id),
                amount=form.valid(amount),
                idempotency=idempotency,
            ),
            payload=lambda new_balance: {
                "success": True,
                "message": f"{amount} credit(s) transferred successfully",
                "new_balance": new_balance,
            },
        )


ROUTES = [
    (r"/api/credits/balance/", BalanceHandler),
    (r"/api/credits/transfer/", TransferHandler),
    (r"/api/credit-transactions/", TransactionsHandler),
    (r"/api/payments/purchase_credits/", PurchaseHandler),
]
