"""A changed blacklist option applied to the stored plays when the entry connects.

The options flow reloads the entry, so setup (its first connection to MongoDB) is where a
change is seen. The coordinator runs this before it counts the totals; the statistics
hours from the oldest changed play on are marked for a rebuild before any play changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant

from .engine.blacklist import apply_blacklist
from .statistics import TRACKERS, async_mark_statistics_stale
from .statistics_marker import async_request_statistics_rebuild

if TYPE_CHECKING:
    from bson import ObjectId

    from . import SpotifyScrobblerConfigEntry
    from .engine.store import ScrobbleStore

_LOGGER = logging.getLogger(__name__)


async def async_sync_blacklist(
    hass: HomeAssistant,
    entry: SpotifyScrobblerConfigEntry,
    store: ScrobbleStore,
    owner: ObjectId,
    blacklist: Sequence[str],
) -> bool:
    """Blacklist or un-blacklist stored plays where the option changed (raises PyMongoError).

    Returns whether the option had changed since it was last applied.
    """

    async def before_change(oldest: datetime) -> None:
        await _async_statistics_stale(hass, entry, oldest)

    change = await apply_blacklist(store.db, owner, blacklist, before_change)
    if change is None:
        return False
    if change.added or change.restored:
        _LOGGER.info(
            "%s: blacklist applied to the stored plays: %s plays blacklisted, %s counted again",
            entry.title,
            change.plays_blacklisted,
            change.plays_counted_again,
        )
    if change.kept:
        _LOGGER.info(
            "%s: plays of %s stay blacklisted: Your Spotify's own blacklist lists them",
            entry.title,
            ", ".join(change.kept),
        )
    return True


async def _async_statistics_stale(
    hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry, since: datetime
) -> None:
    """Note durably that the statistics from ``since`` on need a rebuild."""
    if "recorder" not in hass.config.components:
        return
    if entry.entry_id in hass.data.get(TRACKERS, {}):
        # Setup connected late: the running tracker rebuilds after the next cycle.
        await async_mark_statistics_stale(hass, entry, since)
    else:
        # The usual case, setup: the tracker reads the marker when it starts.
        await async_request_statistics_rebuild(hass, entry.entry_id, since)
