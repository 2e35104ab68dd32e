"""History import over live plays, enrichment beside an import, enrichment across failures.

Issue 11, items 1, 3 and 7: the import adds exactly the plays the live loop missed whichever
instant Spotify's live ``played_at`` marks; a flush never deletes a play it did not stage;
no enrichment runs beside an import; a track fetched once is never requested again.
"""

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler import enrichment_runner, import_manager
from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from custom_components.spotify_scrobbler.engine import (
    export_reader,
    history_import,
    import_enrichment,
)
from custom_components.spotify_scrobbler.engine import spotify as spotify_module
from custom_components.spotify_scrobbler.engine.export_entries import classify_segment
from custom_components.spotify_scrobbler.engine.history_import import HistoryImporter, SegmentResult
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher
from custom_components.spotify_scrobbler.engine.import_matching import (
    RunRecord,
    StoredPlays,
    select_new,
)

from .conftest import MongoDb
from .export_fake import (
    RealPlay,
    Stamp,
    generate_export,
    music_entry,
    one_after_another,
    write_export,
)
from .spotify_fake import Catalog, FakeSpotify, Play, truncate_ms
from .test_import import START, as_set, attributes, run_import
from .test_scrobbling import stored_plays

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture(autouse=True)
def fast_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small segments, no enrichment budget wait, quick retries (as in test_import)."""
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


def export_keys(plays: Iterable[RealPlay]) -> set[tuple[str, datetime]]:
    """What an import stores for these plays: (track, ts)."""
    return {(play.track_id, play.ts) for play in plays}


# ---------------------------------------------------------------- item 1, through HA


@pytest.mark.parametrize("mode", ["start", "end"])
async def test_import_over_live_plays_adds_only_what_the_live_loop_missed(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    mode: Stamp,
) -> None:
    """Live plays stamped at their start (or end), then the export of the same period: the
    import adds nothing; an export reaching further adds exactly the plays outside it."""
    a, b, c, d = sorted(catalog.tracks)[:4]
    assert fake_spotify.now is not None
    live = one_after_another(
        truncate_ms(fake_spotify.now - timedelta(minutes=50)),
        [
            (a, 200_000, 0),
            (b, 95_000, 0),  # three back-to-back repeats
            (b, 95_000, 0),
            (b, 95_000, 4_000),
            (c, 12_000, 0),  # a skip (the export drops it), then the same track again
            (c, 180_000, 0),
            (d, 240_000, 20_000, 300_000),  # paused for 5 min
            (a, 31_000, 0),  # the shortest repeats the live loop keeps apart
            (a, 31_000, 0),
            (b, 150_000, 0),
        ],
    )
    fake_spotify.add_plays(Play(play.stamp(mode), catalog.tracks[play.track_id]) for play in live)
    entry = await setup_entry()
    stored_live = as_set(await stored_plays(mongo_db))
    assert len(stored_live) >= len(live) - 1  # start-stamped, the skip and its repeat are one

    # The export of the live period only.
    write_export(export_dir / "same", [play.entry(catalog) for play in live], per_file=100)
    await run_import(hass, entry, export_dir / "same")
    assert as_set(await stored_plays(mongo_db)) == stored_live
    assert attributes(hass)["imported"] == 0

    # An export from 3 h before the live period to just after it.
    before = one_after_another(
        live[0].start - timedelta(hours=3),
        [(d, 200_000, 60_000), (a, 30_000, 0), (a, 30_000, 0), (c, 100_000, 5_000)],
    )
    after = one_after_another(live[-1].end, [(b, 30_000, 0), (b, 30_000, 0)])
    everything = [*before, *live, *after]
    write_export(export_dir / "more", [play.entry(catalog) for play in everything], per_file=7)
    await run_import(hass, entry, export_dir / "more")
    assert as_set(await stored_plays(mongo_db)) == stored_live | export_keys([*before, *after])
    assert attributes(hass)["imported"] == len(before) + len(after)

    # Re-importing either export adds nothing (the imported plays are recognised as such).
    await run_import(hass, entry, export_dir)
    assert attributes(hass)["imported"] == 0
    assert len(await stored_plays(mongo_db)) == len(stored_live) + len(before) + len(after)


# ---------------------------------------------------------------- item 1, the rule itself

# Track ids of the generated histories: few, so that repeats are frequent.
_TRACKS = ("4uLU6hMCjMI75M1A2tKUQC", "7GhIk7Il098yCjg4BQjzvb", "0VjIjW4GlUZAMYd2vXMi3b")
_ORIGIN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_EMPTY = Catalog()


@dataclass(frozen=True, slots=True)
class Listening:
    """A generated history: real plays, which of them the live loop stored, and how."""

    plays: list[RealPlay]
    live: dict[int, datetime]  # index of a live-stored play -> its live played_at
    twice: frozenset[int]  # plays the export reports twice
    skips: list[RealPlay]  # plays under 30 s, in the export only
    cuts: list[int]  # segment boundaries (indexes into the export's entries)


@st.composite
def listenings(draw: st.DrawFn) -> Listening:
    """Plays >= 30 s in a row (repeats, gaps from 0, pauses up to 9 min), each stored live or
    not; per run or per play start- or end-stamped, a few seconds off; some reported twice;
    some skips (export only)."""
    tracks = _TRACKS[: draw(st.integers(1, len(_TRACKS)))]
    run_mode = draw(st.sampled_from(("start", "end", "mixed")))
    plays: list[RealPlay] = []
    live: dict[int, datetime] = {}
    twice: set[int] = set()
    skips: list[RealPlay] = []
    moment = _ORIGIN + timedelta(milliseconds=draw(st.integers(0, 999)))
    for index in range(draw(st.integers(1, 24))):
        ms_played = draw(st.one_of(st.just(30_000), st.integers(30_000, 420_000)))
        paused = draw(st.one_of(st.just(0), st.integers(0, 9 * 60_000)))
        play = RealPlay(draw(st.sampled_from(tracks)), moment, ms_played, paused)
        plays.append(play)
        if draw(st.booleans()):
            mode = draw(st.sampled_from(("start", "end"))) if run_mode == "mixed" else run_mode
            jitter = timedelta(milliseconds=draw(st.integers(-3_000, 3_000)))
            live[index] = truncate_ms(play.stamp(mode) + jitter)  # type: ignore[arg-type]
        if draw(st.integers(0, 9)) == 0:
            twice.add(index)
        moment = play.end
        if draw(st.integers(0, 9)) == 0:
            skip = RealPlay(draw(st.sampled_from(tracks)), moment, draw(st.integers(0, 29_999)))
            skips.append(skip)
            moment = skip.end
        moment += timedelta(
            milliseconds=draw(
                st.one_of(st.just(0), st.integers(0, 45_000), st.integers(0, 3_600_000))
            )
        )
    entries = len(plays) + len(twice) + len(skips)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, entries - 1)), max_size=3)))
    return Listening(plays, live, frozenset(twice), skips, [c for c in cuts if c < entries])


def _export_entries(history: Listening) -> list[dict[str, Any]]:
    """The export in file order (by ts), duplicates reported a few seconds apart."""
    entries: list[tuple[datetime, dict[str, Any]]] = []
    for index, play in enumerate(history.plays):
        entries.append((play.ts, play.entry(_EMPTY)))
        if index in history.twice:
            late = play.end + timedelta(seconds=index % 3 * 7)
            entries.append((late, music_entry(_EMPTY, play.track_id, late, play.ms_played)))
    entries.extend((skip.ts, skip.entry(_EMPTY)) for skip in history.skips)
    entries.sort(key=lambda pair: pair[0])
    return [entry for _, entry in entries]


def _import(history: Listening, stored: StoredPlays) -> int:
    """Import the export segment by segment into ``stored``, as one run; plays added."""
    entries = _export_entries(history)
    record = RunRecord()
    added = 0
    bounds = [0, *history.cuts, len(entries)]
    for first, last in itertools.pairwise(bounds):
        matching = select_new(classify_segment(entries[first:last]).plays, stored, record)
        for play in matching.new:
            stored.add(play.track_id, play.played_at, imported=True)
        record.commit(matching)
        added += len(matching.new)
    return added


@settings(
    # IMPORT_RULE_EXAMPLES=20000 for a long run.
    max_examples=int(os.environ.get("IMPORT_RULE_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(listenings())
def test_import_rule_stores_every_real_play_exactly_once(history: Listening) -> None:
    """Live plays (any stamping) + an export of everything = each real play once; again = +0."""
    stored = StoredPlays()
    for index, played_at in history.live.items():
        stored.add(history.plays[index].track_id, played_at, imported=False)

    added = _import(history, stored)
    assert len(history.live) + added == len(history.plays)
    assert _import(history, stored) == 0


# ---------------------------------------------------------------- item 3


async def test_flush_deletes_only_the_plays_it_staged(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A play of a track being enriched, stored between the flush's find and its delete, stays."""
    export = generate_export(catalog, START, 30, seed=23, noise=False)
    write_export(export_dir, export.entries, per_file=1000)
    original = import_enrichment.insert_ignoring_duplicates
    intruders: list[dict[str, Any]] = []

    async def stage_then_interleave(collection: Any, docs: Any) -> None:
        await original(collection, docs)
        if collection.name == history_import.STAGING_COLLECTION and not intruders:
            # Another writer (an import) stores a play of a track of this flush, no ids yet.
            intruder = {**docs[0], "played_at": START - timedelta(days=3)}
            del intruder["_id"]
            intruder.update(albumId=None, primaryArtistId=None, artistIds=[])
            intruders.append(intruder)
            await mongo_db["infos"].insert_one(dict(intruder))

    monkeypatch.setattr(import_enrichment, "insert_ignoring_duplicates", stage_then_interleave)
    entry = await setup_entry()

    await run_import(hass, entry, export_dir)

    assert intruders
    stored = as_set(await stored_plays(mongo_db))
    assert stored == export.expected | {(intruders[0]["id"], intruders[0]["played_at"])}
    assert await mongo_db["scrobbler_import_staging"].count_documents({}) == 0


