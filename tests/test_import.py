"""spotify_scrobbler.import_history: exact stored set, re-import, resume, overlap, enrichment."""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.spotify_scrobbler import import_manager
from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from custom_components.spotify_scrobbler.engine import (
    export_reader,
    history_import,
    import_enrichment,
)
from custom_components.spotify_scrobbler.engine import spotify as spotify_module
from custom_components.spotify_scrobbler.engine.history_import import HistoryImporter, SegmentResult
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher

from .conftest import MongoDb
from .export_fake import MALFORMED, GeneratedExport, generate_export, music_entry, write_export
from .rollup_check import assert_rollups_exact
from .spotify_fake import Catalog, FakeSpotify, Play
from .test_scrobbling import play_recently, stored_plays

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
SENSOR = "sensor.scrobbler_test_history_import"


@pytest.fixture(autouse=True)
def fast_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small segments (several per file), no enrichment budget wait, quick retries."""
    monkeypatch.setattr(export_reader, "SEGMENT_ENTRIES", 40)
    monkeypatch.setattr(history_import, "INSERT_BATCH", 25)
    monkeypatch.setattr(import_enrichment, "ENRICH_INTERVAL", 0.0)
    monkeypatch.setattr(import_enrichment, "ENRICH_RETRY_DELAY", 0.01)
    monkeypatch.setattr(import_manager, "MONGO_RETRY_DELAY", 0.01)


@pytest.fixture
def export_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read."""
    folder = tmp_path / "my_spotify_data"
    folder.mkdir()
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return folder


async def run_import(hass: HomeAssistant, entry: MockConfigEntry, path: Path | str) -> None:
    """Call the action and wait until the import and its enrichment are done."""
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(path)},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)


