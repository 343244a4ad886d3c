"""Request ids: unique and ordered by time.

The request id is the ledger's primary key. Ids that grow with time land at
the end of that index, so a commit of many rows touches a few index pages
(and writes a few pages to the WAL) instead of one page per row, as random
ids would.
"""

from __future__ import annotations

import itertools
import secrets
import time


class RequestIds:
    def __init__(self) -> None:
        self._process = secrets.token_hex(4)  # tells apart processes sharing a ledger
        self._count = itertools.count()

    def next(self) -> str:
        micros = time.time_ns() // 1000
        return f"req_{micros:013x}{self._process}{next(self._count) & 0xFFFFFF:06x}"
