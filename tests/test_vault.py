"""Provider API keys stored encrypted under GATEWAY_SECRET_KEY; never in plain text at rest."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from gateway.errors import GatewayError
from gateway.providers.vault import Vault, VaultError

SECRET = Vault.new_secret_key()


def test_seal_and_reveal():
    vault = Vault(SECRET)
    sealed = vault.seal("sk-upstream-1234")
    assert sealed.startswith("fernet:") and "sk-upstream" not in sealed
    assert vault.reveal(sealed, "openai") == "sk-upstream-1234"
    assert vault.reveal("plain-legacy-key") == "plain-legacy-key"


def test_wrong_or_missing_secret_is_a_clear_503():
    sealed = Vault(SECRET).seal("sk-x")
    with pytest.raises(GatewayError) as missing:
        Vault("").reveal(sealed, "openai")
    assert missing.value.status == 503 and "GATEWAY_SECRET_KEY" in missing.value.message
    with pytest.raises(GatewayError) as wrong:
        Vault(Vault.new_secret_key()).reveal(sealed, "openai")
    assert wrong.value.status == 503 and "cannot be decrypted" in wrong.value.message
    assert "sk-x" not in wrong.value.message


def test_malformed_secret_is_refused():
    with pytest.raises(VaultError):
        Vault("not-a-fernet-key")


def test_cli_stores_the_key_encrypted_and_the_gateway_uses_it(make_gateway, fake_openai):
    gw = make_gateway(env={"OPENAI_API_KEY": "", "GATEWAY_SECRET_KEY": SECRET})
    env = {**os.environ, "GATEWAY_DATA_DIR": str(gw.data_dir), "GATEWAY_SECRET_KEY": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.ops.cli", "set-provider-key", "openai"],
        input="sk-fake-upstream\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ending ...ream" in done.stdout and "sk-fake-upstream" not in done.stdout
    [(stored,)] = gw.query("SELECT api_key FROM providers WHERE id = 'openai'")
    assert stored.startswith("fernet:")
    assert b"sk-fake-upstream" not in gw.db.read_bytes()
    gw.refresh()
    response = httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 200, response.text
    assert fake_openai.requests[-1]["headers"]["authorization"] == "Bearer sk-fake-upstream"


def test_encrypted_key_without_the_secret_is_503(make_gateway, fake_openai):
    gw = make_gateway(env={"OPENAI_API_KEY": ""})
    sealed = Vault(SECRET).seal("sk-fake-upstream")
    gw.execute("UPDATE providers SET api_key = ? WHERE id = 'openai'", sealed)
    gw.refresh()
    response = httpx.post(
        f"{gw.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.demo_key}"},
        json={"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 503
    assert "GATEWAY_SECRET_KEY" in response.json()["error"]["message"]
    assert fake_openai.calls == 0
