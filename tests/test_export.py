"""spotify_scrobbler.export_history: Spotify's format, exact round trip, period, refusals."""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from bson.datetime_ms import DatetimeMS
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.spotify_scrobbler import export_manager, import_manager
from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from custom_components.spotify_scrobbler.engine import (
    export_reader,
    export_writer,
    history_export,
    history_import,
    import_enrichment,
)
from custom_components.spotify_scrobbler.engine.history_export import EntryNames, NameLookup
from custom_components.spotify_scrobbler.engine.payload import parse_time

from .conftest import MongoDb
from .export_fake import generate_export, music_entry, write_export
from .spotify_fake import Catalog, FakeSpotify
from .test_import import notifications, run_import
from .test_scrobbling import play_recently

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
Key = tuple[str, datetime]
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
SENSOR = "sensor.scrobbler_test_history_export"
BATCH = 7  # plays per cursor batch in these tests
PER_FILE = 25
UNKNOWN_TRACK = "0000000000000000000000"  # not in the catalogue: Spotify answers 404
# Every key of an entry of Spotify's own files, in their order.
SPOTIFY_KEYS = [
    "ts",
    "platform",
    "ms_played",
    "conn_country",
    "ip_addr",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
]
FILE_NAME = re.compile(r"Streaming_History_Audio_(\d{4})(?:-(\d{4}))?_(\d+)\.json")


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several cursor batches and files per export; a quick import and enrichment."""
    monkeypatch.setattr(history_export, "READ_BATCH", BATCH)
    monkeypatch.setattr(export_writer, "FILE_ENTRIES", PER_FILE)
    monkeypatch.setattr(export_manager, "MONGO_RETRY_DELAY", 0.01)
    monkeypatch.setattr(export_reader, "SEGMENT_ENTRIES", 40)
    monkeypatch.setattr(history_import, "INSERT_BATCH", 25)
    monkeypatch.setattr(import_enrichment, "ENRICH_INTERVAL", 0.0)
    monkeypatch.setattr(import_enrichment, "ENRICH_RETRY_DELAY", 0.01)
    monkeypatch.setattr(import_manager, "MONGO_RETRY_DELAY", 0.01)


@pytest.fixture
def allowed(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read and write."""
    hass.config.allowlist_external_dirs = {str(tmp_path / "allowed")}
    (tmp_path / "allowed").mkdir()
    return tmp_path / "allowed"


async def owner_of(mongo_db: MongoDb, spotify_id: str) -> ObjectId:
    """The users document's id of an account."""
    user = await mongo_db["users"].find_one({"spotifyId": spotify_id})
    assert user is not None
    return user["_id"]  # type: ignore[no-any-return]


async def plays_of(mongo_db: MongoDb, owner: ObjectId, **query: Any) -> set[Key]:
    """(track id, played_at) of an account's stored plays, checked to hold no duplicate."""
    cursor = mongo_db["infos"].find({"owner": owner, **query}, {"id": 1, "played_at": 1})
    pairs = [(doc["id"], doc["played_at"]) async for doc in cursor]
    assert len(pairs) == len(set(pairs))
    return set(pairs)


SpokenKey = tuple[datetime, int, str | None, str | None, str | None]


def spoken_key(entry: dict[str, Any]) -> SpokenKey:
    """What identifies a spoken entry: time, ms_played, the item's uri and title."""
    moment = parse_time(entry["ts"])
    assert moment is not None
    title = entry.get("episode_name") or entry.get("audiobook_chapter_title")
    return (
        moment,
        entry["ms_played"],
        entry.get("spotify_episode_uri"),
        entry.get("audiobook_chapter_uri"),
        title,
    )


