"""Long-term statistics are never left with a hole: interrupted rebuilds complete by themselves.

Each scenario interrupts the statistics where it hurts (FerretDB killed in the middle of the
backfill's cursor, an unload while a rebuild is half written, the history import finishing
just before a restart, plays blacklisted after they were counted), lets the integration
recover on its own through cycles and setups, then compares every hourly row with a
brute-force count over MongoDB (``assert_statistics_match``).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pymongo import AsyncMongoClient
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler import statistics
from custom_components.spotify_scrobbler.const import DOMAIN
from custom_components.spotify_scrobbler.engine import export_reader, hourly, mongo_client
from custom_components.spotify_scrobbler.engine.hourly import HourTotals
from custom_components.spotify_scrobbler.statistics import (
    async_refresh_statistics,
    statistic_ids,
)

from .conftest import MongoDb
from .export_fake import generate_export, write_export
from .ferretdb_process import FerretDBProcess
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently, tick
from .test_statistics import assert_statistics_match, generated_plays, recorded_rows

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows reach the recorder in chunks of 10 hours, the cursor reads 50 plays per batch.

    So an interruption lands between chunks (some rows written, some not) and a killed
    server is noticed by the cursor's next getMore. MongoDB failures fail after 1 s.
    """
    monkeypatch.setattr(statistics, "CHUNK_HOURS", 10)
    monkeypatch.setattr(hourly, "BATCH_SIZE", 50)
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 1000)


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


@pytest.fixture
async def own_db(own_ferretdb: FerretDBProcess, mongo_db: MongoDb) -> AsyncIterator[MongoDb]:
    """The test database on the killable server (same name as ``mongo_db``)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_ferretdb.uri, tz_aware=True)
    try:
        yield client[mongo_db.name]
    finally:
        await client.close()


async def add_account(db: MongoDb, fake: FakeSpotify) -> ObjectId:
    """The account's users document, created before setup (as an existing database has)."""
    result = await db["users"].insert_one({"spotifyId": fake.user_id, "lastTimestamp": 0})
    return result.inserted_id


def interrupt_rebuild(
    monkeypatch: pytest.MonkeyPatch, after: int, action: Callable[[], Awaitable[None]]
) -> asyncio.Event:
    """Run ``action`` once, when a statistics cursor has yielded ``after`` hours.

    The cursor itself is MongoDB's (FerretDB's): the hook only chooses the moment. The
    returned event is set when the moment came.
    """
    original = statistics.hourly_totals
    reached = asyncio.Event()

    async def interrupted(*args: Any) -> AsyncIterator[HourTotals]:
        count = 0
        async for hour in original(*args):
            if count == after and not reached.is_set():
                reached.set()
                await action()
            count += 1
            yield hour

    monkeypatch.setattr(statistics, "hourly_totals", interrupted)
    return reached


async def hang() -> None:
    """Wait until cancelled (a rebuild caught by an unload or a restart)."""
    await asyncio.Event().wait()


