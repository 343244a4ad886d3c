"""Google's Firestore emulator, started for the test session on a free port.

It is the `gcloud emulators firestore start` of the Google Cloud CLI (Java);
where gcloud is absent, the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import json
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
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gcloud() -> str | None:
    return shutil.which("gcloud")


class Emulator:
    """One emulator process on a fixed port, that a test may kill (its whole
    process group, the Java server with it) and start again from an export of
    a project's data, as a store that went down and came back."""

    def __init__(self, port: int | None = None) -> None:
        self.host = f"127.0.0.1:{port or free_port()}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, import_data: Path | None = None) -> Emulator:
        binary = gcloud()
        assert binary is not None
        command = [binary, "emulators", "firestore", "start", f"--host-port={self.host}", "--quiet"]
        if import_data is not None:
            command.append(f"--import-data={import_data}")
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self._process = process
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("the Firestore emulator did not start")
            time.sleep(0.2)
        _warm_up(self.host)
        return self

    def export(self, project: str, directory: Path) -> Path:
        """The project's documents written to `directory`; returns the file that
        `start(import_data=...)` takes."""
        directory.mkdir(parents=True, exist_ok=True)
        request = urllib.request.Request(
            f"http://{self.host}/emulator/v1/projects/{project}:export",
            data=json.dumps(
                {
                    "database": f"projects/{project}/databases/(default)",
                    "export_directory": str(directory),
                }
            ).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        [metadata] = directory.glob("*/*.overall_export_metadata")
        return metadata

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group and wait until every member is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        group = os.getpgid(process.pid) if process.poll() is None else None
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                process.wait()
            deadline = time.monotonic() + 15
            while _members(group) and time.monotonic() < deadline:
                time.sleep(0.05)


def _members(group: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _warm_up(host: str) -> None:
    """A fresh emulator takes seconds over its first calls (the JVM warming up):
    made here, so that no test's timeout pays for them."""
    from google.cloud import firestore

    from config_store.firestore_client import client

    db = client("warm-up", host, sync=True)
    try:
        ref = db.collection("warm").document("up")
        ref.get()

        @firestore.transactional
        def write(transaction: Any) -> None:
            ref.get(transaction=transaction)
            transaction.set(ref, {"at": time.time()})

        write(db.transaction())
    finally:
        db.close()


@contextmanager
def emulator() -> Iterator[str]:
    """Start the emulator; yield its host:port; stop it (and its Java child)."""
    server = Emulator().start()
    try:
        yield server.host
    finally:
        server.kill(signal.SIGTERM)


def new_project() -> str:
    """A project of its own for each test: the emulator keeps projects apart."""
    return f"test-{uuid.uuid4().hex[:12]}"


def documents(host: str, project: str, collection: str) -> dict[str, dict[str, object]]:
    """Every document of a collection, read straight from the emulator."""
    from config_store.firestore_client import client

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
