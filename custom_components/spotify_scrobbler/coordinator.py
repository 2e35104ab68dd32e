"""The 120 s DataUpdateCoordinator of one Spotify account around scrobbler.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from pymongo.errors import PyMongoError

from .account_repairs import AccountRepairs
from .blacklist_sync import async_sync_blacklist
from .const import CONF_BLACKLISTED_ARTISTS, DOMAIN, EVENT_SCROBBLED, SCAN_INTERVAL
from .engine.models import CycleResult, Play, PlayDetails, ScrobblerData, ScrobblerStatus
from .engine.mongo_client import describe_error
from .engine.payload import details_from_documents
from .engine.pending import PendingPlays
from .engine.recent_plays import RecentPlays
from .engine.scrobbler import Scrobbler
from .engine.spotify import SpotifyAuthError, SpotifyForbiddenError, SpotifyRateLimitedError
from .engine.store import Account, ScrobbleStore
from .outbox import Outbox, Snapshot
from .statistics_marker import async_request_statistics_reset

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry

_LOGGER = logging.getLogger(__name__)

VERIFY_ATTEMPTS: Final = 3


class ScrobblerCoordinator(DataUpdateCoordinator[ScrobblerData]):
    """Runs one scrobbling cycle per update and fires an event per stored play.

    Spotify and MongoDB trouble does not fail the update: the totals stay true (plays wait
    in the outbox), so entities stay available and the status sensor says what is wrong.
    Only a refused authorization fails it, which starts Home Assistant's reauth flow.
    """

    config_entry: SpotifyScrobblerConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpotifyScrobblerConfigEntry,
        scrobbler_factory: Callable[[Account, PendingPlays, RecentPlays], Scrobbler],
        store: ScrobbleStore,
        outbox: Outbox,
    ) -> None:
        """``scrobbler_factory`` builds the Scrobbler once the account is known."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=SCAN_INTERVAL,
        )
        self._scrobbler_factory = scrobbler_factory
        self.store = store
        self.outbox = outbox
        self.repairs = AccountRepairs(hass, entry)
        self.scrobbler: Scrobbler | None = None
        self.last_error: str | None = None  # the latest problem's text (diagnostics, actions)
        self._connected = False  # indexes ensured and account read from MongoDB
        # Set when setup just failed to connect: the first refresh does not wait for
        # MongoDB's timeout a second time before polling Spotify.
        self._setup_error: PyMongoError | None = None
        # The day's totals were reset at midnight, or plays changed behind the cycle's back
        # (an import), and MongoDB has not been asked for them since.
        self._totals_stale = False
        # Reconfigured to another database since the last run, or set up for the first time:
        # the statistics' rows are cleared and rebuilt from this database.
        self.database_changed = False
        # Setup trusted the outbox file's totals: a background count checks them.
        self._verify_totals = False
        self._cycle_lock = asyncio.Lock()  # a totals check applies between cycles only

    @property
    def mongodb_down_since(self) -> datetime | None:
        """When MongoDB stopped answering, if it does not answer now."""
        return self.data.mongodb_down_since if self.data is not None else None

    @property
    def account(self) -> Account | None:
        """The account's ``users`` document as last read or written."""
        return self.scrobbler.account if self.scrobbler else None

    async def _async_setup(self) -> None:
        """Read the outbox, then connect to MongoDB (or start from the outbox's snapshot)."""
        pending, recent = PendingPlays(), RecentPlays()
        snapshot = await self.outbox.async_load(pending, recent, set(self._blacklist()))
        # Statistics of the old database must not stand for this one's; nor, for an entry
        # without a snapshot yet, those a removed entry of the same account left behind.
        self.database_changed = snapshot.other_database or snapshot.account is None
        if snapshot.other_database or (
            snapshot.account is None and "recorder" in self.hass.config.components
        ):
            # Noted before the outbox forgets the old database (or is first written): the
            # statistics clear their rows at their next start even if this setup fails or
            # Home Assistant stops before they run.
            await async_request_statistics_reset(self.hass, self.config_entry.entry_id)
        try:
            account, data = await self._connect(ScrobblerData(), snapshot)
        except PyMongoError as err:
            known = snapshot.account
            if known is None or known.spotify_id != self.config_entry.unique_id:
                raise _failed("mongodb_unreachable", error=describe_error(err)) from err
            # Spotify's window is short: poll it now and let plays wait for MongoDB.
            self.last_error = describe_error(err)
            _LOGGER.warning(
                "%s: MongoDB unreachable at startup (%s); scrobbling into the outbox",
                self.config_entry.title,
                self.last_error,
            )
            self._setup_error = err
            account = known
            known_data = snapshot.data or ScrobblerData()
            data = replace(
                known_data,
                status=ScrobblerStatus.MONGODB_UNAVAILABLE,
                pending=pending.details(),
                mongodb_down_since=self.repairs.mongodb_failed(known_data.mongodb_down_since),
            )
        else:
            self._connected = True
            if not self._verify_totals:
                # MongoDB moved on since the file was written (or was restored from an
                # older copy): it, not the file, says which plays are stored.
                recent.forget()
            data = replace(data, pending=pending.details())
        self.scrobbler = self._scrobbler_factory(account, pending, recent)
        self.scrobbler.fetch_from_cursor = snapshot.other_database
        if self._connected and len(pending):
            # Waiting plays an unacknowledged write or an import stored are counted once.
            try:
                data = await self._sort_waiting(data)
            except PyMongoError:
                self._totals_stale = True
        self.data = self._rolled(data)
        self.config_entry.async_on_unload(
            async_track_time_change(self.hass, self._midnight, hour=0, minute=0, second=0)
        )
        if snapshot.account is None:
            # The first connection ever: write the snapshot now, so that a crash before the
            # delayed save cannot leave a later start without MongoDB nothing to start from.
            await self.outbox.async_save_now(account, data)
        else:
            self.outbox.schedule_save(account, data)

    async def _connect(
        self, data: ScrobblerData, snapshot: Snapshot | None = None
    ) -> tuple[Account, ScrobblerData]:
        """Create indexes, find the account, apply a changed blacklist and read its totals.

        Where MongoDB is just as the outbox file left it (same account and cursor, same
        blacklist), the file's totals and cache of stored plays stand: nothing is counted
        or looked up in the history before the first cycle, and the totals are checked
        against MongoDB in the background (another program may have written meanwhile).
        """
        self.repairs.index_report(await self.store.ensure_indexes())
        blacklist = self._blacklist()
        account = await self.store.load_account(
            self.config_entry.unique_id or "", self.config_entry.title, blacklist
        )
        # Before counting: the totals count what the blacklist leaves.
        changed = await async_sync_blacklist(
            self.hass, self.config_entry, self.store, account.owner, blacklist
        )
        known = snapshot.unchanged_data(account) if snapshot is not None and not changed else None
        self._verify_totals = known is not None
        if known is not None:
            return account, known
        return account, await self._read_totals(data, account)

    async def async_forget_window(self) -> None:
        """Plays are about to be written behind the live loop's back (a history import).

        Neither the cache nor the outbox file may claim to know the window's stored plays
        any more: the next cycle (or the next start) asks MongoDB.
        """
        if self.scrobbler is None or self.data is None:
            return
        self.scrobbler.recent.forget()
        await self.outbox.async_save_now(self.scrobbler.account, self.data)

    @callback
    def async_check_totals(self) -> None:
        """After the first cycle: count in the background what setup took from the file."""
        if self._verify_totals:
            self.config_entry.async_create_background_task(
                self.hass, self._async_verify_totals(), f"{self.name} totals check"
            )

    async def _async_verify_totals(self) -> None:
        """Count in MongoDB what the outbox file's totals claim, and correct them.

        A count takes a while on a large history: it applies only if no cycle changed the
        totals meanwhile (else it counts again, then leaves it to the next cycle).
        """
        assert self.scrobbler is not None  # set by _async_setup  # noqa: S101
        for _ in range(VERIFY_ATTEMPTS):
            before = self.data
            try:
                counted = await self._read_totals(before, self.scrobbler.account)
            except PyMongoError:
                self._totals_stale = True
                return
            async with self._cycle_lock:
                if self.data.totals() == before.totals():
                    self.data = replace(self.data.with_totals_of(counted), new_plays=())
                    self.outbox.schedule_save(self.scrobbler.account, self.data)
                    self.async_update_listeners()
                    return
        self._totals_stale = True

    async def _async_update_data(self) -> ScrobblerData:
        """Run one cycle and fold what it stored into the totals."""
        async with self._cycle_lock:
            return await self._cycle()

    async def _cycle(self) -> ScrobblerData:
        scrobbler = self.scrobbler
        assert scrobbler is not None  # set by _async_setup  # noqa: S101
        data = self._rolled(self.data)
        counted_before = self.data.totals()
        # Right after a failed setup connect, do not wait for MongoDB's timeout again.
        storage_error, self._setup_error = self._setup_error, None
        if storage_error is None:
            try:
                data = await self._refresh_connection(scrobbler, data)
            except PyMongoError as err:
                storage_error = err

        try:
            # Without indexes a write could duplicate plays: only hold them until connected.
            result = await scrobbler.run_cycle(self._blacklist(), hold_only=not self._connected)
        finally:
            saved_now = scrobbler.pending.changed
            if saved_now:
                await self.outbox.async_save_now(scrobbler.account, data)

        self._cycle_repairs(result)
        data = replace(
            data,
            new_plays=result.new_plays,
            last_cycle=result.summary,
            cycle=data.cycle + 1,
            pending=scrobbler.pending.details(),
        )
        for details in result.new_plays:
            data = _count(data, details)
            self._fire_event(details)
        if result.summary.recovered:
            # Found stored after a lost reply: a count read since then may include them
            # already, so MongoDB counts again (rare: only after such a failure).
            try:
                data = await self._read_totals(data, scrobbler.account)
            except PyMongoError as err:
                storage_error = err
                self._totals_stale = True
        # Midnight passed while the cycle ran: the day starts again from 0 (re-read next).
        data = self._rolled(data)

        storage_error = storage_error or _as_mongo_error(result.storage_error)
        data = self._with_status(data, storage_error, result.fetch_error)
        if saved_now and result.new_plays:
            # That file has the new cursor and cache: it must not keep the older totals.
            await self.outbox.async_save_now(scrobbler.account, data)
        # Also when only a count changed them: a restart without MongoDB starts from these.
        elif result.new_plays or storage_error is not None or data.totals() != counted_before:
            self.outbox.schedule_save(scrobbler.account, data)
        if isinstance(result.fetch_error, SpotifyAuthError):
            self.data = data  # keep what this cycle flushed; polling stops until reauth
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="auth_failed",
                translation_placeholders={"error": str(result.fetch_error)},
            ) from result.fetch_error
        return data

    def _cycle_repairs(self, result: CycleResult) -> None:
        """The issues a cycle's outcome raises or clears: a gap, another scrobbler."""
        if result.gap is not None:
            self.repairs.gap(*result.gap)
        if self._connected and result.storage_error is None:
            self.repairs.other_scrobbler(result.summary.foreign)

    async def _refresh_connection(self, scrobbler: Scrobbler, data: ScrobblerData) -> ScrobblerData:
        """Connect if setup could not; re-read the totals when the day changed."""
        if not self._connected:
            account, data = await self._connect(data)
            # MongoDB's cursor and stored plays are the truth now; the waiting plays keep
            # their own cursor (the scrobbler fetches from the newest of both).
            scrobbler.account = account
            scrobbler.recent.forget()
            self._connected = True
            self._totals_stale = False
        elif self._totals_stale or data.day_start != dt_util.start_of_local_day():
            data = await self._read_totals(data, scrobbler.account)
            self._totals_stale = False
        return data

    def _rolled(self, data: ScrobblerData) -> ScrobblerData:
        """The day's totals start again from 0 at local midnight, with or without MongoDB.

        Nothing can have been stored for the new day before its first cycle, so 0 is
        exact until MongoDB is asked again (imports re-read the totals themselves).
        """
        today = dt_util.start_of_local_day()
        if data.day_start is None or data.day_start == today:
            return data
        self._totals_stale = True
        return replace(data, plays_today=0, listened_ms_today=0, day_start=today)

    @callback
    def _midnight(self, _now: datetime) -> None:
        """Reset the day's sensors at midnight itself, not at the next cycle."""
        if self.data is not None and (rolled := self._rolled(self.data)) is not self.data:
            # Not async_set_updated_data: that would restart polling stopped for reauth.
            self.data = replace(rolled, new_plays=())
            self.async_update_listeners()

    async def async_recount(self) -> None:
        """Plays were added or changed behind the cycle's back: count them in MongoDB now.

        The next cycle counts again too (a cycle under way started from the older totals).
        """
        self._totals_stale = True
        if self.scrobbler is None or self.data is None:
            return
        try:
            data = await self._read_totals(self.data, self.scrobbler.account)
        except PyMongoError:
            return
        self.data = replace(data, new_plays=())
        self.outbox.schedule_save(self.scrobbler.account, self.data)
        self.async_update_listeners()

    def _with_status(
        self,
        data: ScrobblerData,
        storage_error: Exception | None,
        fetch_error: Exception | None,
    ) -> ScrobblerData:
        """Set the status, keep the repairs in line with it and log changes once."""
        assert self.scrobbler is not None  # noqa: S101
        down_since = (
            self.repairs.mongodb_failed(data.mongodb_down_since)
            if storage_error is not None
            else None
        )
        self.repairs.cycle_outcome(storage_error, fetch_error, self.scrobbler.pending)
        status = _status_of(storage_error, fetch_error)
        error = storage_error or fetch_error
        self.last_error = describe_error(error) if error is not None else None
        if status is not data.status:
            if error is None:
                _LOGGER.info("%s: scrobbling normally again", self.config_entry.title)
            else:
                _LOGGER.warning(
                    "%s: %s (%s)",
                    self.config_entry.title,
                    status.value.replace("_", " "),
                    self.last_error,
                )
        if isinstance(fetch_error, SpotifyRateLimitedError):
            return replace(
                data,
                status=status,
                retry_at=dt_util.utcnow() + timedelta(seconds=fetch_error.retry_after),
                rate_limit_reason=fetch_error.reason,
                mongodb_down_since=down_since,
            )
        return replace(
            data,
            status=status,
            retry_at=None,
            rate_limit_reason=None,
            mongodb_down_since=down_since,
        )

    async def _read_totals(self, data: ScrobblerData, account: Account) -> ScrobblerData:
        """Totals from MongoDB: at startup and once per day (indexed counts)."""
        owner = account.owner
        day_start = dt_util.start_of_local_day()
        # Wall-clock arithmetic in the local zone: 23 or 25 hours on the days clocks change.
        plays_today, listened_ms = await self.store.day_totals(
            owner, day_start, day_start + timedelta(days=1)
        )
        # Read again each time: a waiting play may have been stored meanwhile, and one
        # newer than the stored ones would be counted as waiting on top.
        last_play = data.last_play
        doc = await self.store.latest_play(owner)
        # A foreign or broken document is skipped (details_from_documents logs it).
        if doc is not None and details_from_documents(doc, {}, {}, {}) is not None:
            tracks, albums, artists = await self.store.metadata(
                [doc["id"]],
                [doc.get("albumId") or ""],
                [a for a in doc.get("artistIds") or () if isinstance(a, str)],
            )
            last_play = details_from_documents(doc, tracks, albums, artists)
        data = replace(
            data,
            total_plays=await self.store.totals(owner),
            plays_today=plays_today,
            listened_ms_today=listened_ms,
            day_start=day_start,
            last_play=last_play,
        )
        return await self._sort_waiting(data)

    async def _sort_waiting(self, data: ScrobblerData) -> ScrobblerData:
        """Tell waiting plays MongoDB's counts include from those it lacks (one query)."""
        if self.scrobbler is None or not self.scrobbler.pending:
            return replace(data, waiting_new=frozenset(), waiting_stored=frozenset())
        new, held = await self.scrobbler.sort_waiting()
        return replace(data, waiting_new=new, waiting_stored=held)

    def _blacklist(self) -> list[str]:
        return list(self.config_entry.options.get(CONF_BLACKLISTED_ARTISTS, []))

    def _fire_event(self, details: PlayDetails) -> None:
        play = details.play
        self.hass.bus.async_fire(
            EVENT_SCROBBLED,
            {
                "entry_id": self.config_entry.entry_id,
                "account": self.config_entry.unique_id,
                "track_id": play.track_id,
                "track_name": details.track_name,
                "artist_names": list(details.artist_names),
                "album_name": details.album_name,
                "played_at": play.played_at.isoformat(),
                "duration_ms": play.duration_ms,
                "blacklisted": play.blacklisted,
            },
        )


