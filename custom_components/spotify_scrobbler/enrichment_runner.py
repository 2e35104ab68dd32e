"""Runs the metadata enrichment of imported plays in the background, one task per account.

Never beside an import (a flush replaces plays without ids, which an import inserts): the
import manager stops it when an import starts and starts it again when the import is done.
When MongoDB is down it waits for a cycle that reaches MongoDB instead of spinning.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from pymongo.errors import PyMongoError

from .const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from .engine.import_enrichment import MetadataEnricher
from .engine.models import ScrobblerStatus
from .engine.mongo_client import describe_error
from .engine.spotify import RequestGate, SpotifyClient
from .statistics import async_mark_statistics_stale, async_refresh_statistics

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry
    from .coordinator import ScrobblerCoordinator

_LOGGER = logging.getLogger(__name__)

STATISTICS_REBUILD_INTERVAL: Final = 30 * 60.0  # seconds between rebuilds while enriching


class EnrichmentRunner:
    """Starts, defers and stops the enrichment task of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpotifyScrobblerConfigEntry,
        coordinator: ScrobblerCoordinator,
        client: SpotifyClient,
        gate: RequestGate,
        *,
        import_busy: Callable[[], bool],
        on_progress: CALLBACK_TYPE,
    ) -> None:
        """Bind the runner; ``import_busy`` says whether an import must not be disturbed."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.client = client
        self.gate = gate
        self.enricher: MetadataEnricher | None = None
        self.task: asyncio.Task[None] | None = None
        self._import_busy = import_busy
        self._on_progress = on_progress
        # MongoDB was down when enrichment wanted to start: retry after a cycle reaches it
        # (a background task spinning on a dead server would never end).
        self._deferred = False
        self._rebuilt_at = -math.inf  # loop time of the last statistics rebuild

    def start(self) -> None:
        """Start enriching, unless an import runs or the enrichment runs already."""
        if self._import_busy():
            return
        if self.task is not None and not self.task.done():
            return
        account = self.coordinator.account
        assert account is not None  # a set-up entry has its account  # noqa: S101
        enricher = MetadataEnricher(
            self.client, self.gate, self.coordinator.store, account.owner, self._blacklist
        )
        enricher.on_progress = self._on_progress
        enricher.before_changing = self._before_changing
        enricher.after_flush = partial(self._after_flush, enricher)
        self.enricher = enricher
        self.task = self.entry.async_create_background_task(
            self.hass, self._run(enricher), f"{DOMAIN} enrichment"
        )

    @callback
    def after_cycle(self) -> None:
        """A cycle ended: start a deferred enrichment if MongoDB answers again."""
        if (
            self._deferred
            and not self._import_busy()
            and self.coordinator.data.status is not ScrobblerStatus.MONGODB_UNAVAILABLE
        ):
            self._deferred = False
            self.start()

    def _blacklist(self) -> list[str]:
        return list(self.entry.options.get(CONF_BLACKLISTED_ARTISTS, []))

    async def _before_changing(self, oldest: datetime) -> None:
        # Durable before the plays change: a restart before the rebuild still rebuilds.
        await async_mark_statistics_stale(self.hass, self.entry, oldest)

    async def _after_flush(self, enricher: MetadataEnricher, *, last: bool = False) -> None:
        """Rebuild the statistics from the oldest play the flushes blacklisted or re-timed.

        At most every STATISTICS_REBUILD_INTERVAL, and after the last flush: flushes come
        every few minutes and each rebuild may span the whole history. The statistics are
        marked stale before the plays change, so a rebuild put off is never lost.
        """
        oldest = enricher.oldest_changed
        now = self.hass.loop.time()
        if oldest is None or (not last and now - self._rebuilt_at < STATISTICS_REBUILD_INTERVAL):
            return
        enricher.oldest_changed, self._rebuilt_at = None, now
        await async_refresh_statistics(self.hass, self.entry, oldest)

    async def _run(self, enricher: MetadataEnricher) -> None:
        try:
            # Once per account: plays older versions imported get their track's length.
            await enricher.queue_older_imports()
            await enricher.count_pending()
        except PyMongoError:
            _LOGGER.debug("cannot count the tracks waiting for enrichment; retrying later")
            self._deferred = True
            return
        if enricher.remaining == 0:
            return
        self._on_progress()
        try:
            await enricher.run()
            await self._after_flush(enricher, last=True)
        except PyMongoError as err:
            _LOGGER.warning(
                "%s: enrichment paused, MongoDB failed: %s", self.entry.title, describe_error(err)
            )
            self._deferred = True
            return
        if enricher.tracks_done or enricher.unknown_tracks:
            _LOGGER.info(
                "%s: metadata of %s imported tracks filled in (%s unknown to Spotify, %s requests)",
                self.entry.title,
                enricher.tracks_done,
                enricher.unknown_tracks,
                enricher.requests,
            )
            await self.coordinator.async_recount()
        self._on_progress()
