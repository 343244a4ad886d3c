"""What the stages of the metered path hand each other: a request once admitted,
its charge once settled, and an answer with its charge."""

from __future__ import annotations

from dataclasses import dataclass

from billing.meter import Hold
from billing.pricing import Prices, Usage
from billing.settlement import Charge
from config_store.schema import ApiKey, ModelConfig, User
from gateway.autoroute.decision import Decision
from gateway.providers.base import ChatResult
from gateway.proxy.budgets import Payer
from gateway.proxy.chain import Candidate


@dataclass(slots=True)
class Admitted:
    """A request that passed every check and holds its worst-case cost: the
    most that any model of its chain could cost. `served` is the model that
    answers; it starts as the requested one and moves down the chain on failure."""

    request_id: str
    key: ApiKey
    user: User
    chain: list[Candidate]
    served: Candidate
    hold: Hold
    started_at: str
    route: Decision | None = None  # how `model: "auto"` was routed
    payer: Payer | None = None  # who pays and within which budgets (None: the user, none)

    @property
    def model(self) -> ModelConfig:
        return self.served.model

    @property
    def prices(self) -> Prices:
        return self.served.prices

    @property
    def prompt_estimate(self) -> int:
        return self.served.prompt


@dataclass(frozen=True, slots=True)
class Settled:
    """A request's charge, once its ledger row is committed, and the balance after it."""

    charge: Charge
    balance: int
    prices: Prices  # the prices it was charged at

    @property
    def usage(self) -> Usage:
        return self.charge.usage

    @property
    def cost(self) -> int:
        """What was taken from the balance (never more than the hold)."""
        return self.charge.amount_nano


@dataclass(frozen=True, slots=True)
class Answered:
    """A non-streamed request's answer from the model that served it, and its charge."""

    result: ChatResult
    settled: Settled
