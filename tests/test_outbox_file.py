"""A damaged or older outbox file: what can be used is, the rest never blocks scrobbling.

The file is HA's storage, which a crash, a disk error or an older version of the integration
may leave odd. A start while MongoDB is down relies on it; MongoDB, once back, is the record.
"""

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pymongo import AsyncMongoClient
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.spotify_scrobbler.const import DOMAIN
from custom_components.spotify_scrobbler.engine import mongo_client
from custom_components.spotify_scrobbler.engine.models import ScrobblerData
from custom_components.spotify_scrobbler.engine.pending import PendingPlays
from custom_components.spotify_scrobbler.engine.recent_plays import RecentPlays
from custom_components.spotify_scrobbler.engine.store import Account
from custom_components.spotify_scrobbler.outbox import SNAPSHOT_SAVE_DELAY, Outbox

from .conftest import MongoDb
from .ferretdb_process import FerretDBProcess
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import expected, play_recently, sensor_state, stored_plays, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture(autouse=True)
def short_mongodb_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead server fails each operation after 1 s instead of 5 s."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 1000)


@pytest.fixture
async def own_db(own_ferretdb: FerretDBProcess, mongo_db: MongoDb) -> AsyncIterator[MongoDb]:
    """The test database on the killable server (same name as ``mongo_db``)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_ferretdb.uri, tz_aware=True)
    try:
        yield client[mongo_db.name]
    finally:
        await client.close()


async def restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the (unloaded) entry up again, as Home Assistant does at its start."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def play_waits_then_unload(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake: FakeSpotify,
    catalog: Catalog,
    server: FerretDBProcess,
    hass_storage: dict[str, Any],
) -> tuple[MockConfigEntry, dict[str, Any], list[Any]]:
    """One play stored, one waiting in the outbox, MongoDB down, the entry unloaded."""
    plays = play_recently(fake, catalog, [(0, 40.0)])
    entry = await setup_entry(uri=server.uri)
    await server.kill()
    plays += play_recently(fake, catalog, [(1, 30.0)])
    await tick(hass)
    assert sensor_state(hass, fake, "pending_plays") == "1"
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    return entry, hass_storage[f"{DOMAIN}.outbox.{entry.entry_id}"]["data"], plays


async def test_unusable_outbox_entries_are_skipped_and_the_rest_is_used(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Broken waiting plays are dropped (logged with their count); the good one is written.

    The file is also an older one: its totals know nothing of the waiting plays' state, and
    its lists of re-checks and refusals are unreadable.
    """
    entry, outbox, plays = await play_waits_then_unload(
        hass, setup_entry, fake_spotify, catalog, own_ferretdb, hass_storage
    )
    outbox["pending"]["items"] += [{"played_at": "yesterday"}, "not a play"]
    outbox["pending"]["attempted"] = [["a-track", "not an instant"], 7, None]
    outbox["pending"]["refused_since"] = "not an instant"
    del outbox["totals"]["waiting_new"], outbox["totals"]["waiting_stored"]

    await restart(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert "Skipped 2 unusable entries of the outbox file" in caplog.text
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "1"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"

    await own_ferretdb.start()
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    assert await stored_plays(own_db) == expected(plays)


async def test_unreadable_totals_start_from_zero_until_mongodb_counts(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    hass_storage: dict[str, Any],
) -> None:
    """The account in the file still lets a start without MongoDB scrobble into the outbox.

    Totals it cannot read are not guessed: MongoDB counts them once it answers.
    """
    entry, outbox, plays = await play_waits_then_unload(
        hass, setup_entry, fake_spotify, catalog, own_ferretdb, hass_storage
    )
    outbox["totals"]["total_plays"] = "many"

    await restart(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "1"
    plays += play_recently(fake_spotify, catalog, [(2, 20.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "2"

    await own_ferretdb.start()
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"
    assert await stored_plays(own_db) == expected(plays)


async def test_an_unreadable_account_waits_for_mongodb(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    hass_storage: dict[str, Any],
) -> None:
    """Without a usable account the start is retried (as without any file); nothing is lost."""
    entry, outbox, plays = await play_waits_then_unload(
        hass, setup_entry, fake_spotify, catalog, own_ferretdb, hass_storage
    )
    outbox["account"]["owner"] = "not-an-object-id"

    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY

    await own_ferretdb.start()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert await stored_plays(own_db) == expected(plays)


async def test_an_unloaded_outbox_saves_nothing_more(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Once flushed at unload, a late save (a background count ending after it) is dropped.

    It would overwrite the file the next instance of the entry writes, or recreate the file
    of a removed entry.
    """
    outbox = Outbox(hass, "entry")
    await outbox.async_load(PendingPlays(), RecentPlays(), set())
    account = Account(ObjectId(), "user", 5, None, {"plays": 1})
    await outbox.async_save_now(account, ScrobblerData(total_plays=1))
    await outbox.async_flush()
    key = f"{DOMAIN}.outbox.entry"
    flushed = copy.deepcopy(hass_storage[key])
    assert flushed["data"]["account"]["counters"] == {"plays": 1}

    account.last_timestamp = 99
    outbox.schedule_save(account, ScrobblerData(total_plays=7))
    await outbox.async_save_now(account, ScrobblerData(total_plays=7))
    await outbox.async_flush()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SNAPSHOT_SAVE_DELAY + 1))
    await hass.async_block_till_done()

    assert hass_storage[key] == flushed
