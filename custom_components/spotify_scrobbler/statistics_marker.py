"""The file that tells an account's long-term statistics what still needs a rebuild.

``spotify_scrobbler.statistics.<entry_id>`` in HA's storage: ``stale_since`` (ISO instant, or
null for all history) and ``clear`` (the rows describe another database: drop them first).
Shared by the statistics tracker and the coordinator, which notes a database change before
the outbox forgets the old database, and plays re-blacklisted before the tracker starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .engine.hourly import hour_of

STORAGE_VERSION: Final = 1


def marker_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """The marker file of one config entry."""
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.statistics.{entry_id}")


async def async_request_statistics_reset(hass: HomeAssistant, entry_id: str) -> None:
    """Have the statistics cleared and rebuilt from all history at their next start."""
    await marker_store(hass, entry_id).async_save({"stale_since": None, "clear": True})


async def async_request_statistics_rebuild(
    hass: HomeAssistant, entry_id: str, since: datetime
) -> None:
    """Have the statistics rebuilt from the hour of ``since`` on at their next start.

    For an entry whose statistics tracker is not running (it would overwrite the file):
    merged with what the file asks already, which only ever widens.
    """
    store = marker_store(hass, entry_id)
    stored = await store.async_load()
    marker: dict[str, Any] = stored if isinstance(stored, dict) else {}
    if "stale_since" in marker:
        previous = marker["stale_since"]
        try:
            since = min(since, datetime.fromisoformat(previous))
        except TypeError, ValueError:
            return  # all history, or unreadable: the tracker rebuilds everything anyway
    await store.async_save({**marker, "stale_since": hour_of(since).isoformat()})
