"""Plays fetched from Spotify but not yet in MongoDB (the outbox's content).

Plain Python: the scrobbler fills and drains it, the coordinator persists its JSON form in
Home Assistant's storage so it survives restarts. Items are kept in Spotify's own shape
(trimmed to the fields we store), so reloading them goes through the same validation as a
fresh payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from .models import PlayDetails, to_unix_ms
from .payload import ParsedItem, parse_item

# About four days of non-stop listening: far beyond any MongoDB outage worth waiting out,
# small enough (a few MB of JSON) for HA's storage.
PENDING_LIMIT: Final = 2000


class PendingPlays:
    """An ordered, bounded set of plays waiting for MongoDB, oldest first."""

    def __init__(self, limit: int | None = None) -> None:
        """Hold at most ``limit`` plays (PENDING_LIMIT by default)."""
        self._items: dict[tuple[str, datetime], ParsedItem] = {}
        # Plays a failed write may have stored after all (its reply was lost): the next
        # cycle looks for them in MongoDB and announces those it finds.
        self.attempted: set[tuple[str, datetime]] = set()
        self.limit = limit if limit is not None else PENDING_LIMIT
        # The oldest play refused because the outbox was full (None while nothing was refused).
        self.refused_since: datetime | None = None
        self.changed = False  # since the last persist

    def __len__(self) -> int:
        """Number of plays waiting."""
        return len(self._items)

    @property
    def newest_ms(self) -> int:
        """Unix ms of the newest waiting play (0 when empty)."""
        return max((to_unix_ms(key[1]) for key in self._items), default=0)

    def merged_with(self, fetched: Iterable[ParsedItem]) -> list[ParsedItem]:
        """Waiting plays and freshly fetched ones, unique per (track, instant), oldest first."""
        merged = dict(self._items)
        for item in fetched:
            merged.setdefault(_key(item), item)
        return sorted(merged.values(), key=lambda item: item.play.played_at)

    def is_attempted(self, item: ParsedItem) -> bool:
        """Whether a write of this play failed without telling whether it was stored."""
        return _key(item) in self.attempted

    def hold(self, items: Iterable[ParsedItem], attempted: Iterable[ParsedItem] = ()) -> None:
        """Keep ``items`` (replacing what was held); beyond the bound the newest are refused.

        The oldest are the ones Spotify forgets first; the newest stay in its 50-play window
        for a while and may still be fetched once MongoDB is back. ``attempted`` are plays
        whose write just failed (they stay marked until written or found stored).
        """
        ordered = sorted({_key(item): item for item in items}.values(), key=_played_at)
        kept, refused = ordered[: self.limit], ordered[self.limit :]
        if refused:
            first = refused[0].play.played_at
            self.refused_since = min(first, self.refused_since or first)
        new = {_key(item): item for item in kept}
        marked = (self.attempted | {_key(item) for item in attempted}) & new.keys()
        if new.keys() != self._items.keys() or marked != self.attempted:
            self.changed = True
        self._items = new
        self.attempted = marked

    def clear(self) -> None:
        """Everything was written."""
        if self._items or self.refused_since is not None:
            self.changed = True
        self._items = {}
        self.attempted = set()
        self.refused_since = None

    def details(self) -> tuple[PlayDetails, ...]:
        """The waiting plays as entities show them, oldest first."""
        return tuple(item.details for item in sorted(self._items.values(), key=_played_at))

    def to_json(self) -> dict[str, Any]:
        """The JSON form persisted in HA's storage."""
        return {
            "items": [item.to_item() for item in sorted(self._items.values(), key=_played_at)],
            "attempted": [[track_id, at.isoformat()] for track_id, at in sorted(self.attempted)],
            "refused_since": self.refused_since.isoformat() if self.refused_since else None,
        }

    def restore(self, stored: Any, blacklist: set[str]) -> int:
        """Load a persisted JSON form; returns how many entries were unusable (skipped)."""
        if not isinstance(stored, dict):
            return 0
        raw_items = stored.get("items")
        raw_items = raw_items if isinstance(raw_items, list) else []
        parsed = [p for raw in raw_items if (p := parse_item(raw, blacklist)) is not None]
        self._items = {_key(item): item for item in sorted(parsed, key=_played_at)}
        self.attempted = _keys(stored.get("attempted")) & self._items.keys()
        refused = stored.get("refused_since")
        try:
            self.refused_since = datetime.fromisoformat(refused) if refused else None
        except TypeError, ValueError:
            self.refused_since = None
        self.changed = False
        return len(raw_items) - len(parsed)


def _keys(value: Any) -> set[tuple[str, datetime]]:
    """The persisted ``attempted`` list; anything unusable is dropped (only a re-check)."""
    keys: set[tuple[str, datetime]] = set()
    for pair in value if isinstance(value, list) else ():
        try:
            track_id, at = pair
            keys.add((str(track_id), datetime.fromisoformat(at).astimezone(UTC)))
        except TypeError, ValueError:
            continue
    return keys


def _key(item: ParsedItem) -> tuple[str, datetime]:
    return item.play.track_id, item.play.played_at


def _played_at(item: ParsedItem) -> datetime:
    return item.play.played_at
