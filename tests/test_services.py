"""Actions sync_now and recent_plays, and diagnostics."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from custom_components.spotify_scrobbler.engine import spotify as spotify_module

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify, Play
from .test_scrobbling import play_recently, plays_of

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


async def test_sync_now_runs_a_cycle(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """sync_now stores what Spotify has now, for one account or all."""
    entry = await setup_entry()
    play_recently(fake_spotify, catalog, [(0, 3.0)])
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert await mongo_db["infos"].count_documents({}) == 1

    play_recently(fake_spotify, catalog, [(1, 1.0)])
    await hass.services.async_call(DOMAIN, "sync_now", {}, blocking=True)
    assert await mongo_db["infos"].count_documents({}) == 2


async def test_sync_now_failure_is_reported(
    hass: HomeAssistant, setup_entry: SetupEntry, fake_spotify: FakeSpotify
) -> None:
    """A failing cycle raises a translated error naming the account."""
    entry = await setup_entry()
    fake_spotify.inject(
        "/v1/me/player/recently-played", status=500, times=spotify_module.MAX_ATTEMPTS
    )
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "sync_failed"
    assert err.value.translation_placeholders["account"] == entry.title


async def test_unknown_or_unloaded_entry_is_refused(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    """Actions validate the account they are given."""
    entry = await setup_entry()
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "recent_plays", {"config_entry_id": "nope"}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "unknown_entry"
    await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_recent_plays_returns_newest_first(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """recent_plays answers with the newest plays and their names."""
    now = fake_spotify.now
    assert now is not None
    plays = plays_of(catalog, now, [(0, 30.0), (1, 20.0), (2, 10.0)])
    banned = catalog.tracks[plays[2].track_id or ""].artist_ids[0]
    fake_spotify.add_plays(plays)
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})

    response = await hass.services.async_call(
        DOMAIN,
        "recent_plays",
        {"config_entry_id": entry.entry_id, "count": 2},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    got = response["plays"]
    assert isinstance(got, list)
    assert [p["track_id"] for p in got] == [plays[2].track_id, plays[1].track_id]
    newest = catalog.tracks[plays[2].track_id or ""]
    assert got[0]["track_name"] == newest.name
    assert got[0]["artist_names"] == [catalog.artists[a].name for a in newest.artist_ids]
    assert got[0]["album_name"] == catalog.albums[newest.album_id].name
    assert got[0]["blacklisted"] is True
    assert got[1]["blacklisted"] is False
    assert got[0]["played_at"] == plays[2].played_at.isoformat()


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    snapshot: SnapshotAssertion,
) -> None:
    """Diagnostics hold counters and the last cycle, and no token, URI or account id."""
    tracks = sorted(catalog.tracks.values(), key=lambda track: track.id)
    fake_spotify.add_plays(
        [
            Play(datetime(2026, 1, 2, 10, 0, 0, 123000, tzinfo=UTC), tracks[0]),
            Play(datetime(2026, 1, 2, 10, 4, 0, 456000, tzinfo=UTC), tracks[1]),
        ]
    )
    entry = await setup_entry()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    # The database name is random per test.
    assert diagnostics == snapshot(exclude=props("database"))
    text = str(diagnostics)
    for secret in (fake_spotify.access_token, fake_spotify.refresh_token, entry.data["uri"]):
        assert secret not in text
    assert fake_spotify.user_id not in text
