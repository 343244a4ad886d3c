"""Teams, budgets and balance alerts: the schema's objects and their JSON
documents (what the admin API shows, the history keeps and the stores hold).

A **team** has members (users; a user belongs to at most one team) and may pay
for them from its own balance, its wallet. A **budget** limits what a key, a
user, a team or an end user of a key may spend in a window (`billing.windows`);
its alert thresholds are percents of the limit. A **balance alert** names an
account (a user, or a team's wallet) and an amount to warn below.
Amounts are integer nano-USD, shown as USD decimal strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from config_store.documents import Fields
from config_store.router_config import ConfigInvalid

SCOPES = ("key", "user", "team", "end_user")
WINDOWS = ("daily", "weekly", "monthly", "lifetime")
NANO_PER_USD = 1_000_000_000
MAX_LIMIT_USD = Decimal(1_000_000_000)
EVERY_END_USER = "*"  # an end-user budget that each end user of the key has on its own
TEAM_ACCOUNT = "team:"  # a team wallet's account id is this and the team's id
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_END_USER = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII, no spaces


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str = ""
    members: tuple[str, ...] = ()
    wallet: bool = False  # True: the team's balance pays for its members' requests

    @property
    def account(self) -> str:
        return TEAM_ACCOUNT + self.id


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    scope: str  # key | user | team | end_user
    subject: str  # the key's id, the user's or the team's (for end_user: the key's id)
    window: str  # daily | weekly | monthly | lifetime
    limit_nano: int
    end_user: str = ""  # for end_user budgets: the end user's id, or "*" for each of them
    alerts: tuple[int, ...] = ()  # percents of the limit that send an alert once per window
    name: str = ""


@dataclass(frozen=True, slots=True)
class BalanceAlert:
    id: str
    account: str  # a user's id, or "team:<id>" for a team's wallet
    below_nano: int


def usd_text(nano: int) -> str:
    """Nano-USD as USD with nine places, as every amount the API shows."""
    sign = "-" if nano < 0 else ""
    whole, part = divmod(abs(nano), NANO_PER_USD)
    return f"{sign}{whole}.{part:09d}"


def usd_to_nano(value: Any, name: str) -> int:
    """A non-negative USD amount (a decimal string, or a number read through its
    text) as exact nano-USD."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigInvalid(f"'{name}' must be a USD amount as a decimal string.", name)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigInvalid(f"'{name}' is not a decimal number.", name) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_LIMIT_USD:
        raise ConfigInvalid(f"'{name}' must be between 0 and {MAX_LIMIT_USD}.", name)
    nano = amount * NANO_PER_USD
    if nano != nano.to_integral_value():
        raise ConfigInvalid(f"'{name}' has more than 9 decimal places.", name)
    return int(nano)


# -- teams ------------------------------------------------------------------------------------


def team_to_json(team: Team) -> dict[str, Any]:
    return {"id": team.id, "name": team.name, "members": list(team.members), "wallet": team.wallet}


def team_from_json(document: Any) -> Team:
    f = Fields(document, {"id", "name", "members", "wallet"}, "team")
    members = f.names("members")
    if not all(_ID.fullmatch(m) for m in members) or len(set(members)) != len(members):
        raise ConfigInvalid("'members' must be a list of distinct user ids.", "members")
    return Team(
        id=f.text("id", None, pattern=_ID),
        name=f.text("name", "", limit=200),
        members=members,
        wallet=f.boolean("wallet", False),
    )


# -- budgets ----------------------------------------------------------------------------------


def budget_to_json(budget: Budget) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": budget.id,
        "name": budget.name,
        "scope": budget.scope,
        "subject": budget.subject,
        "window": budget.window,
        "limit_usd": usd_text(budget.limit_nano),
        "alert_percents": list(budget.alerts),
    }
    if budget.scope == "end_user":
        document["end_user"] = budget.end_user
    return document


def budget_from_json(document: Any) -> Budget:
    fields = {"id", "name", "scope", "subject", "end_user", "window", "limit_usd"}
    f = Fields(document, fields | {"alert_percents"}, "budget")
    scope = f.text("scope", None, choices=SCOPES)
    end_user = ""
    if scope == "end_user":
        end_user = f.text("end_user", None, pattern=_END_USER, limit=256)
    elif f.has("end_user"):
        raise ConfigInvalid("'end_user' belongs to end_user budgets only.", "end_user")
    if not f.has("limit_usd"):
        raise ConfigInvalid("'limit_usd' is required.", "limit_usd")
    alerts = f.document.get("alert_percents", [])
    if not isinstance(alerts, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 100 for p in alerts
    ):
        raise ConfigInvalid("'alert_percents' must be integers from 1 to 100.", "alert_percents")
    return Budget(
        id=f.text("id", None, pattern=_ID),
        name=f.text("name", "", limit=200),
        scope=scope,
        subject=f.text("subject", None, pattern=_ID),
        end_user=end_user,
        window=f.text("window", None, choices=WINDOWS),
        limit_nano=usd_to_nano(f.document["limit_usd"], "limit_usd"),
        alerts=tuple(sorted(set(alerts))),
    )


# -- balance alerts ---------------------------------------------------------------------------


def balance_alert_to_json(alert: BalanceAlert) -> dict[str, Any]:
    return {"id": alert.id, "account": alert.account, "below_usd": usd_text(alert.below_nano)}


def balance_alert_from_json(document: Any) -> BalanceAlert:
    f = Fields(document, {"id", "account", "below_usd"}, "balance alert")
    account = f.text("account", None, limit=110)
    if not _ID.fullmatch(account.removeprefix(TEAM_ACCOUNT)):
        raise ConfigInvalid("'account' must be a user id or 'team:<team id>'.", "account")
    if not f.has("below_usd"):
        raise ConfigInvalid("'below_usd' is required.", "below_usd")
    return BalanceAlert(
        id=f.text("id", None, pattern=_ID),
        account=account,
        below_nano=usd_to_nano(f.document["below_usd"], "below_usd"),
    )
