"""The blacklist option applies to plays stored before it changed, and is undone (issue 12).

Driven through the options flow (which reloads the entry); checked on MongoDB's documents,
the totals sensors, the ``top`` action and the long-term statistics (brute-force rows).
Your Spotify's own blacklist (``users.settings.blacklistedArtists``) is never undone.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.components.recorder import Recorder
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import (
    CONF_BLACKLISTED_ARTISTS,
    CONF_REQUEST_SPACING,
)

from .conftest import MongoDb
from .rollup_check import assert_rollups_exact
from .spotify_fake import Catalog, FakeSpotify, Track
from .test_scrobbling import play_recently, sensor_state, tick
from .test_statistics import assert_statistics_match
from .test_top import call_top

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
Docs = list[dict[str, Any]]

COUNTED = {"blacklistedBy": {"$exists": False}}


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


def tracks_by_artist(catalog: Catalog) -> tuple[list[Track], list[Track], str]:
    """(tracks of one primary artist, tracks of other primary artists, that artist's id)."""
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)
    banned = tracks[3].artist_ids[0]
    return (
        [t for t in tracks if t.artist_ids[0] == banned],
        [t for t in tracks if t.artist_ids[0] != banned],
        banned,
    )


def listen(fake: FakeSpotify, catalog: Catalog) -> tuple[str, int]:
    """Plays over the last five hours, 9 of them by one artist: (that artist, all plays)."""
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)
    own, others, banned = tracks_by_artist(catalog)
    spec: list[tuple[int, float]] = [
        (tracks.index(own[i % len(own)]), m)
        for i, m in enumerate((280, 200, 150, 100, 70, 40, 20, 12, 5))
    ]
    spec += [(tracks.index(others[i]), m) for i, m in enumerate((300, 250, 180, 120, 60, 30, 8))]
    play_recently(fake, catalog, spec)
    return banned, len(spec)


async def set_blacklist(hass: HomeAssistant, entry: MockConfigEntry, artists: list[str]) -> None:
    """Save the options form (the entry reloads) and wait for what setup started."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_BLACKLISTED_ARTISTS: artists, CONF_REQUEST_SPACING: 0.2}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def all_plays(mongo_db: MongoDb) -> Docs:
    return await mongo_db["infos"].find({}).sort("played_at", 1).to_list()


def without_blacklist(docs: Docs) -> Docs:
    return [{k: v for k, v in doc.items() if k != "blacklistedBy"} for doc in docs]


async def assert_totals(hass: HomeAssistant, fake: FakeSpotify, mongo_db: MongoDb) -> int:
    """The three totals sensors equal MongoDB's counts of counted plays; returns the total."""
    day = dt_util.start_of_local_day()
    today = {**COUNTED, "played_at": {"$gte": day, "$lt": day + timedelta(days=1)}}
    listened = sum([doc["durationMs"] async for doc in mongo_db["infos"].find(today)])
    total = await mongo_db["infos"].count_documents(COUNTED)
    assert int(sensor_state(hass, fake, "total_plays")) == total
    assert int(sensor_state(hass, fake, "plays_today")) == await mongo_db["infos"].count_documents(
        today
    )
    assert float(sensor_state(hass, fake, "listening_time_today")) == pytest.approx(
        round(listened / 60_000, 2)
    )
    return total


