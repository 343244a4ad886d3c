"""Google's Firestore emulator, started for the test session on a free port.

It is the `gcloud emulators firestore start` of the Google Cloud CLI (Java);
where gcloud is absent, the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gcloud() -> str | None:
    return shutil.which("gcloud")


@contextmanager
def emulator() -> Iterator[str]:
    """Start the emulator; yield its host:port; stop it (and its Java child)."""
    binary = gcloud()
    assert binary is not None
    host = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, "emulators", "firestore", "start", f"--host-port={host}", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Firestore emulator did not start")
            time.sleep(0.2)
        yield host
    finally:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                process.wait()


def new_project() -> str:
    """A project of its own for each test: the emulator keeps projects apart."""
    return f"test-{uuid.uuid4().hex[:12]}"


def documents(host: str, project: str, collection: str) -> dict[str, dict[str, object]]:
    """Every document of a collection, read straight from the emulator."""
    from config_store.firestore import client

    db = client(project, host, sync=True)
    try:
        return {doc.id: doc.to_dict() or {} for doc in db.collection(collection).get()}
    finally:
        db.close()


def firestore_env(host: str, project: str) -> dict[str, str]:
    return {
        "GATEWAY_STORE": "firestore",
        "GATEWAY_FIRESTORE_PROJECT": project,
        "GATEWAY_FIRESTORE_EMULATOR_HOST": host,
        "GATEWAY_LEDGER_FLUSH_SECONDS": "0.2",
        "GATEWAY_BALANCE_SYNC_SECONDS": "0.5",
    }
