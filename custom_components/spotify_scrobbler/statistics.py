"""Hourly plays and listening minutes of each account as external long-term statistics.

Two statistics per account, ``spotify_scrobbler:<account>_plays`` and
``spotify_scrobbler:<account>_listening_minutes`` (sum only: ``state`` is the hour's value,
``sum`` the running total since the first play), so the statistics-graph card can show
listening over months and years. Hours without plays have no row.

Rows are rebuilt from MongoDB at setup (from the last hour the recorder has; the whole
history the first time) and on request (``async_refresh_statistics``, e.g. after a history
import). A cycle's new plays are added without asking MongoDB when they fall in the last
written hour or later (the usual case: range queries are full scans on FerretDB); the last
hour's play instants are kept so that a play the rebuild already counted is not counted
twice. An older play (late arrival, outbox flush) triggers a rebuild from its hour.

Never a hole: the earliest hour whose rows still need a rebuild ("stale since") is kept in
HA's Store before any rebuild rewrites written rows, and whenever one fails or is cut
short. Setup and every cycle that reaches MongoDB rebuild from it until one completes.
Hours whose plays are all blacklisted have a row of 0 (a play blacklisted after it was
counted must not stay counted; the recorder cannot delete single rows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
)
from homeassistant.const import UnitOfTime
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.storage import Store
from homeassistant.util import slugify
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.unit_conversion import DurationConverter
from pymongo.errors import PyMongoError

from .const import DOMAIN
from .engine.hourly import HourTotals, hour_of, hourly_totals, totals_before
from .engine.models import Play, ScrobblerStatus
from .engine.mongo_client import describe_error
from .statistics_marker import marker_store

if TYPE_CHECKING:
    from bson import ObjectId

    from . import SpotifyScrobblerConfigEntry

_LOGGER = logging.getLogger(__name__)

# Rows handed to the recorder per import job: bounds what waits in its queue at once.
CHUNK_HOURS: Final = 1000
MS_PER_MINUTE: Final = 60_000

TRACKERS: HassKey[dict[str, ListeningStatistics]] = HassKey(f"{DOMAIN}_statistics")


def statistic_ids(entry: SpotifyScrobblerConfigEntry) -> tuple[str, str]:
    """(plays, listening minutes) statistic ids of an account."""
    account = slugify(entry.unique_id or entry.entry_id)
    return f"{DOMAIN}:{account}_plays", f"{DOMAIN}:{account}_listening_minutes"


@callback
def async_setup_statistics(
    hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry
) -> CALLBACK_TYPE:
    """Backfill in the background and follow the coordinator; returns the unload callback.

    Does nothing when the recorder is not running (it is optional).
    """
    if "recorder" not in hass.config.components:
        _LOGGER.debug("recorder not loaded: no long-term statistics for %s", entry.title)
        return lambda: None
    tracker = ListeningStatistics(hass, entry)
    trackers = hass.data.setdefault(TRACKERS, {})
    trackers[entry.entry_id] = tracker
    coordinator = entry.runtime_data.coordinator
    tracker.seen_cycle = coordinator.data.cycle
    entry.async_create_background_task(
        hass, tracker.async_start(), f"{DOMAIN} statistics backfill {entry.title}"
    )
    unsubscribe = coordinator.async_add_listener(tracker.coordinator_updated)

    @callback
    def unload() -> None:
        unsubscribe()
        trackers.pop(entry.entry_id, None)

    return unload


async def async_mark_statistics_stale(
    hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry, since: datetime | None
) -> None:
    """Note (durably) that plays from ``since`` on (None: all) changed behind our back.

    The rows are rebuilt after the next cycle that reaches MongoDB, or at the next setup.
    Call it before the change is saved as done. A no-op without the recorder.
    """
    tracker = hass.data.get(TRACKERS, {}).get(entry.entry_id)
    if tracker is not None:
        await tracker.async_mark_stale(since)


async def async_refresh_statistics(
    hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry, since: datetime | None
) -> None:
    """Rebuild an account's statistics from the hour of ``since`` on (None: all history).

    For code that adds, removes or blacklists plays behind the scrobbler's back, such as the
    history import. Marked stale first: a rebuild cut short (MongoDB, unload, restart) is
    completed later by itself. Returns once the rows are queued in the recorder (or the
    rebuild failed); a no-op without the recorder.
    """
    tracker = hass.data.get(TRACKERS, {}).get(entry.entry_id)
    if tracker is not None:
        await tracker.async_mark_stale(since)
        await tracker.async_rebuild(since)


def _older(first: datetime | None, second: datetime | None) -> datetime | None:
    """The earlier start; None (all history) is the earliest."""
    if first is None or second is None:
        return None
    return min(first, second)


class ListeningStatistics:
    """Keeps one account's two statistics in step with MongoDB."""

    def __init__(self, hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry) -> None:
        """Statistics of ``entry`` (loaded: its coordinator holds the store and account)."""
        self.hass = hass
        self.entry = entry
        self.plays_id, self.minutes_id = statistic_ids(entry)
        self.seen_cycle = 0
        # The newest hour written: its own totals and the running sums at its end.
        self.last_hour: HourTotals | None = None
        self.sums: tuple[int, int] = (0, 0)
        # One rebuild at a time: each starts from where the previous one ended.
        self._lock = asyncio.Lock()
        # Rows from the hour ``stale_since`` on (all when None) still need a rebuild.
        self.stale = False
        self.stale_since: datetime | None = None
        # Counts marks: a rebuild clears the marker only if none came while it ran (it
        # may have read those hours before they changed).
        self._marks = 0
        self._marker: Store[dict[str, Any]] = marker_store(hass, entry.entry_id)
        self._clear_requested = False  # the rows describe another database
        self._marker_lock = asyncio.Lock()  # writes in order, the newest state last
        self._marker_loaded = False
        self._retry_queued = False
        self._failing = False

    @callback
    def coordinator_updated(self) -> None:
        """After a cycle: count the counted plays it stored (once per cycle)."""
        data = self.entry.runtime_data.coordinator.data
        if data.cycle == self.seen_cycle:
            return
        self.seen_cycle = data.cycle
        # Blacklisted plays too: they give their hour a row of 0, as a rebuild does.
        plays = sorted((d.play for d in data.new_plays), key=lambda play: play.played_at)
        if plays:
            self.entry.async_create_background_task(
                self.hass, self._async_add(plays), f"{DOMAIN} statistics {self.entry.title}"
            )
        elif (
            self.stale
            and not self._retry_queued
            and data.status is not ScrobblerStatus.MONGODB_UNAVAILABLE
        ):
            self._retry_queued = True
            self.entry.async_create_background_task(
                self.hass, self._async_retry(), f"{DOMAIN} statistics rebuild {self.entry.title}"
            )

    async def _async_retry(self) -> None:
        """Complete the rows a failed or interrupted rebuild left stale."""
        async with self._lock:
            self._retry_queued = False
            if self.stale:
                await self._rebuild_locked(self.stale_since)

    async def _async_add(self, plays: list[Play]) -> None:
        """Fold new plays (oldest first) into the last hour and later ones."""
        async with self._lock:
            last = self.last_hour
            if self.stale or last is None or hour_of(plays[0].played_at) < last.start:
                await self._rebuild_locked(plays[0].played_at)
                return
            base = (self.sums[0] - last.plays, self.sums[1] - last.listening_ms)
            hours: list[HourTotals] = []
            for play in plays:
                if play.played_at in last.instants:
                    continue  # already counted by the rebuild that wrote this hour
                hour = hour_of(play.played_at)
                if hour != last.start:
                    hours.append(last)
                    last = HourTotals(hour, 0, 0)
                counted = not play.blacklisted
                last = HourTotals(
                    hour,
                    last.plays + counted,
                    last.listening_ms + (play.duration_ms if counted else 0),
                    last.instants | {play.played_at},
                )
            if last is self.last_hour:
                return

            async def changed() -> AsyncIterator[HourTotals]:
                for hour_totals in (*hours, last):
                    yield hour_totals

            await self._write(changed(), base)

    async def async_start(self) -> None:
        """Continue from the recorder's last hour, or backfill the whole history.

        A marker left by an earlier run (a rebuild cut short) makes it start there.
        """
        async with self._lock:
            async with self._marker_lock:
                await self._load_marker_locked()
            if self._clear_requested or self.entry.runtime_data.coordinator.database_changed:
                # Another database, or a first setup: its plays replace the old rows. The
                # recorder runs its tasks in order, so the clearing precedes the new rows.
                if self._lower(None):
                    await self._save_marker()
                get_instance(self.hass).async_clear_statistics([self.plays_id, self.minutes_id])
                self._clear_requested = False
                self.last_hour, self.sums = None, (0, 0)
                await self._rebuild_locked(None)
                return
            last = await self._recorded_last_hour()
            # The setup's own cycle ran before this tracker followed the coordinator: a play
            # it stored before the last row (shown late, or written before a restart whose
            # reply was lost) is counted by starting there.
            setup_plays = self.entry.runtime_data.coordinator.data.new_plays
            oldest = min((details.play.played_at for details in setup_plays), default=None)
            if last is not None:
                hour, plays, minutes_ms, sums = last
                self.last_hour = HourTotals(hour, plays, minutes_ms)
                self.sums = sums
                await self._rebuild_locked(hour if oldest is None else min(hour, oldest))
            else:
                await self._rebuild_locked(None)

    async def async_rebuild(self, since: datetime | None) -> None:
        """Rewrite the rows from the hour of ``since`` (None: all) to the newest play."""
        async with self._lock:
            await self._rebuild_locked(since)

    async def async_mark_stale(self, since: datetime | None) -> None:
        """Rows from the hour of ``since`` on (None: all) need a rebuild; saved at once."""
        self._marks += 1
        if self._lower(hour_of(since) if since is not None else None):
            await self._save_marker()

    def _lower(self, start: datetime | None) -> bool:
        """Extend the stale range down to ``start``; whether it changed."""
        if self.stale and (
            self.stale_since is None or (start is not None and start >= self.stale_since)
        ):
            return False
        self.stale_since = start if not self.stale else _older(start, self.stale_since)
        self.stale = True
        return True

    async def _save_marker(self) -> None:
        """Write the current marker (or remove the file when nothing is stale)."""
        async with self._marker_lock:
            await self._load_marker_locked()  # never overwrite an older run's marker
            if self.stale:
                since = self.stale_since
                await self._marker.async_save(
                    {"stale_since": since.isoformat() if since is not None else None}
                )
            else:
                await self._marker.async_remove()

    async def _load_marker_locked(self) -> None:
        if self._marker_loaded:
            return
        stored = await self._marker.async_load()
        self._marker_loaded = True
        if not isinstance(stored, dict):
            return
        self._clear_requested = stored.get("clear") is True
        since = stored.get("stale_since")
        try:
            self._lower(datetime.fromisoformat(since) if isinstance(since, str) else None)
        except ValueError:
            self._lower(None)  # unreadable: rebuild everything rather than guess

    async def _rebuild_locked(self, since: datetime | None) -> None:
        """Rewrite the rows from the hour of ``since`` (None: all), or from the marker's."""
        start = hour_of(since) if since is not None else None
        account = self.entry.runtime_data.coordinator.account
        assert account is not None  # a set-up entry has its account  # noqa: S101
        if self.stale:
            start = _older(start, self.stale_since)
        last = self.last_hour
        if start is None or last is None or start < last.start:
            # Written rows get rewritten: a cut anywhere must leave the marker behind.
            await self.async_mark_stale(start)
        marks = self._marks
        try:
            await self._rewrite(account.owner, start)
        except PyMongoError as err:
            # Retried after the next cycle that reaches MongoDB, or at the next start.
            log = _LOGGER.debug if self._failing else _LOGGER.warning
            log(
                "%s: long-term statistics not updated, MongoDB failed: %s",
                self.entry.title,
                describe_error(err),
            )
            self._failing = True
            if self._lower(start):
                await self._save_marker()
            return
        except asyncio.CancelledError:
            # The rows written so far are a consistent prefix (a restart continues from
            # the recorder's last row); this tracker must not append after the cut.
            self._lower(start)
            raise
        if self._failing:
            _LOGGER.info("%s: long-term statistics up to date again", self.entry.title)
            self._failing = False
        # Started at or before the marker (see above); a mark since then may be unread.
        if self.stale and marks == self._marks:
            self.stale, self.stale_since = False, None
            await self._save_marker()

    async def _rewrite(self, owner: ObjectId, start: datetime | None) -> None:
        infos = self.entry.runtime_data.coordinator.store.infos
        last = self.last_hour
        if start is None:
            base = (0, 0)
        elif last is not None and start >= last.start:
            # Rewrite the last hour too: plays can land in it after it was written.
            start = last.start
            base = (self.sums[0] - last.plays, self.sums[1] - last.listening_ms)
        else:
            base = await totals_before(infos, owner, start)
        await self._write(hourly_totals(infos, owner, start), base)

    async def _write(self, hours: AsyncIterator[HourTotals], base: tuple[int, int]) -> None:
        """Turn hour totals into rows with running sums and hand them to the recorder."""
        plays_sum, ms_sum = base
        plays_rows: list[StatisticData] = []
        minutes_rows: list[StatisticData] = []
        # Where the rows handed to the recorder end; a cut mid-cursor loses the rest.
        newest: tuple[HourTotals, tuple[int, int]] | None = None
        async for hour in hours:
            plays_sum += hour.plays
            ms_sum += hour.listening_ms
            plays_rows.append(StatisticData(start=hour.start, state=hour.plays, sum=plays_sum))
            minutes_rows.append(
                StatisticData(
                    start=hour.start,
                    state=hour.listening_ms / MS_PER_MINUTE,
                    sum=ms_sum / MS_PER_MINUTE,
                )
            )
            newest = hour, (plays_sum, ms_sum)
            if len(plays_rows) >= CHUNK_HOURS:
                self._import(plays_rows, minutes_rows)
                self.last_hour, self.sums = newest
                plays_rows, minutes_rows = [], []
        if plays_rows and newest is not None:
            self._import(plays_rows, minutes_rows)
            self.last_hour, self.sums = newest

    def _import(self, plays_rows: list[StatisticData], minutes_rows: list[StatisticData]) -> None:
        name = self.entry.title
        async_add_external_statistics(
            self.hass,
            StatisticMetaData(
                mean_type=StatisticMeanType.NONE,
                has_sum=True,
                name=f"{name} plays",
                source=DOMAIN,
                statistic_id=self.plays_id,
                unit_class=None,
                unit_of_measurement="plays",
            ),
            plays_rows,
        )
        async_add_external_statistics(
            self.hass,
            StatisticMetaData(
                mean_type=StatisticMeanType.NONE,
                has_sum=True,
                name=f"{name} listening time",
                source=DOMAIN,
                statistic_id=self.minutes_id,
                unit_class=DurationConverter.UNIT_CLASS,
                unit_of_measurement=UnitOfTime.MINUTES,
            ),
            minutes_rows,
        )

    async def _recorded_last_hour(
        self,
    ) -> tuple[datetime, int, int, tuple[int, int]] | None:
        """(hour, plays, ms, running sums) of the newest row, if both statistics agree on it."""
        rows: list[tuple[float, float, float]] = []
        for statistic_id in (self.plays_id, self.minutes_id):
            found = await get_instance(self.hass).async_add_executor_job(
                partial(
                    get_last_statistics,
                    self.hass,
                    1,
                    statistic_id,
                    convert_units=False,
                    types={"state", "sum"},
                )
            )
            row = found.get(statistic_id)
            if not row:
                return None
            rows.append((row[0]["start"], row[0].get("state") or 0.0, row[0].get("sum") or 0.0))
        (start, plays, plays_sum), (minutes_start, minutes, minutes_sum) = rows
        if start != minutes_start:
            return None
        return (
            datetime.fromtimestamp(start, UTC),
            round(plays),
            round(minutes * MS_PER_MINUTE),
            (round(plays_sum), round(minutes_sum * MS_PER_MINUTE)),
        )
