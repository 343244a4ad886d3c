"""A real headless Chromium for the console's tests: found on this machine, or
installed from Debian's `chromium` package where that can be done (root and
apt-get), else the reason why not, which the tests skip with.

`python -m tests.browser` (run by `make test` before the suite) finds or
installs it once and says what it did; the tests only look."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV = "GATEWAY_TEST_CHROMIUM"  # a browser's path, to use that one
_LOCK = Path("/tmp/gateway-test-chromium.lock")

# Headless on a machine with no network beyond its package registries: nothing in
# the background may try to reach Google's hosts.
LAUNCH_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find() -> str | None:
    chosen = os.environ.get(ENV)
    if chosen:
        return chosen if Path(chosen).is_file() else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install() -> tuple[str | None, str]:
    """The browser's path and what was done, or None and why there is none."""
    found = find()
    if found:
        return found, f"found {found}"
    if os.environ.get(ENV):
        return None, f"{ENV} names {os.environ[ENV]}, which is not a file"
    if shutil.which("apt-get") is None:
        return None, "no Chromium on PATH and no apt-get to install Debian's chromium package"
    if os.geteuid() != 0:
        return None, (
            "no Chromium on PATH, and installing Debian's chromium package needs root: "
            "run `sudo apt-get install chromium` or set " + ENV
        )
    with _LOCK.open("w") as lock:  # one install at a time, across test workers too
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find()
        if found:
            return found, f"found {found}"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "chromium"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        found = find()
        if found:
            return found, f"installed Debian's chromium package: {found}"
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return None, "apt-get could not install chromium: " + " / ".join(tail)


def main() -> int:
    path, what = install()
    if path is None:
        banner = "!" * 78
        print(
            f"{banner}\nNO BROWSER: the console's browser tests will be SKIPPED.\n{what}\n{banner}"
        )
    else:
        print(f"browser for the console's tests: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