def as_set(stored: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
    """The stored plays as a set, after checking there is no duplicate."""
    assert len(stored) == len(set(stored))
    return set(stored)


def attributes(hass: HomeAssistant) -> dict[str, Any]:
    """The import sensor's attributes."""
    state = hass.states.get(SENSOR)
    assert state is not None
    return dict(state.attributes)


async def notifications(hass: HomeAssistant, ws: WebSocketGenerator) -> dict[str, Any]:
    """Persistent notifications by id, through the websocket API."""
    client = await ws(hass)
    await client.send_json_auto_id({"type": "persistent_notification/get"})
    answer = await client.receive_json()
    return {n["notification_id"]: n for n in answer["result"]}


def small_export(catalog: Catalog, plays: int = 120, seed: int = 5) -> GeneratedExport:
    """Noise included; catalogue tracks only (the fake Spotify knows them)."""
    return generate_export(catalog, START, plays, seed=seed)


async def test_import_stores_exactly_the_music_plays(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """Plays >= 30 s of tracks are stored once; the rest is counted by reason; re-import adds 0."""
    assert await async_setup_component(hass, "persistent_notification", {})
    export = small_export(catalog)
    write_export(export_dir, export.entries, per_file=70)
    (export_dir / "ReadMeFirst_ExtendedStreamingHistory.pdf").write_bytes(b"%PDF")
    entry = await setup_entry()
    assert hass.states.get(SENSOR).state == "unknown"  # type: ignore[union-attr]

    await run_import(hass, entry, export_dir)

    assert as_set(await stored_plays(mongo_db)) == export.expected
    assert hass.states.get(SENSOR).state == "100.0"  # type: ignore[union-attr]
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["files"] == attrs["files_done"] == 2
    assert attrs["read"] == len(export.entries)
    assert attrs["imported"] == len(export.expected)
    assert attrs["duplicates"] == export.duplicates
    assert {k: v for k, v in attrs["skipped"].items() if v} == export.skipped
    assert attrs["tracks_to_enrich"] == 0
    # The totals are re-counted once the import is done.
    total = hass.states.get("sensor.scrobbler_test_total_plays")
    assert total is not None
    assert total.state == str(len(export.expected))
    note = (await notifications(hass, hass_ws_client))[f"{DOMAIN}_import_{entry.entry_id}"]
    assert f"**{len(export.expected)}** plays imported from 2 file(s)" in note["message"]
    assert f"podcast episodes: {export.skipped['podcast']}" in note["message"]

    # Metadata: names from the file at once, ids filled by the background enrichment.
    track_id, _ = min(export.expected)
    track = catalog.tracks[track_id]
    doc = await mongo_db["infos"].find_one({"id": track_id})
    assert doc is not None
    assert doc["albumId"] == track.album_id
    assert doc["artistIds"] == list(track.artist_ids)
    assert doc["primaryArtistId"] == track.artist_ids[0]
    stored_track = await mongo_db["tracks"].find_one({"id": track_id})
    assert stored_track is not None
    assert stored_track["name"] == track.name
    assert "scrobbler_stub" not in stored_track
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0
    assert await mongo_db["artists"].count_documents({"genres": {"$exists": True}}) == len(
        {a for t, _ in export.expected for a in catalog.tracks[t].artist_ids}
    )
    # Set play by play by the import and the enrichment: true without a rebuild.
    await assert_rollups_exact(hass, entry, mongo_db, kept_true=True)

    # The same export again: nothing new, everything a duplicate, no Spotify request.
    fake_spotify.reset_log()
    await run_import(hass, entry, export_dir)
    assert as_set(await stored_plays(mongo_db)) == export.expected
    attrs = attributes(hass)
    assert attrs["imported"] == 0
    assert attrs["duplicates"] == len(export.expected) + export.duplicates
    assert fake_spotify.calls("/v1/tracks") == []
    assert fake_spotify.calls("/v1/artists") == []


async def test_import_skips_plays_the_live_loop_stored(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """Live plays (ms precision) and the export's (whole seconds, a few s off) are one play."""
    live = play_recently(fake_spotify, catalog, [(0, 30.0), (1, 25.0), (2, 20.0), (3, 15.0)])
    entry = await setup_entry()
    stored_live = as_set(await stored_plays(mongo_db))
    assert len(stored_live) == 4

    entries = [
        music_entry(catalog, p.track.id, p.played_at + timedelta(seconds=shift), 120_000)  # type: ignore[union-attr]
        for p, shift in zip(live, (-3, 0, 2, 29), strict=True)
    ]
    first = live[0].played_at.replace(microsecond=0)
    new = [
        (sorted(catalog.tracks)[10], first - timedelta(hours=3)),
        (sorted(catalog.tracks)[11], first - timedelta(hours=2)),
        # The same track as a live play but 31 s later: a play of its own.
        (live[1].track.id, live[1].played_at.replace(microsecond=0) + timedelta(seconds=31)),  # type: ignore[union-attr]
    ]
    entries += [music_entry(catalog, track_id, at, 200_000) for track_id, at in new]
    write_export(export_dir, entries, per_file=100)

    await run_import(hass, entry, export_dir / "Streaming_History_Audio_2024_0.json")

    assert as_set(await stored_plays(mongo_db)) == stored_live | set(new)
    assert attributes(hass)["imported"] == 3
    assert attributes(hass)["duplicates"] == 4

    # The next live cycles add nothing either.
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert as_set(await stored_plays(mongo_db)) == stored_live | set(new)
    await assert_rollups_exact(hass, entry, mongo_db, kept_true=True)


async def test_interrupted_import_resumes_after_setup(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unload in the middle of an import; the next setup continues it: exact set."""
    export = small_export(catalog, plays=150, seed=9)
    write_export(export_dir, export.entries, per_file=90)
    entry = await setup_entry()

    original = HistoryImporter.import_entries
    calls = 0
    blocked = asyncio.Event()

    async def stalling(self: HistoryImporter, entries: list[Any]) -> SegmentResult:
        nonlocal calls
        calls += 1
        if calls == 3:  # the third segment never completes: the unload cancels it
            blocked.set()
            await asyncio.Event().wait()
        return await original(self, entries)

    monkeypatch.setattr(HistoryImporter, "import_entries", stalling)
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(export_dir)},
        blocking=True,
    )
    await blocked.wait()
    halfway = await stored_plays(mongo_db)
    assert 0 < len(halfway) < len(export.expected)
    assert hass.states.get(SENSOR).state not in ("100.0", "unknown")  # type: ignore[union-attr]

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    monkeypatch.setattr(HistoryImporter, "import_entries", original)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert as_set(await stored_plays(mongo_db)) == export.expected
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["read"] == len(export.entries)
    assert attrs["imported"] == len(export.expected)


async def test_mongodb_failures_are_retried_then_reported(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A MongoDB blip is retried; a lasting failure stops the import, calling again resumes."""
    assert await async_setup_component(hass, "persistent_notification", {})
    export = small_export(catalog, plays=100, seed=13)
    write_export(export_dir, export.entries, per_file=1000)
    entry = await setup_entry()

    original = HistoryImporter.import_entries
    failures = {"left": 1, "at_call": 2}
    calls = 0

    async def flaky(self: HistoryImporter, entries: list[Any]) -> SegmentResult:
        nonlocal calls
        calls += 1
        if calls >= failures["at_call"] and failures["left"] > 0:
            failures["left"] -= 1
            raise AutoReconnect("connection reset")
        return await original(self, entries)

    monkeypatch.setattr(HistoryImporter, "import_entries", flaky)
    await run_import(hass, entry, export_dir)
    assert as_set(await stored_plays(mongo_db)) == export.expected

    await mongo_db["infos"].delete_many({})
    calls, failures["left"] = 0, import_manager.MONGO_ATTEMPTS
    await run_import(hass, entry, export_dir)
    assert attributes(hass)["status"] == "failed"
    assert "connection reset" in attributes(hass)["error"]
    note = (await notifications(hass, hass_ws_client))[f"{DOMAIN}_import_{entry.entry_id}"]
    assert "Run the action again with the same path" in note["message"]

    await run_import(hass, entry, export_dir)
    assert as_set(await stored_plays(mongo_db)) == export.expected
    assert attributes(hass)["status"] == "finished"


async def test_import_validates_its_input(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    tmp_path: Path,
) -> None:
    """Paths outside the allowed folders, folders without export files, and files that are
    not an export (a JSON array) are refused; nothing is imported."""
    entry = await setup_entry()
    hass.config.allowlist_external_dirs = {str(export_dir)}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_export(outside, [], per_file=1)
    for path, key in (
        (outside, "import_path_not_allowed"),
        ("/etc/passwd", "import_path_not_allowed"),
        (export_dir, "import_no_files"),
        (export_dir / "missing.json", "import_no_files"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "import_history",
                {"config_entry_id": entry.entry_id, "path": str(path)},
                blocking=True,
            )
        assert err.value.translation_key == key
        if key == "import_path_not_allowed":  # names where the export may go instead
            assert err.value.translation_placeholders["allowed"] == str(export_dir)

    # Files that are not an export. A folder with one of them is refused as a whole.
    valid = generate_export(catalog, START, 5, seed=3, noise=False)
    mixed = export_dir / "mixed"
    write_export(mixed, valid.entries, per_file=100)
    (mixed / "Streaming_History_Audio_2020.json").write_text("{}", encoding="utf-8")
    bad_files = {
        "page.json": b"<!DOCTYPE html><html><body>Sign in</body></html>",
        "empty.json": b"",
        "blank.json": b"\n  \n",
        "archive.json": b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xb7\xac",
        "latin1.json": '[{"ts": "2024-01-01T10:00:00Z", "x": "café"}]'.encode("latin-1"),
        "broken.json": b'[{"ts": "2024-01-01T10:00:00Z", ',
    }
    for name, content in bad_files.items():
        (export_dir / name).write_bytes(content)
    cases = [(export_dir / name, name) for name in bad_files]
    cases.append((mixed, "Streaming_History_Audio_2020.json"))
    for path, name in cases:
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "import_history",
                {"config_entry_id": entry.entry_id, "path": str(path)},
                blocking=True,
            )
        assert err.value.translation_key == "import_bad_file", name
        assert err.value.translation_placeholders is not None
        assert err.value.translation_placeholders["path"] == name
        assert err.value.translation_placeholders["error"]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await stored_plays(mongo_db) == []
    assert entry.runtime_data.importer.progress is None
    assert hass.states.get(SENSOR).state == "unknown"  # type: ignore[union-attr]

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "import_history",
            {"config_entry_id": "nope", "path": str(export_dir)},
            blocking=True,
        )
    assert err.value.translation_key == "unknown_entry"


async def test_two_imports_started_at_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """Two calls at the same moment: one import runs, the other call is refused."""
    export = small_export(catalog, plays=80, seed=31)
    write_export(export_dir, export.entries, per_file=1000)
    entry = await setup_entry()

    async def call() -> None:
        await hass.services.async_call(
            DOMAIN,
            "import_history",
            {"config_entry_id": entry.entry_id, "path": str(export_dir)},
            blocking=True,
        )

    results = await asyncio.gather(call(), call(), return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], ServiceValidationError)
    assert errors[0].translation_key == "import_running"
    await hass.async_block_till_done(wait_background_tasks=True)

    assert as_set(await stored_plays(mongo_db)) == export.expected
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["read"] == len(export.entries)
    assert attrs["imported"] == len(export.expected)


async def test_checkpoint_follows_after_insert(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A segment whose _after_insert fails is not checkpointed; the next run completes it."""
    export = small_export(catalog, plays=100, seed=17)
    (path,) = write_export(export_dir, export.entries, per_file=1000)
    first_segment_end = export_reader.read_segment(str(path), 0).end_offset
    entry = await setup_entry()
    manager = entry.runtime_data.importer
    original = import_manager.HistoryImportManager._after_insert
    calls: list[datetime] = []

    async def failing(
        self: import_manager.HistoryImportManager, oldest: datetime, newest: datetime
    ) -> None:
        calls.append(oldest)
        if len(calls) > 1:  # the second segment's: every attempt fails
            raise AutoReconnect("users collection unreachable")
        await original(self, oldest, newest)

    monkeypatch.setattr(import_manager.HistoryImportManager, "_after_insert", failing)
    await run_import(hass, entry, export_dir)

    assert len(calls) == 1 + import_manager.MONGO_ATTEMPTS
    stored = json.loads(json.dumps(hass_storage[f"{DOMAIN}.import.{entry.entry_id}"]["data"]))
    for progress in (stored, manager.progress):
        assert progress["state"] == "failed"
        assert progress["files"][0]["offset"] == first_segment_end
        assert not progress["files"][0]["done"]
        assert progress["counts"]["read"] == export_reader.SEGMENT_ENTRIES
        assert progress["after_insert"] is not None
    assert 0 < len(await stored_plays(mongo_db)) < len(export.expected)

    # The unfinished _after_insert runs first; the segment's re-run finds its plays stored.
    calls.clear()
    monkeypatch.setattr(import_manager.HistoryImportManager, "_after_insert", original)
    await mongo_db["users"].update_many({}, {"$unset": {"firstListenedAt": ""}})
    real_complete = import_manager.HistoryImportManager._complete_after_insert
    completed: list[Any] = []

    async def complete(self: import_manager.HistoryImportManager, progress: Any) -> None:
        completed.append(progress.get("after_insert"))
        await real_complete(self, progress)

    monkeypatch.setattr(import_manager.HistoryImportManager, "_complete_after_insert", complete)
    await run_import(hass, entry, export_dir)

    assert completed[0] == stored["after_insert"]
    assert as_set(await stored_plays(mongo_db)) == export.expected
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["read"] == len(export.entries)  # the re-run segment is counted once
    assert attrs["imported"] + attrs["duplicates"] == len(export.expected) + export.duplicates
    user = await mongo_db["users"].find_one({})
    assert user is not None
    # Set again by the completed _after_insert (its segment's re-run inserts nothing).
    assert user["firstListenedAt"] == datetime.fromisoformat(stored["after_insert"][0])
    assert hass_storage[f"{DOMAIN}.import.{entry.entry_id}"]["data"]["after_insert"] is None


async def test_broken_file_keeps_what_was_readable(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """A file cut off in the middle: its complete entries are imported, the error reported."""
    assert await async_setup_component(hass, "persistent_notification", {})
    export = generate_export(catalog, START, 30, seed=2, noise=False)
    text = json.dumps(export.entries, indent=2)
    cut = text.rindex('"ts"')  # inside the last entry
    path = export_dir / "Streaming_History_Audio_2024_0.json"
    path.write_text(text[:cut], encoding="utf-8")
    entry = await setup_entry()

    await run_import(hass, entry, path)

    last = max(export.expected, key=lambda key: key[1])
    assert as_set(await stored_plays(mongo_db)) == export.expected - {last}
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["imported"] == len(export.expected) - 1
    note = (await notifications(hass, hass_ws_client))[f"{DOMAIN}_import_{entry.entry_id}"]
    assert "Could not read Streaming_History_Audio_2024_0.json" in note["message"]


async def test_enrichment_survives_rate_limits_and_unknown_tracks(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """429s pause the enrichment (long ones end the request), it resumes; 404 ids stay null."""
    monkeypatch.setattr(spotify_module, "MAX_INLINE_RETRY_AFTER", 0.5)
    tracks = sorted(catalog.tracks)[:6]
    unknown = "0000000000000000000000"
    blacklisted = catalog.tracks[tracks[0]].artist_ids[0]
    entries = [
        music_entry(catalog, track_id, START + timedelta(minutes=5 * i), 100_000)
        for i, track_id in enumerate([*tracks, unknown])
    ]
    write_export(export_dir, entries, per_file=100)
    fake_spotify.inject("/v1/tracks/", status=429, headers={"Retry-After": "1"}, times=2)
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [blacklisted]})
    fake_spotify.reset_log()

    await run_import(hass, entry, export_dir)

    for track_id in tracks:
        track = catalog.tracks[track_id]
        doc = await mongo_db["infos"].find_one({"id": track_id})
        assert doc is not None
        assert (doc["albumId"], doc["artistIds"]) == (track.album_id, list(track.artist_ids))
        assert ("blacklistedBy" in doc) == (track.artist_ids[0] == blacklisted)
    doc = await mongo_db["infos"].find_one({"id": unknown})
    assert doc is not None
    assert doc["albumId"] is None
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == 0
    # One request per track (single-id endpoint after one refused batch call) plus the 429s.
    track_calls = [c.path for c in fake_spotify.calls("/v1/tracks")]
    assert len([p for p in track_calls if p.startswith("/v1/tracks/")]) == len(tracks) + 1 + 2
    assert attributes(hass)["tracks_to_enrich"] == 0


async def test_enrichment_interrupted_mid_flush_loses_nothing(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plays deleted for their replacement but not re-inserted yet come back from staging."""
    export = small_export(catalog, plays=60, seed=21)
    write_export(export_dir, export.entries, per_file=1000)
    original = MetadataEnricher._finish_staged
    crashed: list[int] = []

    async def crash_once(self: MetadataEnricher) -> None:
        staged = await self.staging.count_documents({})
        if staged and not crashed:  # after the delete, before the re-insert
            crashed.append(staged)
            assert await mongo_db["infos"].count_documents({}) < len(export.expected)
            raise AutoReconnect("MongoDB went away")
        await original(self)

    monkeypatch.setattr(MetadataEnricher, "_finish_staged", crash_once)
    entry = await setup_entry()

    await run_import(hass, entry, export_dir)

    assert crashed
    assert as_set(await stored_plays(mongo_db)) == export.expected
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0
    assert await mongo_db["scrobbler_import_staging"].count_documents({}) == 0
    # Which staged copies went back is not known: the rollups are rebuilt, exact again.
    await assert_rollups_exact(hass, entry, mongo_db, kept_true=False)


def exported_at_their_instants(catalog: Catalog, plays: Sequence[Play]) -> list[dict[str, Any]]:
    """Export entries of live plays, ``ts`` their instant in whole seconds, 150 s listened."""
    return [
        music_entry(catalog, p.track.id, p.played_at.replace(microsecond=0), 150_000)  # type: ignore[union-attr]
        for p in plays
    ]


async def test_import_reaching_the_live_window_keeps_live_dedup(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """Imported plays newer than the last scrobbled one are not scrobbled a second time."""
    entry = await setup_entry()
    recent = play_recently(fake_spotify, catalog, [(4, 12.0), (5, 8.0), (6, 4.0)])
    write_export(export_dir, exported_at_their_instants(catalog, recent), per_file=10)

    await run_import(hass, entry, export_dir)
    imported = as_set(await stored_plays(mongo_db))
    assert len(imported) == 3

    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert as_set(await stored_plays(mongo_db)) == imported


async def test_import_reaching_the_live_window_leaves_the_cursor_across_a_restart(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """The cursor stays for the plays no cycle has read; the imported ones are known after
    a restart all the same (MongoDB keeps how far the import stored)."""
    entry = await setup_entry()
    recent = play_recently(fake_spotify, catalog, [(4, 12.0), (5, 8.0), (6, 4.0)])
    write_export(export_dir, exported_at_their_instants(catalog, recent[1:]), per_file=10)
    await run_import(hass, entry, export_dir)
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert user.get("lastTimestamp", 0) == 0
    assert user["scrobbler"]["importedUntil"] > 0

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    # The unread oldest play is stored by the live loop, the imported two not again.
    assert await mongo_db["infos"].count_documents({}) == 3


async def test_enrichment_pauses_on_lasting_mongodb_failure_and_resumes(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enrichment gives up while MongoDB keeps failing and starts again after a good cycle."""
    export = small_export(catalog, plays=20, seed=4)
    write_export(export_dir, export.entries, per_file=1000)
    original = MetadataEnricher.step
    failing = True

    async def step(self: MetadataEnricher) -> bool:
        if failing:
            raise AutoReconnect("MongoDB went away")
        return await original(self)

    monkeypatch.setattr(MetadataEnricher, "step", step)
    entry = await setup_entry()
    await run_import(hass, entry, export_dir)
    assert attributes(hass)["tracks_to_enrich"] > 0

    failing = False
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert attributes(hass)["tracks_to_enrich"] == 0
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0


async def test_every_malformed_entry_is_skipped(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
) -> None:
    """Each kind of malformed entry (dates of year 1 and 9999 included) is counted, not fatal."""
    export = generate_export(catalog, START, 5, seed=3, noise=False)
    entries = [*MALFORMED, *export.entries, *MALFORMED]
    write_export(export_dir, entries, per_file=len(entries))
    entry = await setup_entry()

    await run_import(hass, entry, export_dir)

    assert as_set(await stored_plays(mongo_db)) == export.expected
    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert attrs["skipped"]["malformed"] == 2 * len(MALFORMED)


async def test_notice_names_the_plays_of_blacklisted_artists(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    export_dir: Path,
) -> None:
    """Imported plays of a blacklisted artist (its track already stored in full) are stored
    but not counted: the notice says how many, and the total rises by the others only."""
    assert await async_setup_component(hass, "persistent_notification", {})
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)
    banned = tracks[0]
    others = [t for t in tracks if t.artist_ids[0] != banned.artist_ids[0]][:3]
    play_recently(fake_spotify, catalog, [(tracks.index(banned), 30.0)])
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned.artist_ids[0]]})
    total = hass.states.get("sensor.scrobbler_test_total_plays")
    assert total is not None
    assert total.state == "0"
    entries = [
        music_entry(catalog, track.id, START + timedelta(minutes=5 * i), 100_000)
        for i, track in enumerate([banned, *others, banned])
    ]
    write_export(export_dir, entries, per_file=100)

    await run_import(hass, entry, export_dir)

    assert attributes(hass)["imported"] == 5
    total = hass.states.get("sensor.scrobbler_test_total_plays")
    assert total is not None
    assert total.state == "3"
    note = (await notifications(hass, hass_ws_client))[f"{DOMAIN}_import_{entry.entry_id}"]
    assert "**5** plays imported" in note["message"]
    assert "Of them, 2 are plays of blacklisted artists" in note["message"]
