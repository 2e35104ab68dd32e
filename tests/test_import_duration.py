"""durationMs of imported plays (issue 13): the track's length, as Your Spotify's importer stores.

Until the track is known an imported play counts its ``ms_played``; the enrichment (or the
import itself, when the track is stored already) gives it the track's length; ``ms_played``
stays in ``scrobbler_ms_played`` for the duplicate matching. Totals, the hourly statistics
and the ``top`` action follow MongoDB's ``durationMs`` at every step.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler import enrichment_runner, import_manager
from custom_components.spotify_scrobbler.engine import (
    export_reader,
    history_import,
    import_enrichment,
)
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher
from custom_components.spotify_scrobbler.statistics import statistic_ids

from .conftest import MongoDb
from .export_fake import music_entry, write_export
from .spotify_fake import Catalog, FakeSpotify, Play
from .test_import import START, attributes, run_import
from .test_scrobbling import sensor_state, tick
from .test_statistics import assert_statistics_match, recorded_rows
from .test_top import call_top

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
UNKNOWN = "0000000000000000000000"  # a track the fake Spotify does not know
Key = tuple[str, datetime]


@pytest.fixture(autouse=True)
def fast_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small segments, no enrichment budget wait, quick retries (as in test_import)."""
    monkeypatch.setattr(export_reader, "SEGMENT_ENTRIES", 40)
    monkeypatch.setattr(history_import, "INSERT_BATCH", 25)
    monkeypatch.setattr(import_enrichment, "ENRICH_INTERVAL", 0.0)
    monkeypatch.setattr(import_enrichment, "ENRICH_RETRY_DELAY", 0.01)
    monkeypatch.setattr(import_manager, "MONGO_RETRY_DELAY", 0.01)


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


@pytest.fixture
def export_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read."""
    folder = tmp_path / "my_spotify_data"
    folder.mkdir()
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return folder


@pytest.fixture
def blocked_enrichment(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Enrichment steps fail with a MongoDB error while ``["on"]`` (the runner defers)."""
    original = MetadataEnricher.step
    switch = {"on": True}

    async def step(self: MetadataEnricher) -> bool:
        if switch["on"]:
            raise AutoReconnect("enrichment held back by the test")
        return await original(self)

    monkeypatch.setattr(MetadataEnricher, "step", step)
    return switch


def listened(catalog: Catalog, track_id: str) -> int:
    """An ms_played shorter than the track (a play stopped early), >= 30 s."""
    track = catalog.tracks.get(track_id)
    return 95_000 if track is None else max(30_000, track.duration_ms - 25_000)


def length(catalog: Catalog, track_id: str, ms_played: int) -> int:
    """The track's length; ms_played for a track Spotify does not know."""
    track = catalog.tracks.get(track_id)
    return ms_played if track is None else track.duration_ms


def today_instant() -> datetime:
    """An instant of today (local), in whole seconds, before now."""
    now = dt_util.utcnow()
    since_midnight = now - dt_util.start_of_local_day()
    return (now - min(timedelta(hours=1), since_midnight / 2)).replace(microsecond=0)


async def imported_docs(mongo_db: MongoDb) -> dict[Key, dict[str, Any]]:
    """The imported play documents by (track, played_at)."""
    cursor = mongo_db["infos"].find({"scrobbler_ms_played": {"$exists": True}})
    return {(doc["id"], doc["played_at"]): doc async for doc in cursor}


async def mongo_listened_ms(mongo_db: MongoDb) -> int:
    """MongoDB's $sum of durationMs over counted plays: what Your Spotify's time charts add."""
    counted = {"blacklistedBy": {"$exists": False}}
    cursor = await mongo_db["infos"].aggregate(
        [{"$match": counted}, {"$group": {"_id": None, "ms": {"$sum": "$durationMs"}}}]
    )
    rows = await cursor.to_list()
    return int(rows[0]["ms"]) if rows else 0


async def top_listening(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, int]:
    """Listening ms per track, as the ``top`` action ranks them (all time)."""
    response = await call_top(
        hass, config_entry_id=entry.entry_id, period="all_time", order="listening_time", limit=50
    )
    return {e["id"]: e["listening_ms"] for e in response["tracks"]}


async def check_counts(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    per_play: dict[Key, int],
) -> None:
    """MongoDB, the statistics, the sensor and ``top`` all count ``per_play`` (ms per play)."""
    total = sum(per_play.values())
    assert await mongo_listened_ms(mongo_db) == total
    await assert_statistics_match(hass, entry, mongo_db)
    _, minutes_id = statistic_ids(entry)
    assert (await recorded_rows(hass, minutes_id))[-1][2] == pytest.approx(total / 60_000)
    midnight = dt_util.start_of_local_day()
    today = sum(ms for (_, at), ms in per_play.items() if at >= midnight)
    want = round(today / 60_000, 2)
    assert float(sensor_state(hass, fake_spotify, "listening_time_today")) == pytest.approx(want)
    by_track: dict[str, int] = {}
    for (track_id, _), ms in per_play.items():
        by_track[track_id] = by_track.get(track_id, 0) + ms
    assert await top_listening(hass, entry) == by_track


