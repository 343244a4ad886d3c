"""A TCP forwarder on a loopback port, between the gateway and a real server
(the Firestore emulator), that a test can cut: an outage of the network as the
gateway sees it, while the server itself keeps its data.

- `cut()`: the port stops listening and every open connection is closed, as
  when the server's process is killed (connections refused and reset).
- `hang()`: connections are accepted and kept, but nothing is forwarded either
  way, as when a server or the network stops answering.
- `restore()`: listening and forwarding again, on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self


class TcpProxy:
    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._forwarding = threading.Event()
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._listen()
        self._forwarding.set()
        return self

    def cut(self) -> None:
        self._forwarding.clear()
        self._close_all(listener=True)

    def hang(self) -> None:
        self._forwarding.clear()

    def restore(self) -> None:
        """Forward again. Connections held while hanging are closed (the client
        gives up on them anyway); new ones are forwarded."""
        self._close_all(listener=False)
        if self._listener is None:
            self._listen()
        self._forwarding.set()

    def stop(self) -> None:
        self._forwarding.set()  # no pump stays blocked
        self._close_all(listener=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._keep(client)
        self._forwarding.wait()
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._keep(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._forwarding.wait()  # while hanging, the bytes go nowhere
                if source.fileno() == -1:
                    break
                sink.sendall(data)
        except OSError:
            pass
        self._close(source)
        self._close(sink)

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _close_all(self, *, listener: bool) -> None:
        if listener and self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)
