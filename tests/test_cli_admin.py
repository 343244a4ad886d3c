"""The operator CLI against a running gateway: users, top-ups, keys, models."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway.ops.cli import main
from tests.admin_client import Admin
from tests.harness import GatewayServer


def cli(gw: GatewayServer, *args: str) -> int:
    return main([*args, "--url", gw.base_url, "--admin-key", gw.admin_key])


def test_cli_creates_users_tops_up_and_makes_keys(
    gateway: GatewayServer, capsys: pytest.CaptureFixture[str]
):
    assert cli(gateway, "users", "create", "erin", "--name", "Erin") == 0
    assert json.loads(capsys.readouterr().out)["id"] == "erin"
    assert cli(gateway, "users", "topup", "erin", "2.50", "--reason", "trial") == 0
    assert json.loads(capsys.readouterr().out)["balance_usd"] == "2.500000000"
    assert gateway.balance("erin") == 2_500_000_000

    assert cli(gateway, "keys", "create", "erin", "--name", "laptop", "--rpm", "5") == 0
    captured = capsys.readouterr()
    key = captured.err.split("key (shown once): ")[1].strip()
    shown = json.loads(captured.out)
    assert "key" not in shown and shown["rpm"] == 5
    answer = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200
    assert cli(gateway, "keys", "revoke", shown["id"]) == 0
    capsys.readouterr()

    # Errors are the API's message, on stderr, with exit status 1.
    assert cli(gateway, "users", "topup", "erin", "-1") == 1
    assert "400" in capsys.readouterr().err
    assert main(["users", "create", "x", "--url", gateway.base_url, "--admin-key", "bad"]) == 1
    assert "401" in capsys.readouterr().err


def test_cli_exports_and_imports_models(
    gateway: GatewayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    target = tmp_path / "models.json"
    assert cli(gateway, "models", "export", str(target)) == 0
    exported = json.loads(target.read_text())
    assert len(exported["models"]) == 41
    for row in exported["models"]:
        if row["model_id"] == "mock-1":
            row["note"] = "from the CLI"
    target.write_text(json.dumps(exported))
    assert cli(gateway, "models", "import", str(target), "--dry-run") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and [u["model_id"] for u in report["updated"]] == ["mock-1"]
    assert Admin(gateway).get("/admin/models/mock-1").json()["note"] != "from the CLI"
    assert cli(gateway, "models", "import", str(target)) == 0
    assert Admin(gateway).get("/admin/models/mock-1").json()["note"] == "from the CLI"
    assert cli(gateway, "models", "import", str(tmp_path / "missing.json")) == 1


def test_cli_shows_tiers_usage_the_ledger_and_the_history(
    gateway: GatewayServer, capsys: pytest.CaptureFixture[str]
):
    assert cli(gateway, "users", "create", "fay") == 0
    assert cli(gateway, "users", "topup", "fay", "1.25", "--reason", "trial") == 0
    capsys.readouterr()

    assert cli(gateway, "tiers") == 0
    assert "free" in {tier["id"] for tier in json.loads(capsys.readouterr().out)["data"]}

    assert cli(gateway, "ledger", "--user", "fay", "--kind", "topup") == 0
    [row] = json.loads(capsys.readouterr().out)["data"]
    assert (row["amount_nano"], row["reason"]) == (1_250_000_000, "trial")

    assert cli(gateway, "usage", "--group-by", "user", "--from", "2020-01-01T00:00:00Z") == 0
    assert json.loads(capsys.readouterr().out)["group_by"] == ["user"]

    Admin(gateway).patch("/admin/tiers/free", {"markup_percent": "2"}, reason="cli test")
    assert cli(gateway, "history", "--entity", "tier", "--id", "free", "--limit", "1") == 0
    [change] = json.loads(capsys.readouterr().out)["data"]
    assert (change["reason"], change["new"]["markup_percent"]) == ("cli test", "2")

    assert cli(gateway, "ledger", "--kind", "topup", "--after", "not-a-cursor") == 1
    assert "400: 'after' takes the 'next' cursor" in capsys.readouterr().err


def test_cli_makes_teams_and_budgets_and_lists_alerts(
    gateway: GatewayServer, capsys: pytest.CaptureFixture[str]
):
    gateway.add_user("ann", 0)
    assert cli(gateway, "team-add", "eng", "--member", "ann", "--wallet") == 0
    assert json.loads(capsys.readouterr().out)["members"] == ["ann"]
    assert cli(gateway, "team-topup", "eng", "3", "--idempotency-key", "k1") == 0
    assert json.loads(capsys.readouterr().out)["balance_usd"] == "3.000000000"
    assert cli(gateway, "budget-add", "team", "eng", "monthly", "2.5", "--alert", "80") == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["id"], made["limit_usd"], made["alert_percents"]) == (
        "team-eng-monthly",
        "2.500000000",
        [80],
    )
    assert cli(gateway, "budgets") == 0
    [listed] = json.loads(capsys.readouterr().out)["data"]
    assert listed["state"]["remaining_usd"] == "2.500000000"
    assert cli(gateway, "teams") == 0
    assert json.loads(capsys.readouterr().out)["data"][0]["wallet_balance_usd"] == "3.000000000"
    assert cli(gateway, "budget-remove", "team-eng-monthly") == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == "team-eng-monthly"
    assert cli(gateway, "alerts") == 0
    assert json.loads(capsys.readouterr().out)["data"] == []
