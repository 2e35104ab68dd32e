"""Actions: spotify_scrobbler.sync_now and spotify_scrobbler.recent_plays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from pymongo.errors import PyMongoError

from .compat import vol
from .const import DOMAIN
from .models import PlayDetails
from .scrobbler import details_from_documents

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
            coordinator = entry.runtime_data.coordinator
            await coordinator.async_refresh()
            if not coordinator.last_update_success:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="sync_failed",
                    translation_placeholders={
                        "account": entry.title,
                        "error": str(coordinator.last_exception),
                    },
                )

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
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="mongodb_unavailable",
                translation_placeholders={"account": entry.title},
            ) from err
        plays = [details_from_documents(doc, tracks, albums, artists) for doc in docs]
        return {"plays": [_as_response(details) for details in plays if details is not None]}

    hass.services.async_register(DOMAIN, "sync_now", sync_now, schema=SYNC_NOW_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        "recent_plays",
        recent_plays,
        schema=RECENT_PLAYS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


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