def counted(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generated plays without blacklisted ones: each test blacklists its own."""
    return [doc for doc in docs if "blacklistedBy" not in doc]


async def insert_older(db: MongoDb, docs: list[dict[str, Any]]) -> datetime:
    """Insert plays behind the scrobbler's back (those not stored yet); the oldest instant."""
    existing = {doc["played_at"] async for doc in db["infos"].find({}, {"played_at": 1})}
    new = [doc for doc in docs if doc["played_at"] not in existing]
    await db["infos"].insert_many(new)
    return min(doc["played_at"] for doc in new)


async def test_ferretdb_killed_in_the_middle_of_the_backfill(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    """Rows written up to the failure; the next cycle that reaches MongoDB writes the rest.

    Even a cycle without new plays completes them, and later live plays are added after
    the completed rows, not after a hole.
    """
    owner = await add_account(own_db, fake_spotify)
    now = dt_util.utcnow()
    await own_db["infos"].insert_many(
        counted(generated_plays(catalog, owner, now - timedelta(hours=3), 600, seed=11))
    )
    with monkeypatch.context() as patch:
        reached = interrupt_rebuild(patch, 35, own_ferretdb.kill)
        entry = await setup_entry(uri=own_ferretdb.uri)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert reached.is_set()
    plays_id, _ = statistic_ids(entry)
    assert 0 < len(await recorded_rows(hass, plays_id)) <= 40
    marker = f"{DOMAIN}.statistics.{entry.entry_id}"
    # The whole history, rows cleared first: a first setup does not continue rows a removed
    # entry of the same account may have left.
    assert hass_storage[marker]["data"] == {"stale_since": None, "clear": True}

    await tick(hass)  # MongoDB still down: the cycle cannot rebuild anything
    await own_ferretdb.start()
    await tick(hass)  # no new plays, MongoDB reached: the backfill is completed
    assert await assert_statistics_match(hass, entry, own_db) > 40
    assert marker not in hass_storage

    play_recently(fake_spotify, catalog, [(0, 3.0)])
    await tick(hass)
    await assert_statistics_match(hass, entry, own_db)


async def test_restart_while_ferretdb_is_down(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    own_db: MongoDb,
) -> None:
    """The setup's catch-up (from the recorder's last row) fails; a later cycle completes it.

    The plays it must catch up were stored after the last row (another scrobbler, or rows
    the recorder had not committed when HA stopped).
    """
    owner = await add_account(own_db, fake_spotify)
    now = dt_util.utcnow()
    docs = counted(generated_plays(catalog, owner, now - timedelta(hours=3), 200, seed=12))
    await own_db["infos"].insert_many(docs)
    entry = await setup_entry(uri=own_ferretdb.uri)
    await assert_statistics_match(hass, entry, own_db)
    await own_db["infos"].insert_one(
        {**docs[0], "_id": ObjectId(), "played_at": now - timedelta(hours=2)}
    )

    await own_ferretdb.kill()
    assert await hass.config_entries.async_reload(entry.entry_id)  # from the outbox's snapshot
    await hass.async_block_till_done(wait_background_tasks=True)
    await own_ferretdb.start()
    await tick(hass)  # no new plays, MongoDB reached
    await assert_statistics_match(hass, entry, own_db)


async def test_reload_in_the_middle_of_a_rebuild(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebuild cancelled by an unload, half its rows rewritten, is redone by the next setup."""
    owner = await add_account(mongo_db, fake_spotify)
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(
        counted(generated_plays(catalog, owner, now - timedelta(hours=3), 300, seed=3))
    )
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)

    oldest = await insert_older(
        mongo_db, counted(generated_plays(catalog, owner, now - timedelta(days=61), 100, seed=4))
    )
    with monkeypatch.context() as patch:
        reached = interrupt_rebuild(patch, 25, hang)
        # As the history import does it: in a task of the entry, which an unload cancels.
        entry.async_create_background_task(
            hass, async_refresh_statistics(hass, entry, oldest), "test statistics refresh"
        )
        await asyncio.wait_for(reached.wait(), 30)
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await assert_statistics_match(hass, entry, mongo_db)


async def test_import_finished_just_before_a_restart(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The import saved itself finished; HA stopped before its statistics rebuild was done.

    The next setup rebuilds the imported range (the import does not run again).
    """
    monkeypatch.setattr(export_reader, "SEGMENT_ENTRIES", 40)
    owner = await add_account(mongo_db, fake_spotify)
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(
        counted(generated_plays(catalog, owner, now - timedelta(hours=3), 200, seed=6))
    )
    # Tracks stored in full: the import needs no enrichment (whose flush is not tested here).
    await mongo_db["tracks"].insert_many(
        [
            {"id": t.id, "album": t.album_id, "artists": list(t.artist_ids)}
            for t in catalog.tracks.values()
        ]
    )
    export = generate_export(catalog, datetime(2024, 3, 1, 8, tzinfo=UTC), 150, seed=2)
    folder = tmp_path / "my_spotify_data"
    write_export(folder, export.entries, per_file=60)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)
    stored = await mongo_db["infos"].count_documents({})

    with monkeypatch.context() as patch:
        reached = interrupt_rebuild(patch, 15, hang)
        await hass.services.async_call(
            DOMAIN,
            "import_history",
            {"config_entry_id": entry.entry_id, "path": str(folder)},
            blocking=True,
        )
        await asyncio.wait_for(reached.wait(), 30)
        progress = entry.runtime_data.importer.progress
        assert progress is not None
        assert progress["state"] == "finished"
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert await mongo_db["infos"].count_documents({}) == stored + len(export.expected)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await assert_statistics_match(hass, entry, mongo_db)


@pytest.mark.parametrize("interrupted", [False, True], ids=["refreshed", "restart_during_refresh"])
async def test_plays_blacklisted_after_they_were_counted(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
    interrupted: bool,
) -> None:
    """Enrichment blacklists counted plays, then asks for a refresh from the oldest of them.

    Hours whose plays are all blacklisted now count 0 (the newest hour among them), the
    running sums drop accordingly, and later live plays continue from the right sums.
    """
    owner = await add_account(mongo_db, fake_spotify)
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(
        counted(generated_plays(catalog, owner, now - timedelta(hours=3), 300, seed=8))
    )
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)

    by_hour: dict[datetime, list[dict[str, Any]]] = {}
    async for doc in mongo_db["infos"].find({"blacklistedBy": {"$exists": False}}):
        hour = doc["played_at"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        by_hour.setdefault(hour, []).append(doc)
    hours = sorted(by_hour)
    # Whole hours (the oldest one among them, one in the middle, the newest) and one play
    # of another hour.
    chosen = [*by_hour[hours[3]], *by_hour[hours[40]], *by_hour[hours[-1]], by_hour[hours[20]][0]]
    await mongo_db["infos"].update_many(
        {"_id": {"$in": [doc["_id"] for doc in chosen]}}, {"$set": {"blacklistedBy": ["artist"]}}
    )
    since = min(doc["played_at"] for doc in chosen)
    if interrupted:
        with monkeypatch.context() as patch:
            reached = interrupt_rebuild(patch, 10, hang)
            entry.async_create_background_task(
                hass, async_refresh_statistics(hass, entry, since), "test statistics refresh"
            )
            await asyncio.wait_for(reached.wait(), 30)
            assert await hass.config_entries.async_unload(entry.entry_id)
        assert await hass.config_entries.async_setup(entry.entry_id)
    else:
        await async_refresh_statistics(hass, entry, since)
    await assert_statistics_match(hass, entry, mongo_db)

    play_recently(fake_spotify, catalog, [(0, 3.0)])
    await tick(hass)
    await assert_statistics_match(hass, entry, mongo_db)


async def test_a_late_play_stored_by_the_setup_cycle_is_counted(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The first cycle runs inside setup, before the statistics follow the coordinator: an
    older play it stores (shown late by Spotify, or written before a restart whose reply was
    lost) lies before the recorder's last row and must be counted all the same."""
    play_recently(fake_spotify, catalog, [(0, 130), (1, 5)])
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)
    assert await hass.config_entries.async_unload(entry.entry_id)

    play_recently(fake_spotify, catalog, [(2, 70)])  # another hour than the newest play's
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert await mongo_db["infos"].count_documents({}) == 3
    await assert_statistics_match(hass, entry, mongo_db)
