"""The durable outbox: waiting plays and the last known account state in HA's storage.

MongoDB is the record; this file is what lets an account keep polling Spotify while
MongoDB is down, across restarts: the plays not written yet, the ``users`` document's
identity and cursor, and the totals the entities showed. No token is ever written here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from bson.errors import InvalidId
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .engine.models import ScrobblerData, details_from_json, details_to_json
from .engine.pending import PendingPlays
from .engine.recent_plays import RecentPlays
from .engine.store import Account

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
# The snapshot of totals changes every cycle with new plays; HA writes delayed saves at
# shutdown anyway, so there is no need to hit the disk each time.
SNAPSHOT_SAVE_DELAY: Final = 600


@dataclass(slots=True)
class Snapshot:
    """What the outbox file held at startup."""

    account: Account | None
    data: ScrobblerData | None
    other_database: bool = False  # the file described another database (reconfigured)

    def unchanged_data(self, account: Account) -> ScrobblerData | None:
        """The file's totals, if MongoDB's account, cursor and write counters are as recorded.

        Every write of plays by this integration counts in the ``users`` document (a
        cycle's plays, also those shown late that leave ``lastTimestamp`` where it was, and
        the start of each history import), and any other scrobbler's live loop moves
        ``lastTimestamp``: unchanged, the plays the file knows are what MongoDB holds of
        the live window. A file without counters (older versions) is not trusted, nor one
        written while MongoDB was down.
        """
        known, data = self.account, self.data
        if known is None or data is None:
            return None
        if (
            known.owner != account.owner
            or known.spotify_id != account.spotify_id
            or known.last_timestamp != account.last_timestamp
            or known.counters != account.counters
            or known.imported_until != account.imported_until
            or data.mongodb_down_since is not None
            or data.day_start is None
        ):
            return None
        return data


class Outbox:
    """One account's outbox file (``.storage/spotify_scrobbler.outbox.<entry_id>``)."""

    def __init__(self, hass: HomeAssistant, entry_id: str, database: str = "") -> None:
        """Bind the file of one config entry, for the database ``database`` identifies."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.outbox.{entry_id}", private=True
        )
        self._account: Account | None = None
        self._data: ScrobblerData | None = None
        self._pending: PendingPlays | None = None
        self._recent: RecentPlays | None = None
        self.database = database
        # Set once the entry unloads: a late save would overwrite the next instance's file.
        self._closed = False

    async def async_load(
        self, pending: PendingPlays, recent: RecentPlays, blacklist: set[str]
    ) -> Snapshot:
        """Read the file into ``pending`` and ``recent``; returns the last known account state."""
        self._pending, self._recent = pending, recent
        stored = await self._store.async_load() or {}
        skipped = pending.restore(stored.get("pending"), blacklist)
        if skipped:
            _LOGGER.warning("Skipped %s unusable entries of the outbox file", skipped)
        if stored.get("database", self.database) != self.database:
            # Reconfigured to another database: what the file knew of the old one (its
            # account, cursor, totals, stored plays) says nothing about this one. The
            # waiting plays are Spotify's and go to the new database.
            _LOGGER.info("The outbox describes another database; starting from MongoDB")
            return Snapshot(None, None, other_database=True)
        recent.restore(stored.get("recent"))
        return Snapshot(_account_from_json(stored.get("account")), _data_from_json(stored))

    async def async_save_now(self, account: Account, data: ScrobblerData | None) -> None:
        """Write at once: waiting plays must survive a crash."""
        if self._closed:
            return
        self._account, self._data = account, data
        await self._store.async_save(self._serialize())
        if self._pending is not None:
            self._pending.changed = False

    def schedule_save(self, account: Account, data: ScrobblerData) -> None:
        """Write later (or at shutdown): only the account snapshot changed."""
        if self._closed:
            return
        self._account, self._data = account, data
        self._store.async_delay_save(self._serialize, SNAPSHOT_SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write what a delayed save would write, and cancel it (the entry is unloading).

        A delayed save left armed would later overwrite the file the reloaded entry
        writes, with this instance's older waiting plays.
        """
        if self._pending is not None and not self._closed:
            await self._store.async_save(self._serialize())
        self._closed = True

    async def async_remove(self) -> None:
        """Delete the file (the entry is being removed)."""
        await self._store.async_remove()

    def _serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "database": self.database,
            "pending": self._pending.to_json() if self._pending is not None else None,
            "recent": self._recent.to_json() if self._recent is not None else None,
        }
        if self._account is not None:
            out["account"] = {
                "owner": str(self._account.owner),
                "spotify_id": self._account.spotify_id,
                "last_timestamp": self._account.last_timestamp,
                "counters": dict(self._account.counters),
                "imported_until": self._account.imported_until,
            }
        if self._data is not None:
            data = self._data
            out["totals"] = {
                "total_plays": data.total_plays,
                "plays_today": data.plays_today,
                "listened_ms_today": data.listened_ms_today,
                "day_start": data.day_start.isoformat() if data.day_start else None,
                "last_play": details_to_json(data.last_play) if data.last_play else None,
                "waiting_new": sorted(at.isoformat() for at in data.waiting_new),
                "waiting_stored": sorted(at.isoformat() for at in data.waiting_stored),
                "mongodb_down_since": (
                    data.mongodb_down_since.isoformat() if data.mongodb_down_since else None
                ),
            }
        return out


def _account_from_json(value: Any) -> Account | None:
    try:
        return Account(
            owner=ObjectId(value["owner"]),
            spotify_id=str(value["spotify_id"]),
            last_timestamp=int(value["last_timestamp"]),
            first_listened_at=None,
            counters={str(k): int(v) for k, v in value.get("counters", {}).items()},
            imported_until=int(value.get("imported_until", 0)),
        )
    except AttributeError, KeyError, TypeError, ValueError, InvalidId:
        return None


def _data_from_json(stored: dict[str, Any]) -> ScrobblerData | None:
    totals = stored.get("totals")
    if not isinstance(totals, dict):
        return None
    try:
        day_start = totals.get("day_start")
        down_since = totals.get("mongodb_down_since")
        return ScrobblerData(
            total_plays=int(totals["total_plays"]),
            plays_today=int(totals["plays_today"]),
            listened_ms_today=int(totals["listened_ms_today"]),
            day_start=datetime.fromisoformat(day_start) if day_start else None,
            last_play=details_from_json(totals.get("last_play")),
            waiting_new=_instants(totals.get("waiting_new")),
            waiting_stored=_instants(totals.get("waiting_stored")),
            mongodb_down_since=datetime.fromisoformat(down_since) if down_since else None,
        )
    except KeyError, TypeError, ValueError:
        return None


def _instants(value: Any) -> frozenset[datetime]:
    """A persisted list of instants (older files have none: the rule falls back)."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(datetime.fromisoformat(at) for at in value if isinstance(at, str))