def split_spoken(
    entries: list[dict[str, Any]], spoken_docs: list[SpokenKey], names: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(music entries, spoken entries): the spoken ones last, in files of their own, exactly
    the kept ones."""
    music = [e for e in entries if e["spotify_track_uri"] is not None]
    spoken = [e for e in entries if e["spotify_track_uri"] is None]
    assert spoken_docs
    assert entries == music + spoken
    assert sorted(map(spoken_key, spoken)) == sorted(spoken_docs)
    assert len(names) == -(-len(music) // PER_FILE) + -(-len(spoken) // PER_FILE)
    return music, spoken


async def spoken_of(mongo_db: MongoDb, owner: ObjectId) -> list[SpokenKey]:
    """The account's kept spoken plays (checked to hold no duplicate)."""
    cursor = mongo_db["scrobbler_spoken_plays"].find({"owner": owner})
    keys = [
        spoken_key({**doc, "ts": doc["ts"].isoformat().replace("+00:00", "Z")})
        async for doc in cursor
    ]
    assert len(keys) == len(set(keys))
    return sorted(keys, key=lambda key: (key[0], key[2] or key[3] or ""))


async def build_source(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    folder: Path,
) -> tuple[MockConfigEntry, ObjectId, str]:
    """An account with live plays, imported plays (one of a track Spotify does not know),
    plays of a blacklisted artist and a live play of a 20 s track; returns the artist."""
    tracks = sorted(catalog.tracks)
    blacklisted = catalog.tracks[tracks[2]].artist_ids[0]
    play_recently(fake, catalog, [(0, 40.0), (1, 36.0), (2, 31.0), (0, 25.0), (3, 20.0)])
    export = generate_export(catalog, START, 70, seed=3, track_ids=tracks[:40])
    export.entries += [
        music_entry(catalog, tracks[2], START - timedelta(days=1), 150_000),
        music_entry(catalog, UNKNOWN_TRACK, START - timedelta(days=2), 90_000),
    ]
    write_export(folder, export.entries, per_file=1000)
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [blacklisted]})
    await run_import(hass, entry, folder)
    owner = await owner_of(mongo_db, fake.user_id)
    short = catalog.tracks[tracks[5]]
    # A live play (no scrobbler_ms_played) of a track shorter than 30 s, as another
    # scrobbler could have stored it.
    await mongo_db["infos"].insert_one(
        {
            "owner": owner,
            "id": short.id,
            "albumId": short.album_id,
            "primaryArtistId": short.artist_ids[0],
            "artistIds": list(short.artist_ids),
            "durationMs": 20_000,
            "played_at": START - timedelta(days=3, milliseconds=-321),
        }
    )
    return entry, owner, blacklisted


async def export(hass: HomeAssistant, entry: MockConfigEntry, path: Path, **data: Any) -> None:
    """Call the action and wait for the export to finish."""
    await hass.services.async_call(
        DOMAIN,
        "export_history",
        {"config_entry_id": entry.entry_id, "path": str(path), **data},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)