def _status_of(storage_error: Exception | None, fetch_error: Exception | None) -> ScrobblerStatus:
    """MongoDB trouble first: it is what risks plays."""
    if storage_error is not None:
        return ScrobblerStatus.MONGODB_UNAVAILABLE
    if isinstance(fetch_error, SpotifyForbiddenError):
        return ScrobblerStatus.PREMIUM_REQUIRED
    if isinstance(fetch_error, SpotifyRateLimitedError):
        return ScrobblerStatus.RATE_LIMITED
    if fetch_error is not None:
        return ScrobblerStatus.SPOTIFY_UNAVAILABLE
    return ScrobblerStatus.OK


def _as_mongo_error(err: Exception | None) -> PyMongoError | None:
    return err if isinstance(err, PyMongoError) else None


def _failed(key: str, **placeholders: str) -> UpdateFailed:
    """A translated UpdateFailed (its text shows in the entry's state and the log)."""
    return UpdateFailed(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _count(data: ScrobblerData, details: PlayDetails) -> ScrobblerData:
    """Fold one new play into the totals (blacklisted plays are stored, not counted)."""
    play: Play = details.play
    if play.blacklisted:
        return data
    today = data.day_start is not None and play.played_at >= data.day_start
    newest = data.last_play is None or play.played_at >= data.last_play.play.played_at
    return replace(
        data,
        total_plays=data.total_plays + 1,
        plays_today=data.plays_today + (1 if today else 0),
        listened_ms_today=data.listened_ms_today + (play.duration_ms if today else 0),
        last_play=details if newest else data.last_play,
    )
