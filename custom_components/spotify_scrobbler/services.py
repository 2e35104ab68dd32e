"""Actions: spotify_scrobbler.sync_now, recent_plays, top, import_history, export_history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
from pymongo.errors import PyMongoError

from .compat import vol
from .const import DOMAIN
from .engine.models import PlayDetails, ScrobblerStatus
from .engine.payload import details_from_documents
from .engine.top import KINDS, MAX_LIMIT, ORDERS, top_entries
from .export_manager import ExportRequest

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_COUNT = "count"
MAX_RECENT = 50

SYNC_NOW_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
RECENT_PLAYS_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_COUNT, default=10): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_RECENT)
        ),
    }
)
ATTR_KINDS = "kinds"
ATTR_PERIOD = "period"
ATTR_START = "start"
ATTR_END = "end"
ATTR_LIMIT = "limit"
ATTR_ORDER = "order"
PERIODS = ("today", "week", "month", "year", "all_time")
TOP_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_KINDS, default=list(KINDS)): vol.All(
            cv.ensure_list, vol.Length(min=1), [vol.In(KINDS)]
        ),
        vol.Optional(ATTR_PERIOD): vol.In(PERIODS),
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_LIMIT, default=10): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_LIMIT)
        ),
        vol.Optional(ATTR_ORDER, default="plays"): vol.In(ORDERS),
    }
)
ATTR_PATH = "path"
IMPORT_HISTORY_SCHEMA = vol.Schema(
    {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string, vol.Required(ATTR_PATH): cv.string}
)
ATTR_INCLUDE_BLACKLISTED = "include_blacklisted"
ATTR_WHOLE_SECONDS = "whole_seconds"
EXPORT_HISTORY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_PATH): cv.string,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_INCLUDE_BLACKLISTED, default=True): cv.boolean,
        vol.Optional(ATTR_WHOLE_SECONDS, default=False): cv.boolean,
    }
)


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, when the integration loads)."""

    async def sync_now(call: ServiceCall) -> None:
        entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
        entries = (
            [_loaded_entry(hass, entry_id)]
            if entry_id
            else [
                entry
                for entry in hass.config_entries.async_entries(DOMAIN)
                if entry.state is ConfigEntryState.LOADED
            ]
        )
        for entry in entries:
            await entry.runtime_data.coordinator.async_refresh()
            _raise_unless_synced(entry)

    async def recent_plays(call: ServiceCall) -> ServiceResponse:
        entry = _loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])
        coordinator = entry.runtime_data.coordinator
        account = coordinator.account
        assert account is not None  # a loaded entry has its account  # noqa: S101
        try:
            docs = await coordinator.store.recent_plays(account.owner, call.data[ATTR_COUNT])
            tracks, albums, artists = await coordinator.store.metadata(
                [d["id"] for d in docs if isinstance(d.get("id"), str)],
                [d["albumId"] for d in docs if isinstance(d.get("albumId"), str)],
                [a for d in docs for a in d.get("artistIds") or () if isinstance(a, str)],
            )
        except PyMongoError as err:
            raise _mongodb_unavailable(entry) from err
        plays = [details_from_documents(doc, tracks, albums, artists) for doc in docs]
        return {"plays": [_as_response(details) for details in plays if details is not None]}

    async def top(call: ServiceCall) -> ServiceResponse:
        entry = _loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])
        start, end = _top_range(call.data)
        coordinator = entry.runtime_data.coordinator
        account = coordinator.account
        assert account is not None  # a loaded entry has its account  # noqa: S101
        response: dict[str, Any] = {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        }
        try:
            for kind in dict.fromkeys(call.data[ATTR_KINDS]):
                entries = await top_entries(
                    coordinator.store.db,
                    account.owner,
                    kind,
                    start=start,
                    end=end,
                    limit=call.data[ATTR_LIMIT],
                    order=call.data[ATTR_ORDER],
                    rollups=entry.runtime_data.rollups.rollups,
                    on_stale=entry.runtime_data.rollups.schedule,
                )
                response[kind] = [top_entry.as_response() for top_entry in entries]
        except PyMongoError as err:
            raise _mongodb_unavailable(entry) from err
        return response

    hass.services.async_register(DOMAIN, "sync_now", sync_now, schema=SYNC_NOW_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        "recent_plays",
        recent_plays,
        schema=RECENT_PLAYS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

    hass.services.async_register(
        DOMAIN, "top", top, schema=TOP_SCHEMA, supports_response=SupportsResponse.ONLY
    )

    async def import_history(call: ServiceCall) -> None:
        # Validates and starts the import; it runs in the background (progress sensor).
        entry = _loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])
        await entry.runtime_data.importer.async_start(call.data[ATTR_PATH])

    hass.services.async_register(
        DOMAIN, "import_history", import_history, schema=IMPORT_HISTORY_SCHEMA
    )

    async def export_history(call: ServiceCall) -> None:
        # Validates and starts the export; it runs in the background (progress sensor).
        entry = _loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])
        start, end = _top_range(call.data)  # no period: the start/end checks only
        request = ExportRequest(
            call.data[ATTR_PATH],
            start,
            end,
            call.data[ATTR_INCLUDE_BLACKLISTED],
            call.data[ATTR_WHOLE_SECONDS],
        )
        await entry.runtime_data.exporter.async_start(request)

    hass.services.async_register(
        DOMAIN, "export_history", export_history, schema=EXPORT_HISTORY_SCHEMA
    )


