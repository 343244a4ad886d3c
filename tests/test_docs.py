"""Every environment variable the gateway reads is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    source = (ROOT / "gateway" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r'"((?:GATEWAY|TIKTOKEN)_[A-Z_]+)"', source))
    assert "GATEWAY_LEDGER_SYNC" in names
    missing = sorted(name for name in names if name not in readme)
    assert missing == []


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    assert "make run" in head and "make test" in head
