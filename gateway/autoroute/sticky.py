"""Which model served each conversation: a bounded LRU, one per process.

Keys are (user id, conversation id), so two users never share a conversation.
The capacity is a router knob (`sticky_conversations`) and follows it when
it changes; 0 turns stickiness off.
"""

from __future__ import annotations

from collections import OrderedDict


class StickyRoutes:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._served: OrderedDict[tuple[str, str], str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._served)

    def copy(self) -> StickyRoutes:
        """A separate memory with the same entries, for decisions that must not
        touch the live one (a simulation under a draft config)."""
        twin = StickyRoutes(self._capacity)
        twin._served = self._served.copy()
        return twin

    def resize(self, capacity: int) -> None:
        self._capacity = capacity
        while len(self._served) > capacity:
            self._served.popitem(last=False)

    def get(self, user_id: str, conversation: str) -> str | None:
        key = (user_id, conversation)
        model = self._served.get(key)
        if model is not None:
            self._served.move_to_end(key)
        return model

    def remember(self, user_id: str, conversation: str, model_id: str) -> None:
        if self._capacity <= 0:
            return
        key = (user_id, conversation)
        self._served[key] = model_id
        self._served.move_to_end(key)
        if len(self._served) > self._capacity:
            self._served.popitem(last=False)