def _top_range(data: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC; periods start at local midnight, weeks on Monday."""
    if ATTR_PERIOD in data and (ATTR_START in data or ATTR_END in data):
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="period_and_range")
    if ATTR_START in data or ATTR_END in data:
        # A time without a zone is Home Assistant's local time.
        start = dt_util.as_utc(data[ATTR_START]) if ATTR_START in data else None
        end = dt_util.as_utc(data[ATTR_END]) if ATTR_END in data else None
        if start is not None and end is not None and start >= end:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_range",
                translation_placeholders={"start": start.isoformat(), "end": end.isoformat()},
            )
        return start, end
    period = data.get(ATTR_PERIOD, "all_time")
    if period == "all_time":
        return None, None
    today = dt_util.now().date()
    first_day = {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
        "year": today.replace(month=1, day=1),
    }[period]
    return dt_util.as_utc(dt_util.start_of_local_day(first_day)), None


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> SpotifyScrobblerConfigEntry:
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_entry",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"account": entry.title},
        )
    return entry


def _raise_unless_synced(entry: SpotifyScrobblerConfigEntry) -> None:
    """Say what kept the cycle just run from storing everything, if anything did."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    if data.status is ScrobblerStatus.MONGODB_UNAVAILABLE and coordinator.last_update_success:
        # Spotify was read: what it returned waits in the outbox, nothing is lost.
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="sync_waiting_for_mongodb",
            translation_placeholders={"account": entry.title, "waiting": str(len(data.pending))},
        )
    # Trouble shows in the status (the update itself only fails on auth errors).
    if not coordinator.last_update_success or coordinator.last_error is not None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="sync_failed",
            translation_placeholders={
                "account": entry.title,
                "error": coordinator.last_error or str(coordinator.last_exception),
            },
        )


def _mongodb_unavailable(entry: SpotifyScrobblerConfigEntry) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="mongodb_unavailable",
        translation_placeholders={"account": entry.title},
    )


def _as_response(details: PlayDetails) -> dict[str, Any]:
    play = details.play
    return {
        "track_id": play.track_id,
        "track_name": details.track_name,
        "artist_names": list(details.artist_names),
        "artist_ids": list(play.artist_ids),
        "album_id": play.album_id,
        "album_name": details.album_name,
        "played_at": play.played_at.isoformat(),
        "duration_ms": play.duration_ms,
        "blacklisted": play.blacklisted,
        "spotify_url": details.spotify_url,
        "image_url": details.image_url,
    }
