"""Rebuilds an account's rollups (``engine/rollups.py``) in the background when needed."""

from __future__ import annotations

import asyncio
import logging

from bson import ObjectId
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from pymongo.errors import PyMongoError

from .engine.rollups import RollupStore

_LOGGER = logging.getLogger(__name__)


class RollupUpkeep:
    """One rebuild at a time: at setup, and whenever a ranking found the rollups stale."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, rollups: RollupStore, owner: ObjectId
    ) -> None:
        """Keep ``owner``'s rollups in ``rollups`` true."""
        self._hass = hass
        self._entry = entry
        self.rollups = rollups
        self._owner = owner
        self._task: asyncio.Task[None] | None = None

    @callback
    def schedule(self) -> None:
        """Rebuild in the background (reads the history once), unless one is under way."""
        if self._task is not None and not self._task.done():
            return
        self._task = self._entry.async_create_background_task(
            self._hass, self._rebuild(), f"rollups of {self._entry.title}"
        )

    async def _rebuild(self) -> None:
        try:
            if not await self.rollups.rebuild(self._owner):
                _LOGGER.debug("%s: rollups changed during each rebuild", self._entry.title)
        except PyMongoError as err:
            # The next ranking counts in MongoDB and asks again.
            _LOGGER.debug("%s: rollups not rebuilt: %s", self._entry.title, err)
