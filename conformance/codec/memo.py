"""A bounded memo for results a gateway computes again and again about the same few objects (its
certificates, CRLs, the replies it just built): emptied when full, so it never grows with traffic and a
result is at worst computed again."""

from __future__ import annotations

from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class BoundedMemo:
    def __init__(self, size: int):
        self._size, self._items = size, {}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def lookup(self, key: Hashable, default=None):
        return self._items.get(key, default)

    def put(self, key: Hashable, value) -> None:
        if len(self._items) >= self._size:
            self._items.clear()
        self._items[key] = value

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key in self._items:
            return self._items[key]
        value = compute()
        self.put(key, value)
        return value
