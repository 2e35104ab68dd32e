"""Bounded caches: stored metadata ids (spare a cycle lookups), names for the export."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

KNOWN_IDS_CACHE_SIZE: Final = 4096  # per kind; bounds memory whatever the history size


class BoundedIdSet:
    """Ids known to be stored, least recently seen evicted first (bounded memory)."""

    def __init__(self, size: int = KNOWN_IDS_CACHE_SIZE) -> None:
        """Keep at most ``size`` ids."""
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, item_id: object) -> bool:
        """Whether the id is known (refreshes its place)."""
        if item_id in self._ids:
            self._ids.move_to_end(str(item_id))
            return True
        return False

    def __len__(self) -> int:
        """Number of ids kept."""
        return len(self._ids)

    def add_all(self, ids: Iterable[str]) -> None:
        """Remember ids, evicting the oldest beyond the bound."""
        for item_id in ids:
            self._ids[item_id] = None
            self._ids.move_to_end(item_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


@dataclass(slots=True)
class KnownMetadata:
    """Metadata ids known to be in MongoDB, shared by all accounts of one database."""

    tracks: BoundedIdSet
    albums: BoundedIdSet
    artists: BoundedIdSet  # enriched artists only

    @classmethod
    def empty(cls) -> KnownMetadata:
        """Nothing known yet."""
        return cls(BoundedIdSet(), BoundedIdSet(), BoundedIdSet())


class BoundedMap[V]:
    """A map that forgets its least recently used keys beyond ``size``."""

    def __init__(self, size: int) -> None:
        """Keep at most ``size`` keys."""
        self._items: OrderedDict[str, V] = OrderedDict()
        self._size = size

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is kept."""
        return key in self._items

    def __len__(self) -> int:
        """Keys kept."""
        return len(self._items)

    def get(self, key: str) -> V | None:
        """The value (refreshing its place), None if not kept."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: str, value: V) -> None:
        """Keep ``value``, forgetting the oldest key beyond the bound."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