async def test_no_enrichment_beside_a_running_import(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enrichment deferred by a MongoDB failure is not restarted by a cycle during an import."""
    first = generate_export(catalog, START, 20, seed=4, noise=False)
    second = generate_export(catalog, START + timedelta(days=60), 100, seed=8, noise=False)
    write_export(export_dir / "one", first.entries, per_file=1000)
    write_export(export_dir / "two", second.entries, per_file=1000)
    entry = await setup_entry()

    original_step = MetadataEnricher.step
    failing = True
    beside_import: list[bool] = []
    in_segment = False

    async def step(self: MetadataEnricher) -> bool:
        beside_import.append(in_segment)
        if failing:
            raise AutoReconnect("MongoDB went away")
        return await original_step(self)

    monkeypatch.setattr(MetadataEnricher, "step", step)
    await run_import(hass, entry, export_dir / "one")
    assert attributes(hass)["tracks_to_enrich"] > 0  # given up for now: deferred

    failing = False
    beside_import.clear()
    original_import = HistoryImporter.import_entries
    calls = 0
    stalled, release = asyncio.Event(), asyncio.Event()

    async def stalling(self: HistoryImporter, entries: list[Any]) -> SegmentResult:
        nonlocal calls, in_segment
        calls += 1
        in_segment = True
        try:
            if calls == 2:
                stalled.set()
                await release.wait()
            return await original_import(self, entries)
        finally:
            in_segment = False

    monkeypatch.setattr(HistoryImporter, "import_entries", stalling)
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(export_dir / "two")},
        blocking=True,
    )
    await stalled.wait()
    await hass.services.async_call(
        DOMAIN, "sync_now", {"config_entry_id": entry.entry_id}, blocking=True
    )
    for _ in range(20):  # room for an enrichment task to run if one was started
        await asyncio.sleep(0.01)
    assert True not in beside_import

    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert beside_import
    assert True not in beside_import
    assert as_set(await stored_plays(mongo_db)) == first.expected | second.expected
    assert attributes(hass)["tracks_to_enrich"] == 0
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0


async def test_blacklisting_by_enrichment_rebuilds_statistics(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plays blacklisted once their artist is known: statistics rebuilt from the oldest."""
    tracks = sorted(catalog.tracks)
    banned = catalog.tracks[tracks[0]].artist_ids[0]
    others = [t for t in tracks if banned not in catalog.tracks[t].artist_ids][:3]
    order = [others[0], others[1], tracks[0], others[2], tracks[0]]
    # Whole plays (ms_played = the track's length): the flush changes only the blacklisted
    # plays' counts, not the others' listening time (test_import_duration covers that).
    entries = [
        music_entry(
            catalog,
            track_id,
            START + timedelta(minutes=10 * i),
            catalog.tracks[track_id].duration_ms,
        )
        for i, track_id in enumerate(order)
    ]
    write_export(export_dir, entries, per_file=100)
    rebuilt: list[datetime | None] = []

    async def refresh(hass: HomeAssistant, entry: Any, since: datetime | None) -> None:
        rebuilt.append(since)

    monkeypatch.setattr(import_manager, "async_refresh_statistics", refresh)
    monkeypatch.setattr(enrichment_runner, "async_refresh_statistics", refresh)
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})

    await run_import(hass, entry, export_dir)

    assert await mongo_db["infos"].count_documents({"blacklistedBy": {"$exists": True}}) == 2
    # After the import (its oldest play), then after the flush that blacklisted plays.
    assert rebuilt == [START, START + timedelta(minutes=20)]