async def test_imported_plays_count_ms_played_until_enriched_then_the_track_length(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    blocked_enrichment: dict[str, bool],
) -> None:
    """ms_played while the track is unknown, its length once enriched, everywhere at once."""
    tracks = sorted(catalog.tracks)[:4]
    ends = [(t, START + timedelta(minutes=10 * i)) for i, t in enumerate(tracks)]
    ends += [(tracks[0], START + timedelta(hours=2)), (UNKNOWN, START + timedelta(hours=3))]
    today = (tracks[1], today_instant())
    ends.append(today)
    played = {(t, end): listened(catalog, t) for t, end in ends}
    write_export(
        export_dir, [music_entry(catalog, t, end, ms) for (t, end), ms in played.items()], 100
    )
    entry = await setup_entry()

    await run_import(hass, entry, export_dir)

    assert attributes(hass)["imported"] == len(played)
    assert attributes(hass)["tracks_to_enrich"] > 0  # held back
    docs = await imported_docs(mongo_db)
    assert set(docs) == set(played)
    for key, doc in docs.items():
        assert (doc["durationMs"], doc["scrobbler_ms_played"]) == (played[key], played[key])
        assert doc["primaryArtistId"] is None
    await check_counts(hass, entry, fake_spotify, mongo_db, played)

    blocked_enrichment["on"] = False
    await tick(hass)  # a cycle reaching MongoDB restarts the deferred enrichment

    assert attributes(hass)["tracks_to_enrich"] == 0
    docs = await imported_docs(mongo_db)
    lengths = {key: length(catalog, key[0], ms) for key, ms in played.items()}
    for key, doc in docs.items():
        assert doc["durationMs"] == lengths[key], key
        assert doc["scrobbler_ms_played"] == played[key], key
        assert (doc["primaryArtistId"] is None) == (key[0] == UNKNOWN)
    await check_counts(hass, entry, fake_spotify, mongo_db, lengths)

    # The duplicate matching still reads ms_played: the same export again adds nothing, and
    # Spotify's live start-stamped report of today's play is that play (a new one is stored).
    await run_import(hass, entry, export_dir)
    assert (attributes(hass)["imported"], attributes(hass)["duplicates"]) == (0, len(played))
    start = today[1] - timedelta(milliseconds=played[today])
    new = catalog.tracks[tracks[2]]
    new_at = (dt_util.utcnow() - timedelta(seconds=5)).replace(microsecond=0)
    fake_spotify.add_plays([Play(start, catalog.tracks[today[0]]), Play(new_at, new)])
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == len(played) + 1
    lengths[new.id, new_at] = new.duration_ms
    await check_counts(hass, entry, fake_spotify, mongo_db, lengths)


async def test_a_stored_track_gives_its_length_at_import(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    blocked_enrichment: dict[str, bool],
) -> None:
    """A track the scrobbler stored in full: its imported plays need no enrichment at all."""
    track = min(catalog.tracks.values(), key=lambda t: t.id)
    live_at = dt_util.utcnow() - timedelta(minutes=20)
    fake_spotify.add_plays([Play(live_at.replace(microsecond=0), track)])
    entry = await setup_entry()
    ms_played = listened(catalog, track.id)
    write_export(export_dir, [music_entry(catalog, track.id, START, ms_played)], 100)

    await run_import(hass, entry, export_dir)

    doc = await mongo_db["infos"].find_one({"scrobbler_ms_played": {"$exists": True}})
    assert doc is not None
    assert (doc["durationMs"], doc["scrobbler_ms_played"]) == (track.duration_ms, ms_played)
    assert doc["primaryArtistId"] == track.artist_ids[0]
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == 0


async def test_plays_imported_by_older_versions_get_the_track_length(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enriched plays with durationMs = ms_played are fixed once, from the stored tracks.

    Only documents carrying scrobbler_ms_played change; no Spotify request is made.
    """
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)[:3]
    live = Play((dt_util.utcnow() - timedelta(minutes=20)).replace(microsecond=0), tracks[0])
    fake_spotify.add_plays([live])
    entry = await setup_entry()
    played = {
        (t.id, START + timedelta(minutes=10 * i)): listened(catalog, t.id)
        for i, t in enumerate(tracks)
    }
    write_export(
        export_dir, [music_entry(catalog, t, end, ms) for (t, end), ms in played.items()], 100
    )
    await run_import(hass, entry, export_dir)
    # What an older version left: ids filled in, durationMs the export's ms_played, no flag;
    # and another program's play of one of the tracks with a durationMs of its own.
    for doc in (await imported_docs(mongo_db)).values():
        await mongo_db["infos"].update_one(
            {"_id": doc["_id"]}, {"$set": {"durationMs": doc["scrobbler_ms_played"]}}
        )
    await mongo_db["users"].update_many({}, {"$unset": {"scrobbler.import_durations_queued": ""}})
    await mongo_db["infos"].update_one(
        {"scrobbler_ms_played": {"$exists": False}}, {"$set": {"durationMs": 1234}}
    )
    rebuilt: list[datetime | None] = []

    async def refresh(hass: HomeAssistant, entry: Any, since: datetime | None) -> None:
        rebuilt.append(since)

    monkeypatch.setattr(enrichment_runner, "async_refresh_statistics", refresh)
    fake_spotify.reset_log()

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    docs = await imported_docs(mongo_db)
    for key, doc in docs.items():
        track = catalog.tracks[key[0]]
        assert (doc["durationMs"], doc["scrobbler_ms_played"]) == (track.duration_ms, played[key])
    other = await mongo_db["infos"].find_one({"scrobbler_ms_played": {"$exists": False}})
    assert other is not None
    assert other["durationMs"] == 1234  # not ours: never changed
    assert fake_spotify.calls("/v1/tracks") == []
    assert rebuilt == [START]  # statistics follow, from the oldest play re-timed
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == 0
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert user["scrobbler"]["import_durations_queued"] is True

    # Once per account: a later start queues nothing (and finds nothing to change).
    rebuilt.clear()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert rebuilt == []
    assert await imported_docs(mongo_db) == docs
