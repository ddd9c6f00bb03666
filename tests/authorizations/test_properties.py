"""Random sequences of network messages — authorizations, increments, reversals, clearings,
refunds, expiries and retransmissions — keep a simple model and the ledger's invariants true after
every step, without fees and with a POS transaction fee that follows every hold. Everything goes
through the HTTP API; the program and cards they start from are made by the factories."""

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
)

from cardcore.config import Settings
from cardcore.fees.schemas import Price
from cardcore.ledger.verify import verify
from cardcore.models import ProgramMode
from tests.authorizations.network import authorization
from tests.factories import World, make_partner, make_world
from tests.machines import RolledBackApp, run_machine

# Hypothesis state machines over the whole app.
pytestmark = pytest.mark.slow

# Two cards on balances of their own; authorizations of up to 4,000 and increments of up to
# 3,000 against them are approved sometimes and declined (51) sometimes.
FUNDING = (5_000, 3_000)
_ids = itertools.count(1)


@dataclass
class Auth:
    balance_id: str
    status: str  # PENDING, SETTLED, DECLINED, REVERSED, EXPIRED
    held: int = 0
    settled: int = 0
    refunded: int = 0
    fee: int = 0  # held with the hold, or charged with the clearing


@dataclass
class Sent:
    """A message that was answered 200, to retransmit."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    answer: dict[str, Any]


def has(*statuses: str) -> Any:
    """Run the rule only when some authorization is in one of `statuses`."""
    return precondition(lambda self: bool(self.ids(*statuses)))


class AuthorizationMachine(RuleBasedStateMachine):
    """Runs on its own event loop, on one connection whose transaction the test rolls back. The
    partner, its network key and the funded cards are made once; each example runs in a savepoint
    rolled back at its end, so every example starts from the same balances and sees no other."""

    loop: asyncio.AbstractEventLoop
    connection: AsyncConnection
    sessionmaker: async_sessionmaker[AsyncSession]
    client: AsyncClient
    world: World
    # The program's POS transaction fee, if it has one (FeeAuthorizationMachine).
    fee_price: Price | None = None

    def fee_of(self, amount: int) -> int:
        return 0 if self.fee_price is None else self.fee_price.fee_for(amount)

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = self.run(self.connection.begin_nested())
        self.available = {
            card.balance_id: amount for card, amount in zip(self.world.cards, FUNDING, strict=True)
        }
        self.total = dict(self.available)
        self.auths: dict[str, Auth] = {}
        self.sent: list[Sent] = []

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.savepoint.rollback())

    @property
    def partner_headers(self) -> dict[str, str]:
        return self.world.partner.headers

    # -- talking to the API ----------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.run(
            self.client.post(path, json=body, headers=headers or self.world.network.headers)
        )

    def answered(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        headers = headers or self.world.network.headers
        response = self.post(path, body, headers)
        assert response.status_code == 200, (path, body, response.text)
        answer: dict[str, Any] = response.json()
        self.sent.append(Sent(path, body, headers, answer))
        return answer

    @staticmethod
    def follow_up(auth_id: str, amount: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "authorization_id": auth_id,
            "network": {"network_transaction_id": f"p-{next(_ids)}"},
        }
        if amount is not None:
            body["amount"] = amount
        return body

    def check_answer(
        self, answer: dict[str, Any], auth_id: str, *, approved: bool, code: str
    ) -> None:
        auth = self.auths[auth_id]
        assert answer["authorization_id"] == auth_id
        assert (answer["approved"], answer["response_code"]) == (approved, code), answer
        assert answer["held_amount"] == auth.held, (answer, auth)
        assert answer["available_balance"] == self.available[auth.balance_id], answer
        assert answer["currency"] == "EUR"

    def check_transaction(self, auth_id: str) -> None:
        response = self.run(
            self.client.get(f"/v1/transactions/{auth_id}", headers=self.partner_headers)
        )
        assert response.status_code == 200, response.text
        got = response.json()["data"]
        auth = self.auths[auth_id]
        assert (got["status"], got["held_amount"]) == (auth.status, auth.held), (got, auth)
        if auth.status == "SETTLED":
            assert got["settled_amount"] == auth.settled
        if self.fee_price is None:
            return
        fees = self.run(
            self.client.get(
                "/v1/fees", params={"transaction_id": auth_id}, headers=self.partner_headers
            )
        ).json()["data"]
        expected = {
            "PENDING": [("HELD", auth.fee)],
            "SETTLED": [("CHARGED", auth.fee)],
            "REVERSED": [("RELEASED", auth.fee)],
            "EXPIRED": [("RELEASED", auth.fee)],
            "DECLINED": [],
        }[auth.status]
        assert [(f["status"], f["amount"]) for f in fees] == expected, (fees, auth)

    def ids(self, *statuses: str) -> list[str]:
        return sorted(i for i, a in self.auths.items() if a.status in statuses)

    def refundable(self) -> list[str]:
        return [i for i in self.ids("SETTLED") if self.auths[i].settled > self.auths[i].refunded]

    # -- rules -----------------------------------------------------------------------------------

    @rule(card=st.sampled_from(range(len(FUNDING))), amount=st.integers(1, 4_000))
    def authorize(self, card: int, amount: int) -> None:
        funded = self.world.cards[card]
        answer = self.answered(
            "/v1/network/authorizations",
            authorization(funded.id, amount, f"p-{next(_ids)}"),
        )
        auth_id = answer["authorization_id"]
        fee = self.fee_of(amount)
        if amount + fee <= self.available[funded.balance_id]:
            self.available[funded.balance_id] -= amount + fee
            self.auths[auth_id] = Auth(funded.balance_id, "PENDING", held=amount, fee=fee)
            self.check_answer(answer, auth_id, approved=True, code="00")
            assert len(answer["authorization_code"]) == 6
        else:
            self.auths[auth_id] = Auth(funded.balance_id, "DECLINED")
            self.check_answer(answer, auth_id, approved=False, code="51")
            assert answer["decline_reason"] == "INSUFFICIENT_FUNDS"
        self.check_transaction(auth_id)

    @has("PENDING")
    @rule(data=st.data(), amount=st.integers(1, 3_000))
    def increment(self, data: st.DataObject, amount: int) -> None:
        auth_id = data.draw(st.sampled_from(self.ids("PENDING")), label="authorization")
        auth = self.auths[auth_id]
        answer = self.answered(
            "/v1/network/incremental-authorizations", self.follow_up(auth_id, amount)
        )
        fee = self.fee_of(auth.held + amount)
        if amount + fee - auth.fee <= self.available[auth.balance_id]:
            self.available[auth.balance_id] -= amount + fee - auth.fee
            auth.held, auth.fee = auth.held + amount, fee
            self.check_answer(answer, auth_id, approved=True, code="00")
        else:
            # Refused: the old hold stands, untouched.
            self.check_answer(answer, auth_id, approved=False, code="51")
        self.check_transaction(auth_id)

    @has("PENDING")
    @rule(data=st.data(), full=st.booleans())
    def reverse(self, data: st.DataObject, full: bool) -> None:
        auth_id = data.draw(st.sampled_from(self.ids("PENDING")), label="authorization")
        auth = self.auths[auth_id]
        release = auth.held if full else data.draw(st.integers(1, auth.held), label="release")
        answer = self.answered(
            "/v1/network/reversals", self.follow_up(auth_id, None if full else release)
        )
        held_before = auth.held + auth.fee
        auth.held -= release
        if auth.held == 0:
            auth.status = "REVERSED"  # the fee is released with the hold (and keeps its amount)
            self.available[auth.balance_id] += held_before
        else:
            auth.fee = self.fee_of(auth.held)
            self.available[auth.balance_id] += held_before - auth.held - auth.fee
        self.check_answer(answer, auth_id, approved=True, code="00")
        self.check_transaction(auth_id)

    @has("PENDING")
    @rule(data=st.data(), excess=st.integers(1, 1_000))
    def reverse_more_than_held(self, data: st.DataObject, excess: int) -> None:
        auth_id = data.draw(st.sampled_from(self.ids("PENDING")), label="authorization")
        auth = self.auths[auth_id]
        response = self.post("/v1/network/reversals", self.follow_up(auth_id, auth.held + excess))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "VALIDATION_ERROR"
        self.check_transaction(auth_id)

    @has("PENDING")
    @rule(data=st.data())
    def clear(self, data: st.DataObject) -> None:
        # Only up to the hold: clearing above it is a matter of per-MCC tolerance.
        auth_id = data.draw(st.sampled_from(self.ids("PENDING")), label="authorization")
        auth = self.auths[auth_id]
        amount = data.draw(st.integers(1, auth.held), label="amount")
        answer = self.answered("/v1/network/clearings", self.follow_up(auth_id, amount))
        fee = self.fee_of(amount)
        self.available[auth.balance_id] += auth.held + auth.fee - amount - fee
        self.total[auth.balance_id] -= amount + fee
        auth.status, auth.held, auth.settled, auth.fee = "SETTLED", 0, amount, fee
        self.check_answer(answer, auth_id, approved=True, code="00")
        self.check_transaction(auth_id)

    @precondition(lambda self: bool(self.refundable()))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        # At most what is left of the purchase to refund.
        auth_id = data.draw(st.sampled_from(self.refundable()), label="authorization")
        auth = self.auths[auth_id]
        amount = data.draw(st.integers(1, auth.settled - auth.refunded), label="amount")
        answer = self.answered("/v1/network/refunds", self.follow_up(auth_id, amount))
        auth.refunded += amount
        self.available[auth.balance_id] += amount
        self.total[auth.balance_id] += amount
        self.check_answer(answer, auth_id, approved=True, code="00")
        self.check_transaction(auth_id)

    @has("PENDING")
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        auth_id = data.draw(st.sampled_from(self.ids("PENDING")), label="authorization")
        auth = self.auths[auth_id]
        answer = self.answered(
            "/v1/simulate/expire", {"authorization_id": auth_id}, self.partner_headers
        )
        self.available[auth.balance_id] += auth.held + auth.fee
        auth.status, auth.held = "EXPIRED", 0
        self.check_answer(answer, auth_id, approved=True, code="00")
        self.check_transaction(auth_id)

    @has("SETTLED", "DECLINED", "REVERSED", "EXPIRED")
    @rule(
        data=st.data(), kind=st.sampled_from(["increment", "reversal"]), amount=st.integers(1, 99)
    )
    def follow_up_on_a_finished_authorization(
        self, data: st.DataObject, kind: str, amount: int
    ) -> None:
        auth_id = data.draw(
            st.sampled_from(self.ids("SETTLED", "DECLINED", "REVERSED", "EXPIRED")),
            label="authorization",
        )
        path = {
            "increment": "/v1/network/incremental-authorizations",
            "reversal": "/v1/network/reversals",
        }[kind]
        response = self.post(path, self.follow_up(auth_id, amount))
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "TRANSFER_NOT_PENDING"
        self.check_transaction(auth_id)

    @has("PENDING", "DECLINED", "REVERSED", "EXPIRED")
    @rule(data=st.data(), amount=st.integers(1, 99))
    def refund_of_an_unsettled_authorization(self, data: st.DataObject, amount: int) -> None:
        auth_id = data.draw(
            st.sampled_from(self.ids("PENDING", "DECLINED", "REVERSED", "EXPIRED")),
            label="authorization",
        )
        response = self.post("/v1/network/refunds", self.follow_up(auth_id, amount))
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "TRANSACTION_NOT_SETTLED"
        self.check_transaction(auth_id)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def retransmit(self, data: st.DataObject) -> None:
        """The same message again, whatever happened since: the first answer, and no change."""
        sent = data.draw(st.sampled_from(self.sent), label="message")
        response = self.post(sent.path, sent.body, sent.headers)
        assert response.status_code == 200, response.text
        assert response.json() == sent.answer

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        for card in self.world.cards:
            response = self.run(
                self.client.get(f"/v1/balances/{card.balance_id}", headers=self.partner_headers)
            )
            assert response.status_code == 200, response.text
            got = response.json()["data"]
            held = sum(
                a.held + a.fee
                for a in self.auths.values()
                if a.balance_id == card.balance_id and a.status == "PENDING"
            )
            assert got["available"] >= 0, got
            assert (got["total"], got["available"], got["pending"]) == (
                self.total[card.balance_id],
                self.available[card.balance_id],
                held,
            ), got
            assert got["total"] == got["available"] + got["pending"]

    @invariant()
    def books_balance(self) -> None:
        async def check() -> list[str]:
            async with self.sessionmaker() as session:
                return await verify(session)

        assert self.run(check()) == []


class FeeAuthorizationMachine(AuthorizationMachine):
    """The same, in a program that charges 0.30 EUR + 2 % (at least 0.50, at most 2.00) on POS."""

    fee_price = Price(fixed=30, percent_bps=200, minimum=50, maximum=200)


def test_random_network_messages_keep_the_model_and_the_books(
    settings_for_tests: Settings,
) -> None:
    _run(settings_for_tests, AuthorizationMachine)


def test_random_network_messages_with_a_transaction_fee(settings_for_tests: Settings) -> None:
    _run(settings_for_tests, FeeAuthorizationMachine)


def _run(settings_for_tests: Settings, machine: type[AuthorizationMachine]) -> None:
    async def prepare(rolled: RolledBackApp) -> None:
        client = rolled.client
        async with rolled.sessionmaker() as session:
            # A test program, for POST /v1/simulate/expire; nothing else here depends on it.
            partner = await make_partner(session, "Properties", ProgramMode.TEST)
        world = await make_world(rolled.app, partner, FUNDING)
        # The first authorization of a program makes its card network account (and, with a fee,
        # its fee revenue account), whose ids the app caches per process: made inside an example,
        # they would be rolled back with the example but stay cached for the next ones. So they
        # are made here, by a hold released at once, before the fee schedule.
        for price in (None, machine.fee_price):
            if price is not None:
                scheduled = await client.post(
                    "/v1/admin/fee-schedules",
                    json={
                        "fees": [
                            {
                                "type": "TRANSACTION",
                                "channel": "POS",
                                "prices": {"EUR": price.model_dump(exclude_none=True)},
                            }
                        ]
                    },
                    headers=world.admin.headers,
                )
                assert scheduled.status_code == 201, scheduled.text
            primer = await client.post(
                "/v1/network/authorizations",
                json=authorization(world.cards[0].id, 1, f"p-{next(_ids)}"),
                headers=world.network.headers,
            )
            assert primer.json()["approved"] is True, primer.text
            released = await client.post(
                "/v1/network/reversals",
                json={
                    "authorization_id": primer.json()["authorization_id"],
                    "network": {"network_transaction_id": f"p-{next(_ids)}"},
                },
                headers=world.network.headers,
            )
            assert released.json()["held_amount"] == 0, released.text
        machine.world = world
        machine.connection = rolled.connection
        machine.sessionmaker = rolled.sessionmaker
        machine.client = client

    run_machine(settings_for_tests, machine, prepare, max_examples=15)
