"""Sensors and the Scrobble event entity, read through Home Assistant's state machine."""

from collections.abc import Awaitable, Callable

import pytest
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from custom_components.spotify_scrobbler.engine import spotify as spotify_module

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently, plays_of, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def entity_id(hass: HomeAssistant, platform: str, key: str, account: str) -> str:
    """The entity id registered for an account's entity."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{account}_{key}")
    assert found is not None
    return found


async def test_sensors_show_totals_and_last_play(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """After a cycle the sensors show the stored totals and the newest play."""
    plays = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 30.0), (2, 20.0)])
    entry = await setup_entry()
    account = fake_spotify.user_id

    today = [p for p in plays if p.played_at >= dt_util.start_of_local_day()]
    total = hass.states.get(entity_id(hass, "sensor", "total_plays", account))
    assert total is not None
    assert total.state == "3"
    assert total.attributes["state_class"] == "total_increasing"
    assert hass.states.get(entity_id(hass, "sensor", "plays_today", account)).state == str(
        len(today)
    )
    minutes = sum(catalog.tracks[p.track_id or ""].duration_ms for p in today) / 60000
    listening = hass.states.get(entity_id(hass, "sensor", "listening_time_today", account))
    assert listening is not None
    assert float(listening.state) == round(minutes, 2)
    assert listening.attributes["unit_of_measurement"] == "min"
    assert listening.attributes["device_class"] == "duration"

    newest = catalog.tracks[plays[-1].track_id or ""]
    last = hass.states.get(entity_id(hass, "sensor", "last_scrobbled", account))
    assert last is not None
    assert last.state == newest.name
    assert last.attributes["track_id"] == newest.id
    assert last.attributes["album"] == catalog.albums[newest.album_id].name
    assert last.attributes["artists"] == [catalog.artists[a].name for a in newest.artist_ids]
    assert last.attributes["played_at"] == plays[-1].played_at.isoformat()
    assert last.attributes["entity_picture"].startswith("https://")
    assert last.attributes["friendly_name"] == "Scrobbler Test Last scrobbled track"

    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert device.identifiers == {(DOMAIN, account)}
    assert device.entry_type is dr.DeviceEntryType.SERVICE


async def test_totals_after_restart_come_from_mongodb(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A reload reads the totals and the last play back from MongoDB."""
    plays = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 30.0)])
    entry = await setup_entry()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    account = fake_spotify.user_id
    assert hass.states.get(entity_id(hass, "sensor", "total_plays", account)).state == "2"
    last = hass.states.get(entity_id(hass, "sensor", "last_scrobbled", account))
    assert last is not None
    assert last.state == catalog.tracks[plays[-1].track_id or ""].name
    assert last.attributes["artists"] == [
        catalog.artists[a].name for a in catalog.tracks[plays[-1].track_id or ""].artist_ids
    ]


async def test_scrobble_event_entity_fires_per_counted_play(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Each new, non-blacklisted play triggers the event entity once."""
    now = fake_spotify.now
    assert now is not None
    banned_play, *_ = plays_of(catalog, now, [(3, 9.0)])
    banned = catalog.tracks[banned_play.track_id or ""].artist_ids[0]
    await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})
    event_entity = entity_id(hass, "event", "scrobble", fake_spotify.user_id)
    assert hass.states.get(event_entity).state == STATE_UNKNOWN

    changes = async_capture_events(hass, "state_changed")
    new = plays_of(catalog, now, [(0, 10.0), (3, 9.0), (1, 5.0)])
    assert catalog.tracks[new[0].track_id or ""].artist_ids[0] != banned
    assert catalog.tracks[new[2].track_id or ""].artist_ids[0] != banned
    fake_spotify.add_plays(new)
    await tick(hass)

    fired = [
        e.data["new_state"].attributes["track_id"]
        for e in changes
        if e.data["entity_id"] == event_entity
        and e.data["new_state"].attributes.get("event_type") == "scrobbled"
    ]
    assert fired == [new[0].track_id, new[2].track_id]

    # An idle cycle does not fire again.
    changes.clear()
    await tick(hass)
    assert [e for e in changes if e.data["entity_id"] == event_entity] == []


async def test_spotify_failures_show_in_status_and_are_logged_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing Spotify cycles leave the totals available (they stay true) and set the status.

    The problem is logged once when it starts and once when it ends.
    """
    play_recently(fake_spotify, catalog, [(0, 10.0)])
    await setup_entry()
    total = entity_id(hass, "sensor", "total_plays", fake_spotify.user_id)
    status = entity_id(hass, "sensor", "status", fake_spotify.user_id)
    assert hass.states.get(total).state == "1"
    assert hass.states.get(status).state == "ok"

    fake_spotify.inject(
        "/v1/me/player/recently-played", status=503, times=2 * spotify_module.MAX_ATTEMPTS
    )
    await tick(hass)
    await tick(hass)
    assert hass.states.get(total).state == "1"
    assert hass.states.get(status).state == "spotify_unavailable"
    failures = [r for r in caplog.records if "Spotify answered HTTP 503" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelname == "WARNING"

    await tick(hass)
    assert hass.states.get(status).state == "ok"
    assert len([r for r in caplog.records if "scrobbling normally again" in r.getMessage()]) == 1
