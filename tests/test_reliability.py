"""Nothing lost, nothing duplicated: MongoDB outages, restarts, a full outbox, bad payloads.

Every scenario ends by comparing the exact set of plays in MongoDB with what Spotify
reported. MongoDB outages are real: a FerretDB process of the test's own is killed
(SIGKILL) and restarted on the same port and data.
"""

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.spotify_scrobbler.const import CONF_DATABASE, DOMAIN
from custom_components.spotify_scrobbler.engine import mongo_client
from custom_components.spotify_scrobbler.engine import pending as pending_module
from custom_components.spotify_scrobbler.outbox import SNAPSHOT_SAVE_DELAY

from .conftest import MongoDb, make_entry
from .ferretdb_process import FerretDBProcess
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import (
    capture_events,
    expected,
    play_recently,
    plays_of,
    sensor_state,
    stored_plays,
    tick,
)

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
Json = dict[str, Any]


@pytest.fixture(autouse=True)
def short_mongodb_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead server fails each operation after 1 s instead of 5 s (keeps the suite quick)."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 1000)


@pytest.fixture
async def own_db(own_ferretdb: FerretDBProcess, mongo_db: MongoDb) -> AsyncIterator[MongoDb]:
    """The test database on the killable server (same name as ``mongo_db``)."""
    client: AsyncMongoClient[Json] = AsyncMongoClient(own_ferretdb.uri, tz_aware=True)
    try:
        yield client[mongo_db.name]
    finally:
        await client.close()


def outbox_file(hass_storage: dict[str, Any], entry: MockConfigEntry) -> Any:
    """The entry's outbox as HA's (test) storage holds it."""
    return hass_storage.get(f"{DOMAIN}.outbox.{entry.entry_id}", {}).get("data")


async def test_mongodb_down_for_three_cycles_then_back(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    hass_storage: dict[str, Any],
) -> None:
    """Plays wait in the outbox while MongoDB is down and are written in order once it is back.

    Entities stay available and count the waiting plays; events fire when plays are stored.
    """
    first = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 35.0)])
    entry = await setup_entry(uri=own_ferretdb.uri)
    assert await stored_plays(own_db) == expected(first)
    events = capture_events(hass)

    await own_ferretdb.kill()
    during = []
    for cycle in range(3):
        during += play_recently(fake_spotify, catalog, [(2 + cycle, 30.0 - 5 * cycle)])
        await tick(hass)
        assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
        assert sensor_state(hass, fake_spotify, "pending_plays") == str(cycle + 1)
        assert sensor_state(hass, fake_spotify, "total_plays") == str(2 + cycle + 1)
    last = hass.states.get("sensor.scrobbler_test_last_scrobbled_track")
    assert last is not None
    assert last.attributes["track_id"] == during[-1].track_id
    assert last.attributes["stored"] is False
    assert len(outbox_file(hass_storage, entry)["pending"]["items"]) == 3
    assert events == []

    await own_ferretdb.start()
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert sensor_state(hass, fake_spotify, "total_plays") == "5"
    assert await stored_plays(own_db) == expected(first + during)
    assert [e.data["track_id"] for e in events] == [p.track_id for p in during]
    assert outbox_file(hass_storage, entry)["pending"]["items"] == []


async def test_sync_now_with_mongodb_down_says_the_plays_wait(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
) -> None:
    """sync_now while MongoDB is down: how many plays wait, not a driver's topology dump."""
    entry = await setup_entry(uri=own_ferretdb.uri)
    await own_ferretdb.kill()
    plays = play_recently(fake_spotify, catalog, [(0, 4.0), (1, 2.0)])
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "sync_waiting_for_mongodb"
    assert err.value.translation_placeholders == {"account": entry.title, "waiting": "2"}
    assert sensor_state(hass, fake_spotify, "pending_plays") == "2"

    await own_ferretdb.start()
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert await stored_plays(own_db) == expected(plays)


