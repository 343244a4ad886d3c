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


def _paths_named_in(text: str) -> set[str]:
    """The repository paths a document names, as `path/to/file.py` or `dir/`."""
    found = re.findall(r"`((?:gateway|billing|config_store|tests|bench|docs)/[\w/.]*)`", text)
    found += re.findall(r"\]\(((?!https?:)[^)#]+)\)", text)
    return {path.split("::")[0] for path in found}


def test_the_docs_name_only_files_that_exist():
    for doc in ("README.md", "docs/architecture.md"):
        text = (ROOT / doc).read_text()
        assert "../" not in text, f"{doc} points outside the repository"
        missing = sorted(p for p in _paths_named_in(text) if not (ROOT / p).exists())
        assert missing == [], f"{doc} names files that do not exist: {missing}"


def test_the_map_names_every_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = {
        str(init.parent.relative_to(ROOT))
        for root in ("gateway", "billing", "config_store")
        for init in (ROOT / root).rglob("__init__.py")
    }

    def named(package: str) -> bool:  # the tree nests: `api/admin/` under `gateway/`
        within = package.split("/", 1)[-1]
        return f"{package}/" in text or f" {within}/ " in text

    assert sorted(p for p in packages if not named(p)) == []
