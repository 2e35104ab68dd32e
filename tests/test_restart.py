"""A restart that finds MongoDB as it left it reads nothing of the history (issue 14).

The outbox file's totals and cache of stored plays stand when the account's cursor
(``lastTimestamp``) is where the file left it; a background count checks the totals.
MongoDB's commands are seen through a wire-protocol proxy in front of FerretDB.
"""

import copy
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import DOMAIN
from custom_components.spotify_scrobbler.engine.store import ScrobbleStore

from .conftest import MongoDb
from .mongo_proxy import MongoProxy
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import (
    capture_events,
    expected,
    play_recently,
    sensor_state,
    stored_plays,
    tick,
)

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def window_queries(proxy: MongoProxy) -> list[dict[str, Any]]:
    """The live loop's look-ups of stored plays by instant (``infos`` finds on played_at)."""
    return [
        command
        for command in proxy.commands
        if command.get("find") == "infos" and "played_at" in command.get("filter", {})
    ]


async def restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload and set up again with the same storage; background tasks left running."""
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED, entry.reason


async def test_a_restart_looks_up_no_stored_plays(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """Spotify's window is checked against the file's cache: new plays stored once, no query."""
    first = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 35.0), (2, 30.0)])
    entry = await setup_entry(uri=proxy.uri)
    await tick(hass)  # steady state: the cache knows the window's stored plays
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"
    later = play_recently(fake_spotify, catalog, [(3, 5.0)])
    events = capture_events(hass)

    proxy.record_commands = True
    await restart(hass, entry)

    assert window_queries(proxy) == []
    assert await stored_plays(mongo_db) == expected(first + later)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"
    assert [e.data["track_id"] for e in events] == [later[0].track_id]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"


async def test_a_cursor_moved_by_another_scrobbler_makes_the_restart_ask_mongodb(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """A play another program stored while Home Assistant was stopped is not stored twice."""
    first = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 35.0)])
    entry = await setup_entry(uri=proxy.uri)
    await tick(hass)  # steady state: the cache knows the window's stored plays
    await hass.config_entries.async_unload(entry.entry_id)
    later = play_recently(fake_spotify, catalog, [(2, 5.0)])
    user = await mongo_db["users"].find_one({})
    assert user is not None
    # Another scrobbler stored it first, a second off (so the unique index cannot tell),
    # and moved the cursor on.
    foreign_at = later[0].played_at - timedelta(seconds=1)
    await mongo_db["infos"].insert_one(
        {
            "owner": user["_id"],
            "id": later[0].track_id,
            "played_at": foreign_at,
            "durationMs": later[0].track.duration_ms,
        }
    )
    await mongo_db["users"].update_one(
        {"_id": user["_id"]},
        {"$set": {"lastTimestamp": int(later[0].played_at.timestamp() * 1000)}},
    )
    events = capture_events(hass)

    proxy.record_commands = True
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert window_queries(proxy) != []
    assert await stored_plays(mongo_db) == [*expected(first), (later[0].track_id, foreign_at)]
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"
    assert events == []  # another program's play: counted, not announced
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"


async def stopped_after_foreign_plays(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> MockConfigEntry:
    """Two plays scrobbled, the entry unloaded, then another program imports two plays a
    month old (the cursor stays)."""
    play_recently(fake, catalog, [(0, 40.0), (1, 35.0)])
    entry = await setup_entry()
    await hass.config_entries.async_unload(entry.entry_id)
    user = await mongo_db["users"].find_one({})
    assert user is not None
    track = list(catalog.tracks.values())[5]
    assert fake.now is not None
    await mongo_db["infos"].insert_many(
        [
            {"owner": user["_id"], "id": track.id, "played_at": at, "durationMs": 200_000}
            for at in (fake.now - timedelta(days=30), fake.now - timedelta(days=31))
        ]
    )
    return entry


async def test_plays_another_program_added_are_counted_after_a_restart(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """An import by another program (cursor untouched) is counted by the background check."""
    entry = await stopped_after_foreign_plays(hass, setup_entry, fake_spotify, catalog, mongo_db)

    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert sensor_state(hass, fake_spotify, "total_plays") == "4"
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"


async def test_a_cycle_during_the_totals_check_is_counted_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A play stored while the check counts makes it count again, not add it twice."""
    entry = await stopped_after_foreign_plays(hass, setup_entry, fake_spotify, catalog, mongo_db)
    counts = 0
    original = ScrobbleStore.totals

    async def totals_while_a_cycle_runs(store: ScrobbleStore, owner: ObjectId) -> int:
        nonlocal counts
        counts += 1
        counted = await original(store, owner)
        if counts == 1:
            play_recently(fake_spotify, catalog, [(2, 1.0)])
            await entry.runtime_data.coordinator.async_refresh()
        return counted

    monkeypatch.setattr(ScrobbleStore, "totals", totals_while_a_cycle_runs)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert counts == 2
    assert sensor_state(hass, fake_spotify, "total_plays") == "5"


async def test_a_failed_totals_check_leaves_the_count_to_the_next_cycle(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MongoDB failing the background count: the next cycle counts instead."""
    entry = await stopped_after_foreign_plays(hass, setup_entry, fake_spotify, catalog, mongo_db)
    original = ScrobbleStore.totals
    failures = 1

    async def failing_once(store: ScrobbleStore, owner: ObjectId) -> int:
        nonlocal failures
        if failures:
            failures -= 1
            raise AutoReconnect("connection lost")
        return await original(store, owner)

    monkeypatch.setattr(ScrobbleStore, "totals", failing_once)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"

    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"


async def test_a_file_older_than_the_last_write_is_not_trusted(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    hass_storage: dict[str, Any],
) -> None:
    """A crash before the file caught up with a write: the restart asks MongoDB.

    The write stored a play Spotify showed late (older than the newest stored one), which
    leaves ``lastTimestamp`` where it was; the account's write counter tells.
    """
    first = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 20.0)])
    entry = await setup_entry(uri=proxy.uri)
    await tick(hass)  # steady state: the cache knows the window's stored plays
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{DOMAIN}.outbox.{entry.entry_id}"
    before = copy.deepcopy(hass_storage[key])
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    events = capture_events(hass)
    late = play_recently(fake_spotify, catalog, [(2, 30.0)])
    await tick(hass)
    assert [e.data["track_id"] for e in events] == [late[0].track_id]
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass_storage[key] = before  # the file as it was before that write

    proxy.record_commands = True
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert window_queries(proxy) != []
    assert [e.data["track_id"] for e in events] == [late[0].track_id]
    assert await stored_plays(mongo_db) == expected(first + late)
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"