async def test_mongodb_down_across_ha_restart(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    hass_storage: dict[str, Any],
) -> None:
    """Home Assistant restarts while MongoDB is down: it starts from the outbox and polls on."""
    first = play_recently(fake_spotify, catalog, [(0, 40.0)])
    entry = await setup_entry(uri=own_ferretdb.uri)
    await own_ferretdb.kill()
    before = play_recently(fake_spotify, catalog, [(1, 30.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "1"

    # "Restart": everything in memory is gone, only HA's storage remains.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "1"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"

    after = play_recently(fake_spotify, catalog, [(2, 20.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "2"
    stored_file = repr(outbox_file(hass_storage, entry))
    assert fake_spotify.access_token not in stored_file
    assert fake_spotify.refresh_token not in stored_file

    await own_ferretdb.start()
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(own_db) == expected(first + before + after)
    user = await own_db["users"].find_one({})
    assert user is not None
    assert user["lastTimestamp"] == int(after[-1].played_at.timestamp() * 1000)


async def test_hung_mongodb_does_not_stall_polling(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
) -> None:
    """A server that keeps its connections but never answers (SIGSTOP): plays wait.

    No operation timeout is needed for this: PyMongo's monitor fails its heartbeat after the
    connect timeout and interrupts the operations in flight, so the cycle ends and polls on.
    """
    first = play_recently(fake_spotify, catalog, [(0, 40.0)])
    await setup_entry(uri=own_ferretdb.uri)
    own_ferretdb.freeze()
    try:
        hung = play_recently(fake_spotify, catalog, [(1, 30.0)])
        await tick(hass)
        assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
        assert sensor_state(hass, fake_spotify, "pending_plays") == "1"
    finally:
        own_ferretdb.freeze(frozen=False)
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(own_db) == expected(first + hung)


async def test_unloaded_entry_leaves_no_stale_outbox_save(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    hass_storage: dict[str, Any],
) -> None:
    """Unloading flushes the outbox and cancels its delayed save.

    Left armed, the unloaded instance's save would fire minutes later: over the file of the
    reloaded entry, or re-creating the file of a removed one.
    """
    play_recently(fake_spotify, catalog, [(0, 40.0)])
    entry = await setup_entry(uri=own_ferretdb.uri)
    await own_ferretdb.kill()
    play_recently(fake_spotify, catalog, [(1, 30.0)])
    await tick(hass)  # the play waits in the outbox; a delayed snapshot save is armed
    assert len(outbox_file(hass_storage, entry)["pending"]["items"]) == 1

    # What an import and an interrupted statistics rebuild leave in HA's storage.
    for kind in ("import", "statistics"):
        hass_storage[f"{DOMAIN}.{kind}.{entry.entry_id}"] = {"version": 1, "data": {}}
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert outbox_file(hass_storage, entry) is None
    assert not [key for key in hass_storage if entry.entry_id in key]
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SNAPSHOT_SAVE_DELAY + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert outbox_file(hass_storage, entry) is None


async def test_first_setup_without_outbox_waits_for_mongodb(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    own_ferretdb: FerretDBProcess,
    mongo_db: MongoDb,
) -> None:
    """No snapshot yet (never connected): setup is retried later, nothing is guessed."""
    await own_ferretdb.kill()
    entry = make_entry(fake_spotify, mongo_db, uri=own_ferretdb.uri)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_ferretdb_killed_mid_cycle_and_restarted(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server dies after the metadata writes, before the plays: nothing lost or doubled."""
    first = play_recently(fake_spotify, catalog, [(0, 40.0)])
    await setup_entry(uri=own_ferretdb.uri)
    second = play_recently(fake_spotify, catalog, [(1, 20.0), (2, 10.0), (0, 5.0)])
    original = AsyncCollection.insert_many
    killed: list[bool] = []

    async def kill_then_insert(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        if not killed:
            killed.append(True)
            await own_ferretdb.kill()
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "insert_many", kill_then_insert)
    await tick(hass)
    assert killed == [True]
    assert sensor_state(hass, fake_spotify, "pending_plays") == "3"

    await own_ferretdb.start()
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert await stored_plays(own_db) == expected(first + second)
    await tick(hass)
    assert await stored_plays(own_db) == expected(first + second)


async def test_full_outbox_raises_a_repair_and_loses_nothing_spotify_still_has(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond the bound the newest plays are refused (repair); Spotify's window recovers them."""
    monkeypatch.setattr(pending_module, "PENDING_LIMIT", 3)
    first = play_recently(fake_spotify, catalog, [(0, 60.0)])
    entry = await setup_entry(uri=own_ferretdb.uri)
    await own_ferretdb.kill()
    during = play_recently(fake_spotify, catalog, [(1, 50.0), (2, 40.0), (3, 30.0), (4, 20.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "3"
    issues = ir.async_get(hass)
    full = issues.async_get_issue(DOMAIN, f"outbox_full_{entry.entry_id}")
    assert full is not None
    assert full.translation_placeholders is not None
    assert full.translation_placeholders["count"] == "3"
    # Local time, as the UI shows times (not a raw UTC timestamp).
    assert full.translation_placeholders["since"] == dt_util.as_local(during[3].played_at).strftime(
        "%Y-%m-%d %H:%M"
    )

    await own_ferretdb.start()
    await tick(hass)
    assert await stored_plays(own_db) == expected(first + during)
    assert issues.async_get_issue(DOMAIN, f"outbox_full_{entry.entry_id}") is None


async def test_two_accounts_one_failing_permanently(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    own_ferretdb: FerretDBProcess,
) -> None:
    """One account's MongoDB stays dead; the other account keeps scrobbling every cycle."""
    healthy = make_entry(fake_spotify, mongo_db, unique_id="account-ok")
    failing = make_entry(fake_spotify, mongo_db, unique_id="account-dead", uri=own_ferretdb.uri)
    for entry in (healthy, failing):
        entry.add_to_hass(hass)
    first = play_recently(fake_spotify, catalog, [(0, 40.0)])
    await hass.config_entries.async_setup(healthy.entry_id)
    await hass.async_block_till_done()
    assert healthy.state is failing.state is ConfigEntryState.LOADED

    await own_ferretdb.kill()
    later = []
    for cycle in range(3):
        later += play_recently(fake_spotify, catalog, [(1 + cycle, 30.0 - 5 * cycle)])
        await tick(hass)
        assert healthy.runtime_data.coordinator.data.status == "ok"
        assert failing.runtime_data.coordinator.data.status == "mongodb_unavailable"
    assert len(failing.runtime_data.coordinator.data.pending) == 3

    owner = await mongo_db["users"].find_one({"spotifyId": "account-ok"})
    assert owner is not None
    cursor = mongo_db["infos"].find({"owner": owner["_id"]}).sort("played_at", 1)
    assert [(d["id"], d["played_at"]) async for d in cursor] == expected(first + later)
    assert failing.data[CONF_DATABASE] == mongo_db.name


def _set(path: str, value: Any) -> Callable[[Json], None]:
    def mutate(item: Json) -> None:
        *parents, leaf = path.split(".")
        target = item
        for key in parents:
            target = target[key]
        target[leaf] = value

    mutate.__name__ = f"{path}={value!r}"
    return mutate


# (mutation of the middle item, whether that play is still stored)
PAYLOAD_FAULTS = [
    (_set("played_at", None), False),
    (_set("played_at", 1700000000000), False),
    (_set("played_at", "yesterday"), False),
    (_set("played_at", "2026-01-01T10:00:00"), False),  # no time zone
    (_set("played_at", "0001-01-01T00:00:00+01:00"), False),  # before year 1 in UTC
    (_set("played_at", "9999-12-31T23:59:59Z"), False),  # the ±30 s window would overflow
    (_set("track", None), False),
    (_set("track", "spotify:track:x"), False),
    (_set("track.id", None), False),
    (_set("track.id", 42), False),
    (_set("track.id", "not an id!"), False),
    (_set("track.type", "episode"), False),
    (_set("track.type", None), False),
    (_set("track.is_local", value=True), False),
    (_set("track.name", None), True),
    (_set("track.duration_ms", None), True),
    (_set("track.duration_ms", "215000"), True),
    (_set("track.duration_ms", -5), True),
    (_set("track.artists", None), True),
    (_set("track.artists", "Some Artist"), True),
    (_set("track.artists", [None, {"id": None, "name": "Nobody"}]), True),
    (_set("track.album", None), True),
    (_set("track.album", "An Album"), True),
    (_set("track.album.id", None), True),
    (_set("track.album.images", None), True),
    (_set("track.album.images", [None]), True),
    (_set("track.album.artists", None), True),
    (_set("track.external_urls", None), True),
    (_set("track.external_ids", "isrc"), True),
    (_set("context", "not an object"), True),
]


@pytest.mark.parametrize(
    ("mutate", "kept"), PAYLOAD_FAULTS, ids=[m.__name__ for m, _ in PAYLOAD_FAULTS]
)
async def test_malformed_item_field(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    mutate: Callable[[Json], None],
    kept: bool,
) -> None:
    """A missing, null or mistyped field skips that item (or just that field), nothing else."""
    assert fake_spotify.now is not None
    plays = plays_of(catalog, fake_spotify.now, [(0, 30.0), (1, 20.0), (2, 10.0)])
    items = [catalog.play_json(play) for play in reversed(plays)]
    items[1] = copy.deepcopy(items[1])
    mutate(items[1])
    page = {
        "href": f"{fake_spotify.api_url}/me/player/recently-played",
        "limit": 50,
        "next": None,
        "cursors": None,
        "items": items,
    }
    fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(mongo_db) == expected(plays if kept else [plays[0], plays[2]])
    if kept:
        doc = await mongo_db["infos"].find_one({"id": plays[1].track_id})
        assert doc is not None
        assert isinstance(doc["durationMs"], int)
        assert doc["durationMs"] >= 0
        assert all(isinstance(a, str) for a in doc["artistIds"])
        assert doc["albumId"] is None or isinstance(doc["albumId"], str)
    # The sensors still read fine.
    assert sensor_state(hass, fake_spotify, "total_plays") == str(3 if kept else 2)
