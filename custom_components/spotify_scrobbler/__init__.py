"""Spotify Scrobbler: scrobbles a Spotify account's listening history into MongoDB."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus

from aiohttp import ClientError, ClientResponseError
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, OAuth2TokenRequestReauthError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    OAuth2Session,
    async_get_config_entry_implementation,
)
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType
from homeassistant.util.hass_dict import HassKey
from pymongo import AsyncMongoClient

from .card import async_setup_card
from .const import (
    CONF_DATABASE,
    CONF_REQUEST_SPACING,
    CONF_URI,
    DOMAIN,
    SPOTIFY_API_BASE,
)
from .coordinator import ScrobblerCoordinator
from .engine.known_metadata import KnownMetadata
from .engine.mongo_client import build_mongo_client, database_identity
from .engine.pending import PendingPlays
from .engine.recent_plays import RecentPlays
from .engine.scrobbler import Scrobbler
from .engine.spotify import (
    DEFAULT_SPACING,
    BatchSupport,
    RequestGate,
    SpotifyAuthError,
    SpotifyClient,
    SpotifyError,
)
from .engine.store import Account, Document, ScrobbleStore
from .export_manager import HistoryExportManager
from .import_manager import HistoryImportManager
from .outbox import Outbox
from .repairs import ISSUE_OTHER_SCROBBLER, clear_issue
from .rollup_upkeep import RollupUpkeep
from .services import async_setup_services
from .statistics import async_setup_statistics

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS: list[Platform] = [Platform.EVENT, Platform.SENSOR]


@dataclass(slots=True)
class SharedSpotifyState:
    """One per integration: Spotify rate-limits per app, whatever the account."""

    gate: RequestGate
    batch_support: BatchSupport
    # Accounts never upsert tracks, albums or artists at the same time (see ScrobbleStore).
    metadata_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    spacings: dict[str, float] = field(default_factory=dict)
    """The request spacing each set-up entry is configured with, by entry id."""

    def set_spacing(self, entry_id: str, spacing: float | None) -> None:
        """Record (None: forget) an entry's spacing; the largest one applies to every account.

        One gate serves all accounts, so it needs one value; the largest is the one no account
        objects to, and it does not depend on the order the entries load in.
        """
        if spacing is None:
            self.spacings.pop(entry_id, None)
        else:
            self.spacings[entry_id] = spacing
        self.gate.spacing = max(self.spacings.values(), default=DEFAULT_SPACING)


SHARED: HassKey[SharedSpotifyState] = HassKey(DOMAIN)


@dataclass(slots=True)
class ScrobblerRuntimeData:
    """What a set-up entry owns; released on unload."""

    coordinator: ScrobblerCoordinator
    mongo_client: AsyncMongoClient[Document]
    importer: HistoryImportManager
    exporter: HistoryExportManager
    rollups: RollupUpkeep


type SpotifyScrobblerConfigEntry = ConfigEntry[ScrobblerRuntimeData]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Create the request gate all accounts share; actions and the statistics card."""
    hass.data[SHARED] = SharedSpotifyState(RequestGate(DEFAULT_SPACING), BatchSupport())
    async_setup_services(hass)
    await async_setup_card(hass)
    return True


@dataclass(slots=True)
class EntryTokens:
    """The entry's Spotify access token, kept valid by HA's OAuth2 session."""

    hass: HomeAssistant
    session: OAuth2Session

    async def access_token(self) -> str:
        """The current access token, refreshed first when HA's copy has expired."""
        try:
            await self.session.async_ensure_token_valid()
        except OAuth2TokenRequestReauthError as err:
            raise SpotifyAuthError("Spotify refused to refresh the token") from err
        except ClientResponseError as err:
            # invalid_grant and friends; a 429 only asks to slow down.
            if 400 <= err.status < 500 and err.status != HTTPStatus.TOO_MANY_REQUESTS:
                raise SpotifyAuthError("Spotify refused to refresh the token") from err
            raise SpotifyError(f"token refresh failed: HTTP {err.status}") from err
        except (ClientError, TimeoutError, HomeAssistantError) as err:
            raise SpotifyError(f"token refresh failed: {type(err).__name__}") from err
        return str(self.session.token["access_token"])

    async def refreshed_token(self, rejected: str) -> str:
        """A new access token after Spotify answered 401 for ``rejected``."""
        # The token may be revoked or rotated while HA still holds it valid: mark it expired
        # so that HA's own refresh path (its lock and checks) renews it, on every HA version.
        # Skipped when another request has replaced that token meanwhile.
        token = self.session.token
        if token.get("access_token") == rejected:
            entry = self.session.config_entry
            self.hass.config_entries.async_update_entry(
                entry, data={**entry.data, "token": {**token, "expires_at": 0}}
            )
        return await self.access_token()


