"""Long-term statistics through the recorder: backfill, live cycles, re-backfill, restart."""

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.statistics import get_metadata, statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.spotify_scrobbler.statistics import (
    async_refresh_statistics,
    statistic_ids,
)

from .conftest import MongoDb, make_entry
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
Row = tuple[datetime, float, float]


def generated_plays(
    catalog: Catalog, owner: ObjectId, end: datetime, count: int, seed: int
) -> list[dict[str, Any]]:
    """``count`` play documents over the 60 days before ``end``, in sessions; some blacklisted."""
    rng = random.Random(seed)  # noqa: S311 -- test data
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)
    docs: dict[datetime, dict[str, Any]] = {}
    moment = end - timedelta(days=60)
    while len(docs) < count:
        # Sessions of a few plays, then a pause of up to two days.
        pause = rng.randint(60, 400) if rng.random() < 0.8 else rng.uniform(3600, 48 * 3600)
        moment += timedelta(seconds=pause)
        if moment >= end:
            moment = end - timedelta(days=rng.uniform(0, 60))
        track = rng.choice(tracks)
        played_at = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        doc: dict[str, Any] = {
            "owner": owner,
            "id": track.id,
            "albumId": track.album_id,
            "primaryArtistId": track.artist_ids[0],
            "artistIds": list(track.artist_ids),
            "durationMs": track.duration_ms,
            "played_at": played_at,
        }
        if rng.random() < 0.05:
            doc["blacklistedBy"] = ["artist"]
        docs[played_at] = doc
    return list(docs.values())


async def expected_rows(mongo_db: MongoDb) -> tuple[list[Row], list[Row]]:
    """Brute force over every stored play: (hour, value, running sum) for plays and minutes.

    Every hour with a stored play has a row; blacklisted plays count 0 (an hour whose plays
    were all blacklisted later must show 0, not what it counted before).
    """
    hours: dict[datetime, list[int]] = {}
    async for doc in mongo_db["infos"].find({}):
        hour = doc["played_at"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        row = hours.setdefault(hour, [0, 0])
        if "blacklistedBy" not in doc:
            row[0] += 1
            row[1] += doc["durationMs"]
    plays: list[Row] = []
    minutes: list[Row] = []
    plays_sum = ms_sum = 0
    for hour in sorted(hours):
        count, ms = hours[hour]
        plays_sum += count
        ms_sum += ms
        plays.append((hour, count, plays_sum))
        minutes.append((hour, ms / 60_000, ms_sum / 60_000))
    return plays, minutes


async def recorded_rows(hass: HomeAssistant, statistic_id: str) -> list[Row]:
    """Hourly rows of a statistic, as the recorder returns them."""
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    found = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2000, 1, 1, tzinfo=UTC),
        None,
        {statistic_id},
        "hour",
        None,
        {"state", "sum"},
    )
    return [
        (datetime.fromtimestamp(row["start"], UTC), row["state"], row["sum"])
        for row in found.get(statistic_id, [])
    ]


async def assert_statistics_match(
    hass: HomeAssistant, entry: MockConfigEntry, mongo_db: MongoDb
) -> int:
    """The recorder holds exactly the brute-force rows; returns how many hours."""
    plays_id, minutes_id = statistic_ids(entry)
    want_plays, want_minutes = await expected_rows(mongo_db)
    # The running sums end at MongoDB's own count and $sum of the counted plays.
    counted = {"blacklistedBy": {"$exists": False}}
    total = await mongo_db["infos"].count_documents(counted)
    cursor = await mongo_db["infos"].aggregate(
        [{"$match": counted}, {"$group": {"_id": None, "ms": {"$sum": "$durationMs"}}}]
    )
    listened = [row["ms"] for row in await cursor.to_list()]
    assert (want_plays[-1][2] if want_plays else 0) == total
    assert (want_minutes[-1][2] if want_minutes else 0) == pytest.approx(
        (listened[0] if listened else 0) / 60_000
    )
    assert await recorded_rows(hass, plays_id) == want_plays
    got_minutes = await recorded_rows(hass, minutes_id)
    assert [row[0] for row in got_minutes] == [row[0] for row in want_minutes]
    for got, want in zip(got_minutes, want_minutes, strict=True):
        assert got[1:] == pytest.approx(want[1:], abs=1e-6)
    return len(want_plays)


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


@pytest.fixture
async def owner(mongo_db: MongoDb, fake_spotify: FakeSpotify) -> ObjectId:
    """The account's users document, created before setup (as an existing database has)."""
    result = await mongo_db["users"].insert_one(
        {"spotifyId": fake_spotify.user_id, "lastTimestamp": 0}
    )
    return result.inserted_id


