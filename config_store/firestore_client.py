"""Firestore clients (google-cloud-firestore), and calls to them within a time limit.

Shared by the config store and the Firestore ledger: a client that finds the
store again promptly after an outage, and a time limit that really returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import grpc
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud.firestore_v1 import AsyncClient, Client

T = TypeVar("T")

CLIENT_ERRORS = (google_errors.GoogleAPIError, google_errors.RetryError)


class TimeLimit:
    """Runs calls to Firestore within a time limit, and really returns at the limit.

    `asyncio.wait_for` waits for the cancelled call to finish, and a cancelled
    google transaction first rolls back, which retries for up to a minute while
    the store is down (and then raises a ValueError of its own). Here a call
    still running at the limit is cancelled and left to end by itself; what it
    raises then is of no interest to anyone."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._late: set[asyncio.Task[Any]] = set()

    async def run(self, work: Awaitable[T], seconds: float | None = None) -> T:
        limit = self.seconds if seconds is None else seconds
        abandoned = False

        async def guarded() -> T:
            try:
                return await work
            except BaseException:
                if abandoned:
                    return cast(T, None)
                raise

        task = asyncio.ensure_future(guarded())
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        except asyncio.CancelledError:
            abandoned = True
            self._abandon(task)
            raise
        if not done:
            abandoned = True
            self._abandon(task)
            raise TimeoutError(f"Firestore did not answer within {limit:g} s")
        return task.result()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def cancel_late(self) -> None:
        """At close: calls still running are cancelled once more (which ends the
        rollback they may be in) and given a moment to end."""
        late = list(self._late)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)


def describe(exc: BaseException) -> str:
    """An error for messages and logs: its type and first words (google's messages
    carry a long debug string)."""
    return f"{type(exc).__name__}: {exc}"[:300]


def client(project: str, emulator_host: str = "", *, sync: bool = False) -> Any:
    """A Firestore client for `project`; with `emulator_host`, one that talks to
    that emulator without credentials. The library reads the emulator's address
    from the process environment only when the client is built; the settings
    module is our one reader of the environment, so the address is handed to
    the client here instead (its channel is made lazily, on first use)."""
    kind = Client if sync else AsyncClient
    if not emulator_host:
        made = kind(project=project)
    else:
        made = kind(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        made._emulator_host = emulator_host
    _reconnect_promptly(made, asynchronous=not sync)
    return made


# gRPC waits longer and longer (up to two minutes) before it reconnects a channel
# whose connection failed, so after an outage a client would find the store back
# only minutes later (the tests measured 27 s after 90 s). These keep it short.
_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def _reconnect_promptly(made: Any, *, asynchronous: bool) -> None:
    """Give the client's gRPC channel the `_RECONNECT` options. The library makes
    its channel itself and takes no channel options, so the two places where it
    makes one are wrapped: the emulator's channel, and Firestore's, through the
    transport class it asks for one."""
    emulator_host = made._emulator_host

    def emulator_channel(transport: Any) -> Any:
        options = [
            ("Authorization", "Bearer owner"),  # the emulator's stand-in for a token
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", -1),
            *_RECONNECT,
        ]
        if asynchronous:
            return grpc.aio.insecure_channel(emulator_host, options=options)
        return grpc.insecure_channel(emulator_host, options=options)

    build = made._firestore_api_helper

    def api(transport: Any, client_class: Any, client_module: Any) -> Any:
        class Transport(transport):  # type: ignore[misc]
            @classmethod
            def create_channel(cls, *args: Any, options: Any = (), **kwargs: Any) -> Any:
                return transport.create_channel(
                    *args, options=[*(options or ()), *_RECONNECT], **kwargs
                )

        Transport.__name__ = transport.__name__  # the library picks sync or async by it
        return build(Transport, client_class, client_module)

    made._emulator_channel = emulator_channel
    made._firestore_api_helper = api