async def async_setup_entry(hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry) -> bool:
    """Connect the account's Spotify session and MongoDB, then start scrobbling."""
    implementation = await async_get_config_entry_implementation(hass, entry)
    oauth_session = OAuth2Session(hass, entry, implementation)
    shared = hass.data[SHARED]
    shared.set_spacing(
        entry.entry_id, float(entry.options.get(CONF_REQUEST_SPACING, DEFAULT_SPACING))
    )
    # Also runs when setup fails; an options change reloads the entry, so it is seen too.
    entry.async_on_unload(partial(shared.set_spacing, entry.entry_id, None))
    tokens = EntryTokens(hass, oauth_session)
    client = SpotifyClient(
        async_get_clientsession(hass),
        tokens.access_token,
        shared.gate,
        base_url=SPOTIFY_API_BASE,
        batch_support=shared.batch_support,
        token_refresher=tokens.refreshed_token,
    )
    mongo_client = await hass.async_add_executor_job(
        partial(build_mongo_client, entry.data[CONF_URI], appname=DOMAIN)
    )
    store = ScrobbleStore(
        mongo_client[entry.data[CONF_DATABASE]], shared.metadata_lock, writer=entry.entry_id
    )
    known = KnownMetadata.empty()

    def scrobbler_for(account: Account, pending: PendingPlays, recent: RecentPlays) -> Scrobbler:
        scrobbler = Scrobbler(client, store, account, known, pending=pending, recent=recent)
        # Setup runs the first cycle: it must not wait for dozens of artist lookups.
        scrobbler.defer_artist_lookups = True
        return scrobbler

    coordinator = ScrobblerCoordinator(
        hass,
        entry,
        scrobbler_for,
        store,
        Outbox(
            hass,
            entry.entry_id,
            database_identity(entry.data[CONF_URI], entry.data[CONF_DATABASE]),
        ),
    )
    try:
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await mongo_client.close()
        raise
    scrobbler = coordinator.scrobbler
    assert scrobbler is not None  # set by the first refresh  # noqa: S101
    scrobbler.defer_artist_lookups = False
    coordinator.async_check_totals()
    entry.async_create_background_task(
        hass, scrobbler.enrich_deferred_artists(), f"{DOMAIN} artist lookups of {entry.title}"
    )
    importer = HistoryImportManager(hass, entry, coordinator, client, shared.gate)
    exporter = HistoryExportManager(hass, entry, coordinator)
    rollups = RollupUpkeep(hass, entry, coordinator.store.rollups, scrobbler.account.owner)
    rollups.schedule()  # returns at once when they are true
    entry.runtime_data = ScrobblerRuntimeData(
        coordinator, mongo_client, importer, exporter, rollups
    )
    # A coordinator only polls while someone listens; scrobbling must go on even when
    # every entity is disabled, so the entry itself listens.
    entry.async_on_unload(coordinator.async_add_listener(lambda: None))
    entry.async_on_unload(async_setup_statistics(hass, entry))

    async def close_on_stop(_: Event) -> None:
        await importer.async_stop()
        await exporter.async_stop()
        await mongo_client.close()

    # Not listen_once: its remover logs an error when the entry is unloaded after the stop.
    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, close_on_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await importer.async_setup()  # continues an unfinished history import
    await exporter.async_setup()
    return True


async def async_remove_entry(hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry) -> None:
    """Delete the account's files in HA's storage (MongoDB's data is the user's and stays)."""
    await Outbox(hass, entry.entry_id).async_remove()
    # The history import's and export's progress and the statistics' rebuild marker.
    for kind in ("import", "export", "statistics"):
        await Store[dict[str, object]](hass, 1, f"{DOMAIN}.{kind}.{entry.entry_id}").async_remove()
    # Kept across restarts for a loaded entry; nothing would clear it once the entry is gone.
    clear_issue(hass, ISSUE_OTHER_SCROBBLER, entry)


async def async_unload_entry(hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry) -> bool:
    """Stop scrobbling and close the MongoDB client."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.importer.async_stop()
        await entry.runtime_data.exporter.async_stop()
        await entry.runtime_data.coordinator.outbox.async_flush()
        await entry.runtime_data.mongo_client.close()
    return unloaded
