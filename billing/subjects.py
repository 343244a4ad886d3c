"""What a budget counts: the ledger's charges of one subject, a key, a user, a
team, or one end user of a key, as columns of a ledger row. Pure."""

from __future__ import annotations

SUBJECT_COLUMNS = {"key": ("key_id",), "user": ("user_id",), "team": ("team_id",),
                   "end_user": ("key_id", "end_user")}  # fmt: skip


def end_user_subject(key_id: str, end_user: str) -> str:
    """An end user's subject: the key's id (hex, never a '/') and the end user's id."""
    return f"{key_id}/{end_user}"


def subject_values(scope: str, subject: str) -> tuple[str, ...]:
    """The values of `SUBJECT_COLUMNS[scope]` that a row of `subject` has."""
    if scope == "end_user":
        key_id, _, end_user = subject.partition("/")
        return key_id, end_user
    return (subject,)


def spent_query(scope: str, subject: str, since: str) -> tuple[str, tuple[str, ...]]:
    """SQL (over a `ledger` table) for what `subject` was charged from `since` on."""
    columns = SUBJECT_COLUMNS[scope]
    where = " AND ".join(f"{column} = ?" for column in columns)
    sql = (
        "SELECT -COALESCE(SUM(amount_nano), 0) FROM ledger "  # noqa: S608 (fixed columns)
        f"WHERE {where} AND kind = 'charge' AND created_at >= ?"
    )
    return sql, (*subject_values(scope, subject), since)


def account_of(user_id: str, team_id: str, paid_by: str) -> str:
    """The balance a ledger row moves (the same rule as `LedgerEntry.account`)."""
    return f"team:{team_id}" if paid_by == "team" else user_id