async def test_backfill_live_refresh_and_restart(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    owner: ObjectId,
) -> None:
    """Hourly rows equal a brute-force count at every step."""
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(
        generated_plays(catalog, owner, now - timedelta(hours=3), 600, seed=5)
    )

    # Backfill of the whole history at setup.
    entry = await setup_entry()
    hours = await assert_statistics_match(hass, entry, mongo_db)
    assert hours > 50

    plays_id, minutes_id = statistic_ids(entry)
    assert fake_spotify.user_id == "scrobbler-test-user"
    assert plays_id == "spotify_scrobbler:scrobbler_test_user_plays"
    metadata = await get_instance(hass).async_add_executor_job(
        partial(get_metadata, hass, statistic_ids={plays_id, minutes_id})
    )
    assert metadata[minutes_id][1]["unit_of_measurement"] == "min"
    assert metadata[minutes_id][1]["has_sum"] is True
    assert metadata[plays_id][1]["source"] == "spotify_scrobbler"

    # Live: plays scrobbled by a cycle update the current hour.
    play_recently(fake_spotify, catalog, [(0, 3.0), (1, 1.0)])
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == 602
    newest = max([doc["played_at"] async for doc in mongo_db["infos"].find({})])
    rows = await recorded_rows(hass, plays_id)
    assert rows[-1][0] == newest.replace(minute=0, second=0, microsecond=0)
    assert await assert_statistics_match(hass, entry, mongo_db) >= hours

    # A late play, older than the last written hour, makes a rebuild from its hour.
    play_recently(fake_spotify, catalog, [(2, 90.0)])
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == 603
    await assert_statistics_match(hass, entry, mongo_db)

    # An import adds older plays behind the scrobbler's back, then asks for a re-backfill.
    imported = generated_plays(catalog, owner, now - timedelta(days=20), 80, seed=9)
    existing = {doc["played_at"] async for doc in mongo_db["infos"].find({})}
    imported = [doc for doc in imported if doc["played_at"] not in existing]
    await mongo_db["infos"].insert_many(imported)
    await async_refresh_statistics(hass, entry, min(doc["played_at"] for doc in imported))
    await assert_statistics_match(hass, entry, mongo_db)

    # Restart: continues from the last recorded hour; a play stored meanwhile in that hour
    # (e.g. by a second scrobbler) is picked up, nothing is counted twice.
    track = next(iter(catalog.tracks.values()))
    await mongo_db["infos"].insert_one(
        {
            "owner": owner,
            "id": track.id,
            "albumId": track.album_id,
            "primaryArtistId": track.artist_ids[0],
            "artistIds": list(track.artist_ids),
            "durationMs": track.duration_ms,
            "played_at": newest.replace(minute=0, second=0, microsecond=0)
            + timedelta(milliseconds=1),
        }
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await assert_statistics_match(hass, entry, mongo_db)


async def test_mongodb_failure_leaves_statistics_for_the_next_rebuild(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    owner: ObjectId,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing MongoDB is logged, and the next rebuild catches up."""
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(generated_plays(catalog, owner, now, 100, seed=1))
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)

    original = AsyncCollection.aggregate

    async def down(*_: Any, **__: Any) -> Any:
        raise AutoReconnect("connection lost (injected)")

    older = generated_plays(catalog, owner, now - timedelta(days=61), 20, seed=2)
    await mongo_db["infos"].insert_many(older)
    monkeypatch.setattr(AsyncCollection, "aggregate", down)
    await async_refresh_statistics(hass, entry, now - timedelta(days=200))
    assert "long-term statistics not updated" in caplog.text
    monkeypatch.setattr(AsyncCollection, "aggregate", original)

    await async_refresh_statistics(hass, entry, None)
    await assert_statistics_match(hass, entry, mongo_db)


async def test_entry_added_again_on_another_database_rebuilds_from_it(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    owner: ObjectId,
) -> None:
    """Removing the entry keeps the account's statistics; a new entry for the same account
    on another database must not continue them (they count the old database's plays)."""
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(generated_plays(catalog, owner, now, 200, seed=3))
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    other = mongo_db.client[f"{mongo_db.name}_b"]
    try:
        result = await other["users"].insert_one(
            {"spotifyId": fake_spotify.user_id, "lastTimestamp": 0}
        )
        fewer = generated_plays(catalog, result.inserted_id, now, 40, seed=4)
        await other["infos"].insert_many(fewer)
        again = make_entry(fake_spotify, other)
        again.add_to_hass(hass)
        await hass.config_entries.async_setup(again.entry_id)
        await assert_statistics_match(hass, again, other)
    finally:
        await mongo_db.client.drop_database(other.name)
