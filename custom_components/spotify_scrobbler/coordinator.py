"""The 120 s DataUpdateCoordinator of one Spotify account around scrobbler.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from pymongo.errors import PyMongoError

from .const import CONF_BLACKLISTED_ARTISTS, DOMAIN, EVENT_SCROBBLED, SCAN_INTERVAL
from .models import CycleSummary, Play, PlayDetails
from .repairs import (
    ISSUE_GAP,
    ISSUE_MONGODB_UNREACHABLE,
    ISSUE_PREMIUM_REQUIRED,
    ISSUE_REAUTH_REQUIRED,
    clear_issue,
    raise_issue,
)
from .scrobbler import Scrobbler, details_from_documents
from .spotify import (
    SpotifyAuthError,
    SpotifyError,
    SpotifyForbiddenError,
    SpotifyRateLimitedError,
)
from .store import Account, ScrobbleStore

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry

_LOGGER = logging.getLogger(__name__)

MONGODB_REPAIR_AFTER = timedelta(minutes=15)


@dataclass(slots=True)
class ScrobblerData:
    """Everything the entities show, kept current without scanning the history."""

    last_play: PlayDetails | None = None
    total_plays: int = 0
    plays_today: int = 0
    listened_ms_today: int = 0
    day_start: datetime | None = None
    new_plays: tuple[PlayDetails, ...] = ()
    last_cycle: CycleSummary = field(default_factory=CycleSummary)
    cycle: int = 0  # successful cycles so far; lets listeners handle new_plays once


class ScrobblerCoordinator(DataUpdateCoordinator[ScrobblerData]):
    """Runs one scrobbling cycle per update and fires an event per new play."""

    config_entry: SpotifyScrobblerConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpotifyScrobblerConfigEntry,
        scrobbler_factory: Callable[[Account], Scrobbler],
        store: ScrobbleStore,
    ) -> None:
        """``scrobbler_factory(account)`` builds the Scrobbler once the account is loaded."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=SCAN_INTERVAL,
        )
        self._scrobbler_factory = scrobbler_factory
        self.store = store
        self.scrobbler: Scrobbler | None = None
        self.mongodb_down_since: datetime | None = None

    @property
    def account(self) -> Account | None:
        """The account's ``users`` document as last read or written."""
        return self.scrobbler.account if self.scrobbler else None

    async def _async_setup(self) -> None:
        """Create indexes, find the account and read the current totals (once)."""
        try:
            await self.store.ensure_indexes()
            account = await self.store.load_account(
                self.config_entry.unique_id or "",
                self.config_entry.title,
                self._blacklist(),
            )
            self.scrobbler = self._scrobbler_factory(account)
            self.data = await self._read_totals(ScrobblerData())
        except PyMongoError as err:
            raise _failed("mongodb_unreachable", error=str(err)) from err

    async def _async_update_data(self) -> ScrobblerData:
        """Run one cycle and fold its new plays into the totals."""
        try:
            data = await self._run_cycle()
        except PyMongoError as err:
            self._mongodb_failed()
            raise _failed("mongodb_unreachable", error=str(err)) from err
        self.mongodb_down_since = None
        for issue in (ISSUE_MONGODB_UNREACHABLE, ISSUE_PREMIUM_REQUIRED, ISSUE_REAUTH_REQUIRED):
            clear_issue(self.hass, issue, self.config_entry)
        return data

    async def _run_cycle(self) -> ScrobblerData:
        assert self.scrobbler is not None  # set by _async_setup  # noqa: S101
        data = self.data or ScrobblerData()
        try:
            if data.day_start != dt_util.start_of_local_day():
                data = await self._read_totals(data)
            result = await self.scrobbler.run_cycle(self._blacklist())
        except SpotifyAuthError as err:
            raise_issue(self.hass, ISSUE_REAUTH_REQUIRED, self.config_entry)
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="auth_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        except SpotifyForbiddenError as err:
            raise_issue(self.hass, ISSUE_PREMIUM_REQUIRED, self.config_entry)
            raise _failed("spotify_forbidden", error=str(err)) from err
        except SpotifyRateLimitedError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="spotify_rate_limited",
                translation_placeholders={"seconds": f"{err.retry_after:.0f}"},
                retry_after=err.retry_after,
            ) from err
        except SpotifyError as err:
            raise _failed("spotify_error", error=str(err)) from err

        if result.gap is not None:
            self._report_gap(*result.gap)
        data = replace(
            data, new_plays=result.new_plays, last_cycle=result.summary, cycle=data.cycle + 1
        )
        for details in result.new_plays:
            data = _count(data, details)
            self._fire_event(details)
        return data

    def _report_gap(self, start: datetime, end: datetime) -> None:
        """Spotify's 50-play window no longer reaches back to the last stored play."""
        _LOGGER.warning(
            "%s: plays between %s and %s may be missing (Spotify only keeps the last 50)",
            self.config_entry.title,
            start.isoformat(timespec="seconds"),
            end.isoformat(timespec="seconds"),
        )
        raise_issue(
            self.hass,
            ISSUE_GAP,
            self.config_entry,
            suffix=f"_{int(start.timestamp())}",
            severity=ir.IssueSeverity.WARNING,
            start=start.isoformat(timespec="minutes"),
            end=end.isoformat(timespec="minutes"),
        )

    def _mongodb_failed(self) -> None:
        """Raise a repair once MongoDB has been failing for a while (one blip is no issue)."""
        now = dt_util.utcnow()
        if self.mongodb_down_since is None:
            self.mongodb_down_since = now
        elif now - self.mongodb_down_since >= MONGODB_REPAIR_AFTER:
            raise_issue(
                self.hass,
                ISSUE_MONGODB_UNREACHABLE,
                self.config_entry,
                since=self.mongodb_down_since.isoformat(timespec="minutes"),
            )

    async def _read_totals(self, data: ScrobblerData) -> ScrobblerData:
        """Totals from MongoDB: at startup and once per day (indexed counts)."""
        assert self.scrobbler is not None  # noqa: S101
        owner = self.scrobbler.account.owner
        day_start = dt_util.start_of_local_day()
        plays_today, listened_ms = await self.store.day_totals(
            owner, day_start, day_start + timedelta(days=1)
        )
        last_play = data.last_play
        if last_play is None:
            doc = await self.store.latest_play(owner)
            # A foreign or broken document is skipped (details_from_documents logs it).
            if doc is not None and details_from_documents(doc, {}, {}, {}) is not None:
                tracks, albums, artists = await self.store.metadata(
                    [doc["id"]],
                    [doc.get("albumId") or ""],
                    [a for a in doc.get("artistIds") or () if isinstance(a, str)],
                )
                last_play = details_from_documents(doc, tracks, albums, artists)
        return replace(
            data,
            total_plays=await self.store.totals(owner),
            plays_today=plays_today,
            listened_ms_today=listened_ms,
            day_start=day_start,
            last_play=last_play,
        )

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