# ---------------------------------------------------------------- item 7


async def test_enrichment_requests_every_track_once_across_failures(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 5xx on the third track and a 429 on an artist: nothing fetched before is asked again."""
    monkeypatch.setattr(spotify_module, "MAX_INLINE_RETRY_AFTER", 0.5)
    tracks = sorted(catalog.tracks)[:6]
    entries = [
        music_entry(catalog, track_id, START + timedelta(minutes=5 * i), 100_000)
        for i, track_id in enumerate(tracks)
    ]
    write_export(export_dir, entries, per_file=100)
    original_lookup = spotify_module.SpotifyClient.lookup
    lookups: list[tuple[str, str]] = []
    failed: dict[str, str] = {}

    async def lookup(
        self: spotify_module.SpotifyClient, kind: str, ids: Iterable[str]
    ) -> list[dict[str, Any]]:
        ids = list(ids)
        lookups.extend((kind, item_id) for item_id in ids)
        if kind == "tracks" and len(lookups) == 3 and "tracks" not in failed:
            failed["tracks"] = ids[0]  # every attempt of this request fails
            fake_spotify.inject(
                f"/v1/tracks/{ids[0]}", status=500, times=spotify_module.MAX_ATTEMPTS
            )
        if kind == "artists" and "artists" not in failed:
            failed["artists"] = ids[0]
            fake_spotify.inject(f"/v1/artists/{ids[0]}", status=429, headers={"Retry-After": "1"})
        return await original_lookup(self, kind, ids)

    monkeypatch.setattr(spotify_module.SpotifyClient, "lookup", lookup)
    entry = await setup_entry()
    fake_spotify.reset_log()

    await run_import(hass, entry, export_dir)

    assert set(failed) == {"tracks", "artists"}
    for track_id in tracks:
        extra = spotify_module.MAX_ATTEMPTS if track_id == failed["tracks"] else 0
        assert len(fake_spotify.calls(f"/v1/tracks/{track_id}")) == 1 + extra, track_id
    artists = {a for t in tracks for a in catalog.tracks[t].artist_ids}
    for artist_id in artists:
        extra = 1 if artist_id == failed["artists"] else 0
        assert len(fake_spotify.calls(f"/v1/artists/{artist_id}")) == 1 + extra, artist_id
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0
    assert await mongo_db["artists"].count_documents(
        {"id": {"$in": sorted(artists)}, "genres": {"$exists": True}}
    ) == len(artists)
    assert attributes(hass)["tracks_to_enrich"] == 0