def read_export(folder: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """File names (in index order) and all entries; checks names, years and file sizes."""
    names = sorted(
        (p.name for p in folder.iterdir()),
        key=lambda name: int(FILE_NAME.fullmatch(name).group(3)),  # type: ignore[union-attr]
    )
    entries: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        match = FILE_NAME.fullmatch(name)
        assert match is not None, name
        assert int(match.group(3)) == index
        content = json.loads((folder / name).read_text(encoding="utf-8"))
        assert isinstance(content, list)
        assert 0 < len(content) <= PER_FILE
        years = [parse_time(e["ts"]).year for e in content]  # type: ignore[union-attr]
        assert (int(match.group(1)), int(match.group(2) or match.group(1))) == (
            years[0],
            years[-1],
        )
        entries += content
    return names, entries


def music_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The music entries (the spoken ones have no track uri)."""
    return [entry for entry in entries if entry["spotify_track_uri"] is not None]


def keys_of(entries: list[dict[str, Any]]) -> list[Key]:
    """(track id, instant) of each entry, as the import reads them."""
    keys = []
    for entry in entries:
        assert list(entry) == SPOTIFY_KEYS
        moment = parse_time(entry["ts"])
        assert moment is not None
        keys.append((entry["spotify_track_uri"].removeprefix("spotify:track:"), moment))
    return keys


def check_fields(
    entries: list[dict[str, Any]], keys: list[Key], docs: dict[Key, Any], catalog: Catalog
) -> None:
    """ms_played and the names of each entry, from the play's document and the catalogue."""
    for entry_data, key in zip(entries, keys, strict=True):
        doc = docs[key]
        expected_ms = doc.get("scrobbler_ms_played", max(doc["durationMs"], 30_000))
        assert entry_data["ms_played"] == expected_ms
        track = catalog.tracks.get(key[0])
        names_given = (
            entry_data["master_metadata_track_name"],
            entry_data["master_metadata_album_artist_name"],
            entry_data["master_metadata_album_album_name"],
        )
        if track is None:  # never enriched: the export's own names, kept by the import
            assert names_given == ("Unknown track", "Unknown artist", "Unknown album")
        else:
            assert names_given == (
                track.name,
                catalog.artists[track.artist_ids[0]].name,
                catalog.albums[track.album_id].name,
            )
        assert all(entry_data[k] is None for k in SPOTIFY_KEYS[9:])


async def test_export_writes_spotify_files_and_round_trips_exactly(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every play (live, imported, blacklisted) in Spotify's format; imported into a new
    account the files give exactly the same (track id, played_at) set."""
    assert await async_setup_component(hass, "persistent_notification", {})
    entry, owner, blacklisted = await build_source(
        hass, setup_entry, fake_spotify, catalog, mongo_db, allowed / "spotify"
    )
    source = await plays_of(mongo_db, owner)
    assert await mongo_db["infos"].count_documents({"owner": owner, "blacklistedBy": "artist"})
    assert any(at.microsecond for _, at in source)  # live plays have milliseconds
    batches: list[int] = []
    original = AsyncCursor.to_list

    async def counted(self: AsyncCursor[Any], length: int | None = None) -> list[Any]:
        if length == BATCH:
            batches.append(length)
        return await original(self, length)

    monkeypatch.setattr(AsyncCursor, "to_list", counted)
    assert hass.states.get(SENSOR).state == "unknown"  # type: ignore[union-attr]

    out = allowed / "export"  # created by the action
    await export(hass, entry, out)

    names, entries = read_export(out)
    # The podcast episodes and audiobook chapters the import kept come after the music,
    # in files of their own, with their own fields; they never were plays.
    spoken_docs = await spoken_of(mongo_db, owner)
    entries, spoken = split_spoken(entries, spoken_docs, names)
    assert len(batches) > len(source) // BATCH  # read a batch at a time
    keys = keys_of(entries)
    assert len(keys) == len(set(keys))
    assert set(keys) == source
    assert keys == sorted(keys, key=lambda key: key[1])
    docs = {
        (doc["id"], doc["played_at"]): doc async for doc in mongo_db["infos"].find({"owner": owner})
    }
    check_fields(entries, keys, docs, catalog)
    artists = [catalog.tracks[i].artist_ids[0] for i, _ in keys if i in catalog.tracks]
    assert blacklisted in artists

    state = hass.states.get(SENSOR)
    assert state is not None
    assert state.state == "100.0"
    assert state.attributes["status"] == "finished"
    exported = len(source) + len(spoken)
    assert state.attributes["plays"] == state.attributes["exported"] == exported
    assert state.attributes["spoken"] == len(spoken)
    assert state.attributes["files"] == len(names)
    assert state.attributes["skipped"] == 0
    note = (await notifications(hass, hass_ws_client))[f"{DOMAIN}_export_{entry.entry_id}"]
    assert f"**{exported}** plays exported to {len(names)} file(s) in `{out}`" in note["message"]
    assert f"{len(spoken)} are podcast episodes and audiobook chapters" in note["message"]
    assert names[-1] in note["message"]

    # The round trip: another account, empty, imports the folder.
    fake_spotify.plays = []
    other = await setup_entry(unique_id="round-trip-user")
    await run_import(hass, other, out)
    other_owner = await owner_of(mongo_db, "round-trip-user")
    assert await plays_of(mongo_db, other_owner) == source
    assert await spoken_of(mongo_db, other_owner) == spoken_docs
    # Into the same account again: everything is already there.
    await run_import(hass, entry, out)
    assert await plays_of(mongo_db, owner) == source
    assert await spoken_of(mongo_db, owner) == spoken_docs


async def test_export_of_a_period_without_blacklisted_in_whole_seconds(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
) -> None:
    """[start, end) on played_at; blacklisted plays left out; ts cut to whole seconds."""
    entry, owner, _ = await build_source(
        hass, setup_entry, fake_spotify, catalog, mongo_db, allowed / "spotify"
    )
    assert fake_spotify.now is not None
    start, end = fake_spotify.now - timedelta(hours=1), fake_spotify.now - timedelta(minutes=22)
    window = {"played_at": {"$gte": start, "$lt": end}}
    wanted = await plays_of(mongo_db, owner, **window, blacklistedBy={"$exists": False})
    assert wanted
    assert wanted != await plays_of(mongo_db, owner, **window)  # a blacklisted one is there

    out = allowed / "period"
    await export(
        hass,
        entry,
        out,
        start=start.isoformat(),
        end=end.isoformat(),
        include_blacklisted=False,
        whole_seconds=True,
    )

    _, entries = read_export(out)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["ts"]) for e in entries)
    assert set(keys_of(music_of(entries))) == {(i, at.replace(microsecond=0)) for i, at in wanted}
    spoken = await mongo_db["scrobbler_spoken_plays"].count_documents(
        {"owner": owner, "ts": {"$gte": start, "$lt": end}}
    )
    assert len(entries) - len(music_of(entries)) == spoken
    attrs = hass.states.get(SENSOR).attributes  # type: ignore[union-attr]
    assert (attrs["plays"], attrs["exported"]) == (len(wanted) + spoken, len(wanted) + spoken)
    assert (attrs["include_blacklisted"], attrs["whole_seconds"]) == (False, True)


async def test_export_refuses_bad_requests(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    allowed: Path,
    tmp_path: Path,
) -> None:
    """Outside the allowed folders, a file, a folder with an export, a bad range, a stopped
    account: translated errors, nothing written."""
    play_recently(fake_spotify, catalog, [(0, 10.0)])
    entry = await setup_entry()
    (allowed / "a_file.json").write_text("[]")
    (allowed / "taken").mkdir()
    (allowed / "taken" / "Streaming_History_Audio_2024_0.json").write_text("[]")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"path": str(tmp_path / "elsewhere")}, "export_path_not_allowed"),
        ({"path": str(allowed / "a_file.json")}, "export_folder_unusable"),
        ({"path": str(allowed / "a_file.json" / "below")}, "export_folder_unusable"),
        ({"path": str(allowed / "taken")}, "export_folder_not_empty"),
        (
            {
                "path": str(allowed / "new"),
                "start": "2024-02-01T00:00:00+00:00",
                "end": "2024-01-01T00:00:00+00:00",
            },
            "invalid_range",
        ),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as raised:
            await hass.services.async_call(
                DOMAIN,
                "export_history",
                {"config_entry_id": entry.entry_id, **data},
                blocking=True,
            )
        assert raised.value.translation_key == key, data
    assert not (tmp_path / "elsewhere").exists()
    assert not (allowed / "new").exists()
    assert hass.states.get(SENSOR).state == "unknown"  # type: ignore[union-attr]

    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "export_history",
            {"config_entry_id": entry.entry_id, "path": str(allowed / "new")},
            blocking=True,
        )
    assert raised.value.translation_key == "entry_not_loaded"


async def test_export_resumes_after_mongodb_failures(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cursor lost mid-way (twice in a row, then once more) resumes where it stopped."""
    entry, owner, _ = await build_source(
        hass, setup_entry, fake_spotify, catalog, mongo_db, allowed / "spotify"
    )
    source = await plays_of(mongo_db, owner)
    original = AsyncCursor.to_list
    reads = 0

    async def flaky(self: AsyncCursor[Any], length: int | None = None) -> list[Any]:
        nonlocal reads
        if length == BATCH:
            reads += 1
            if reads in (3, 4, 9):  # twice in a row, then once more
                raise AutoReconnect("connection lost")
        return await original(self, length)

    monkeypatch.setattr(AsyncCursor, "to_list", flaky)
    await export(hass, entry, allowed / "flaky")
    _, entries = read_export(allowed / "flaky")
    keys = keys_of(music_of(entries))
    assert len(keys) == len(set(keys))
    assert set(keys) == source
    exported = len(entries)
    assert exported == len(source) + len(await spoken_of(mongo_db, owner))
    assert hass.states.get(SENSOR).attributes["exported"] == exported  # type: ignore[union-attr]


async def test_export_cut_by_an_unload(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second call while one runs is refused; an unload deletes the unfinished file and
    leaves the export 'interrupted'; the emptied folder then takes a whole export."""
    entry, owner, _ = await build_source(
        hass, setup_entry, fake_spotify, catalog, mongo_db, allowed / "spotify"
    )
    source = await plays_of(mongo_db, owner)
    # An export that stalls in its fifth batch (one file complete), then an unload.
    looked_up = 0
    stalled = asyncio.Event()
    names = NameLookup.names

    async def stalling(self: NameLookup, plays: Any) -> dict[str, EntryNames]:
        nonlocal looked_up
        looked_up += 1
        if looked_up == 5:
            stalled.set()
            await asyncio.Event().wait()
        return await names(self, plays)

    monkeypatch.setattr(NameLookup, "names", stalling)
    out = allowed / "cut"
    data = {"config_entry_id": entry.entry_id, "path": str(out)}
    await hass.services.async_call(DOMAIN, "export_history", data, blocking=True)
    await stalled.wait()
    assert hass.states.get(SENSOR).attributes["status"] == "running"  # type: ignore[union-attr]
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "export_history",
            {"config_entry_id": entry.entry_id, "path": str(allowed / "other")},
            blocking=True,
        )
    assert raised.value.translation_key == "export_running"
    assert len(list(out.iterdir())) == 2  # a complete file and the unfinished one

    assert await hass.config_entries.async_unload(entry.entry_id)
    complete = [p.name for p in out.iterdir()]
    assert len(complete) == 1
    assert FILE_NAME.fullmatch(complete[0])

    monkeypatch.setattr(NameLookup, "names", names)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    attrs = hass.states.get(SENSOR).attributes  # type: ignore[union-attr]
    assert attrs["status"] == "interrupted"
    assert attrs["files"] == 1
    # The folder still holds that file: refused; once emptied, it takes a whole export.
    with pytest.raises(ServiceValidationError):
        await export(hass, entry, out)
    (out / complete[0]).unlink()
    await export(hass, entry, out)
    assert set(keys_of(music_of(read_export(out)[1]))) == source


async def test_export_failure_and_a_crash_are_reported(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_storage: dict[str, Any],
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A play without a usable track id is counted as skipped; MongoDB failing for good
    fails the export (unfinished file deleted, notification); an export a crash cut short
    is found 'interrupted' at the next setup, its unfinished file deleted."""
    assert await async_setup_component(hass, "persistent_notification", {})
    play_recently(fake_spotify, catalog, [(n, 30.0 - n) for n in range(12)])
    entry = await setup_entry()
    owner = await owner_of(mongo_db, fake_spotify.user_id)
    assert fake_spotify.now is not None
    await mongo_db["infos"].insert_one(
        {"owner": owner, "id": "not a track id", "played_at": fake_spotify.now, "durationMs": 1}
    )
    note_id = f"{DOMAIN}_export_{entry.entry_id}"

    await export(hass, entry, allowed / "ok")
    attrs = hass.states.get(SENSOR).attributes  # type: ignore[union-attr]
    assert (attrs["plays"], attrs["exported"], attrs["skipped"]) == (13, 12, 1)
    note = (await notifications(hass, hass_ws_client))[note_id]
    assert "Skipped: 1 plays without a usable Spotify track id" in note["message"]

    original = AsyncCursor.to_list
    reads = 0

    async def failing(self: AsyncCursor[Any], length: int | None = None) -> list[Any]:
        nonlocal reads
        if length == BATCH:
            reads += 1
            if reads > 1:  # after the first batch, for good
                raise AutoReconnect("connection lost")
        return await original(self, length)

    monkeypatch.setattr(AsyncCursor, "to_list", failing)
    await export(hass, entry, allowed / "failed")
    state = hass.states.get(SENSOR)
    assert state is not None
    assert state.attributes["status"] == "failed"
    assert state.attributes["error"] == "connection lost"
    assert state.attributes["exported"] == BATCH
    assert float(state.state) < 100
    assert list((allowed / "failed").iterdir()) == []  # the unfinished file is gone
    note = (await notifications(hass, hass_ws_client))[note_id]
    assert f"The export stopped after {BATCH} plays: connection lost" in note["message"]
    monkeypatch.setattr(AsyncCursor, "to_list", original)

    # A crash in the middle of an export: its progress says running, a .part file is left.
    assert await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[f"{DOMAIN}.export.{entry.entry_id}"]["data"]
    stored.update(state="running", path=str(allowed / "crashed"), files=[])
    (allowed / "crashed").mkdir()
    (allowed / "crashed" / ".Streaming_History_Audio_0.json.part").write_text("[\n{")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(SENSOR).attributes["status"] == "interrupted"  # type: ignore[union-attr]
    assert list((allowed / "crashed").iterdir()) == []


async def test_a_document_that_cannot_be_read_fails_the_export(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    allowed: Path,
) -> None:
    """A play whose date Python cannot hold (another program wrote it): the export ends as
    failed with the reason, never "running" for good; the unfinished file is gone."""
    play_recently(fake_spotify, catalog, [(0, 20.0)])
    entry = await setup_entry()
    owner = await owner_of(mongo_db, fake_spotify.user_id)
    await mongo_db["infos"].insert_one(
        {"owner": owner, "id": sorted(catalog.tracks)[1], "played_at": DatetimeMS(2**62)}
    )

    await export(hass, entry, allowed / "broken")

    state = hass.states.get(SENSOR)
    assert state is not None
    assert state.attributes["status"] == "failed"
    assert "InvalidBSON" in state.attributes["error"]
    assert list((allowed / "broken").iterdir()) == []