async def top_artists(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    response = await call_top(hass, config_entry_id=entry.entry_id, limit=50)
    return [artist["id"] for artist in response["artists"]]


async def test_blacklisting_applies_to_past_plays_and_removing_undoes_it(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents, totals, ``top`` and statistics all follow; a restart does nothing more."""
    banned, count = listen(fake_spotify, catalog)
    entry = await setup_entry()
    before = await all_plays(mongo_db)
    assert len(before) == count
    assert await assert_totals(hass, fake_spotify, mongo_db) == count
    assert banned in await top_artists(hass, entry)
    await assert_statistics_match(hass, entry, mongo_db)
    user = await mongo_db["users"].find_one({})

    await set_blacklist(hass, entry, [banned])

    after = await all_plays(mongo_db)
    assert without_blacklist(after) == without_blacklist(before)  # nothing else touched
    assert [doc.get("blacklistedBy") for doc in after] == [
        ["artist"] if doc["primaryArtistId"] == banned else None for doc in before
    ]
    assert await assert_totals(hass, fake_spotify, mongo_db) == count - 9
    assert banned not in await top_artists(hass, entry)
    await assert_rollups_exact(hass, entry, mongo_db, kept_true=True)  # rebuilt at setup
    await assert_statistics_match(hass, entry, mongo_db)
    stored_user = await mongo_db["users"].find_one({})
    assert stored_user is not None
    assert user is not None
    assert stored_user["settings"] == user["settings"]  # Your Spotify's list is not ours

    # A restart with the same option does not update a single play.
    updates: list[dict[str, Any]] = []
    original = AsyncCollection.update_many

    async def recording(self: AsyncCollection[Any], query: Any, update: Any, **kw: Any) -> Any:
        updates.append(update)
        return await original(self, query, update, **kw)

    monkeypatch.setattr(AsyncCollection, "update_many", recording)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not [u for u in updates if "blacklistedBy" in str(u)]
    assert await all_plays(mongo_db) == after

    await set_blacklist(hass, entry, [])

    assert await all_plays(mongo_db) == before
    assert await assert_totals(hass, fake_spotify, mongo_db) == count
    assert banned in await top_artists(hass, entry)
    await assert_statistics_match(hass, entry, mongo_db)
    await assert_rollups_exact(hass, entry, mongo_db, kept_true=True)


async def test_a_change_cut_short_is_completed_at_the_next_connection(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MongoDB fails in the middle of applying and of undoing: the next cycle completes it."""
    banned, count = listen(fake_spotify, catalog)
    entry = await setup_entry()
    before = await all_plays(mongo_db)
    update_one, update_many = AsyncCollection.update_one, AsyncCollection.update_many

    async def no_bookkeeping(self: AsyncCollection[Any], query: Any, update: Any, **kw: Any) -> Any:
        if "scrobbler.appliedBlacklist" in str(update):
            raise AutoReconnect("connection lost (injected)")
        return await update_one(self, query, update, **kw)

    # Plays blacklisted, then the note of what was applied fails.
    monkeypatch.setattr(AsyncCollection, "update_one", no_bookkeeping)
    await set_blacklist(hass, entry, [banned])
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    monkeypatch.setattr(AsyncCollection, "update_one", update_one)
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    blacklisted = await all_plays(mongo_db)
    assert [doc.get("blacklistedBy") for doc in blacklisted] == [
        ["artist"] if doc["primaryArtistId"] == banned else None for doc in before
    ]
    assert await assert_totals(hass, fake_spotify, mongo_db) == count - 9
    await assert_statistics_match(hass, entry, mongo_db)

    async def no_unset(self: AsyncCollection[Any], query: Any, update: Any, **kw: Any) -> Any:
        if "$unset" in update:
            raise AutoReconnect("connection lost (injected)")
        return await update_many(self, query, update, **kw)

    # "artist" pulled, then the arrays left empty cannot be removed.
    monkeypatch.setattr(AsyncCollection, "update_many", no_unset)
    await set_blacklist(hass, entry, [])
    assert [doc.get("blacklistedBy") for doc in await all_plays(mongo_db)] == [
        [] if doc["primaryArtistId"] == banned else None for doc in before
    ]
    monkeypatch.setattr(AsyncCollection, "update_many", update_many)
    await tick(hass)
    assert await all_plays(mongo_db) == before
    assert await assert_totals(hass, fake_spotify, mongo_db) == count
    await assert_statistics_match(hass, entry, mongo_db)


def play_doc(owner: ObjectId, track: Track, played_at: datetime, **extra: Any) -> dict[str, Any]:
    """A play as Your Spotify's looper stores it."""
    return {
        "owner": owner,
        "id": track.id,
        "albumId": track.album_id,
        "primaryArtistId": track.artist_ids[0],
        "artistIds": list(track.artist_ids),
        "durationMs": track.duration_ms,
        "played_at": played_at,
        **extra,
    }


async def test_your_spotifys_own_blacklist_is_never_undone(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An artist Your Spotify's list names stays blacklisted when our option drops it, and
    the plays Your Spotify blacklisted are never changed; our other artist is undone."""
    by_artist: dict[str, list[Track]] = {}
    for track in sorted(catalog.tracks.values(), key=lambda t: t.id):
        by_artist.setdefault(track.artist_ids[0], []).append(track)
    shared, ours, theirs, free = list(by_artist)[:4]
    owner = ObjectId()
    settings = {"blacklistedArtists": [theirs, shared], "nbElements": 25}
    await mongo_db["users"].insert_one(
        {"_id": owner, "spotifyId": fake_spotify.user_id, "lastTimestamp": 0, "settings": settings}
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    hour = timedelta(hours=1)
    yours = {"blacklistedBy": ["artist"]}
    docs = [
        play_doc(owner, by_artist[shared][0], start, **yours),  # Your Spotify blacklisted it
        play_doc(owner, by_artist[shared][0], start + hour),  # stored before it did
        play_doc(owner, by_artist[ours][0], start + 2 * hour),
        play_doc(owner, by_artist[ours][0], start + 3 * hour),
        play_doc(owner, by_artist[theirs][0], start + 4 * hour, **yours),
        play_doc(owner, by_artist[free][0], start + 5 * hour),
    ]
    await mongo_db["infos"].insert_many(docs)  # gives them their _id
    entry = await setup_entry()
    assert int(sensor_state(hass, fake_spotify, "total_plays")) == 4

    await set_blacklist(hass, entry, [shared, ours])
    assert [doc.get("blacklistedBy") for doc in await all_plays(mongo_db)] == [
        ["artist"],
        ["artist"],
        ["artist"],
        ["artist"],
        ["artist"],
        None,
    ]
    assert int(sensor_state(hass, fake_spotify, "total_plays")) == 1

    await set_blacklist(hass, entry, [])
    stored = await all_plays(mongo_db)
    assert [doc.get("blacklistedBy") for doc in stored] == [
        ["artist"],
        ["artist"],  # Your Spotify's list still names the artist
        None,
        None,
        ["artist"],
        None,
    ]
    assert without_blacklist(stored) == without_blacklist(docs)
    assert (stored[0], stored[4]) == (docs[0], docs[4])  # what Your Spotify blacklisted
    assert int(sensor_state(hass, fake_spotify, "total_plays")) == 3
    assert shared not in await top_artists(hass, entry)
    assert ours in await top_artists(hass, entry)
    user = await mongo_db["users"].find_one({"_id": owner})
    assert user is not None
    assert user["settings"]["blacklistedArtists"] == [theirs, shared]
    assert "Your Spotify's own blacklist lists them" in caplog.text


@pytest.mark.parametrize("pending", ["older", "all history"])
async def test_a_change_keeps_a_rebuild_already_pending(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    hass_storage: dict[str, Any],
    pending: str,
) -> None:
    """A blacklist change while the statistics still owe a rebuild (stopped before it ran):
    the rebuild the change asks for only widens the one pending, never narrows it."""
    banned, _ = listen(fake_spotify, catalog)
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # Plays stored behind the statistics' back, two days before the blacklisted ones.
    user = await mongo_db["users"].find_one({})
    assert user is not None
    track = next(iter(catalog.tracks.values()))
    older = dt_util.utcnow().replace(microsecond=0) - timedelta(days=2)
    await mongo_db["infos"].insert_many(
        [play_doc(user["_id"], track, older + timedelta(minutes=5 * i)) for i in range(6)]
    )
    marker = f"spotify_scrobbler.statistics.{entry.entry_id}"
    stale_since = older.isoformat() if pending == "older" else None
    hass_storage[marker] = {"version": 1, "data": {"stale_since": stale_since}}
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_BLACKLISTED_ARTISTS: [banned]}
    )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await mongo_db["infos"].count_documents({"blacklistedBy": ["artist"]}) == 9
    await assert_statistics_match(hass, entry, mongo_db)
    assert marker not in hass_storage


async def test_an_artist_blacklisted_when_the_user_was_created_can_be_removed(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The option seeds Your Spotify's list when we create the user document: removing the
    artist from the option later counts its plays again (it was never Your Spotify's)."""
    banned, count = listen(fake_spotify, catalog)
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert user["settings"]["blacklistedArtists"] == [banned]
    assert int(sensor_state(hass, fake_spotify, "total_plays")) == count - 9

    await set_blacklist(hass, entry, [])

    assert await mongo_db["infos"].count_documents({"blacklistedBy": {"$exists": True}}) == 0
    assert await assert_totals(hass, fake_spotify, mongo_db) == count
