"""Who pays for a request and which budgets it must fit: the key's spend cap and
budgets, the user's, the user's team's, and its end user's on that key; and the
account the hold is taken from (the user's balance, or the team's wallet)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from billing.pricing import usd
from billing.spending import BudgetExceeded, Limit
from billing.subjects import end_user_subject
from config_store.budgets import EVERY_END_USER, Budget
from config_store.schema import ApiKey, User
from config_store.snapshot import Snapshot
from gateway.errors import GatewayError, bad_request, budget_exceeded, spend_cap_reached

END_USER_HEADER = "x-gateway-end-user"
_END_USER = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII without spaces, as budgets'
SPEND_CAP = "spend_cap"  # the id a key's own spend cap has as a budget: "<key id>:spend_cap"


@dataclass(frozen=True, slots=True)
class Payer:
    account: str  # the balance held and charged: the user's id, or "team:<id>"
    team_id: str
    paid_by: str  # "team" when the team's wallet pays, else ""
    end_user: str
    limits: tuple[Limit, ...]


def end_user_of(headers: Headers, body: Mapping[str, Any]) -> str:
    """The client's end user: OpenAI's `user` field, else the `x-gateway-end-user`
    header; "" when neither names one."""
    value = body.get("user")
    param = "user"
    if value is None:
        value, param = headers.get(END_USER_HEADER), END_USER_HEADER
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _END_USER.fullmatch(value):
        raise bad_request(
            f"'{param}' must be 1 to 256 printable characters without spaces.",
            param=param,
            code="invalid_value",
        )
    return value


def payer(snapshot: Snapshot, key: ApiKey, user: User, end_user: str) -> Payer:
    limits: list[Limit] = []
    if key.spend_cap_nano is not None:
        limits.append(Limit(f"{key.id}:{SPEND_CAP}", "key", key.id, "lifetime", key.spend_cap_nano))
    on = snapshot.budgets_on
    limits.extend(_limits(on.get(("key", key.id), ()), key.id))
    limits.extend(_limits(on.get(("user", user.id), ()), user.id))
    team = snapshot.team_of.get(user.id)
    if team is not None:
        limits.extend(_limits(on.get(("team", team.id), ()), team.id))
    if end_user:
        mine = [
            b for b in on.get(("end_user", key.id), ()) if b.end_user in (end_user, EVERY_END_USER)
        ]
        limits.extend(_limits(mine, end_user_subject(key.id, end_user)))
    wallet = team is not None and team.wallet
    return Payer(
        account=team.account if team is not None and wallet else user.id,
        team_id=team.id if team is not None else "",
        paid_by="team" if wallet else "",
        end_user=end_user,
        limits=tuple(limits),
    )


def _limits(budgets: Iterable[Budget], subject: str) -> list[Limit]:
    return [Limit(b.id, b.scope, subject, b.window, b.limit_nano) for b in budgets]


def refusal(exc: BudgetExceeded) -> GatewayError:
    """The 402 for a budget the request does not fit (a key's spend cap keeps its
    own code, as before budgets existed)."""
    available, needed = usd(max(exc.available_nano, 0)), usd(exc.needed_nano)
    limit = exc.limit
    if limit.budget_id.endswith(f":{SPEND_CAP}"):
        return spend_cap_reached(available, needed)
    return budget_exceeded(
        {
            "id": limit.budget_id,
            "scope": limit.scope,
            "subject": limit.subject,
            "window": limit.window,
            "limit_usd": usd(limit.limit_nano),
            "resets_at": exc.resets_at,
        },
        available,
        needed,
    )
