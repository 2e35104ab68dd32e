"""How soon an imported history is useful: enrichment of a Zipf-like export (issue 14, item 3).

A generated export of 100 000 plays over 10 000 distinct tracks (2 000 albums, 800 artists),
tracks drawn with Zipf-like weights (1/rank), 20 % of the distinct tracks (chosen at random)
already known from live plays (their track, album and artist documents stored). It is
imported with the real engine (files read in an executor, peak Python memory traced), then
enriched against the fake Spotify as a development-mode app (single-item lookups; the batch
endpoints refused) with the request budget off, counting requests:

- the share of the imported listening time (``ms_played``) whose plays have album and
  artist ids once 300 requests are made (15 minutes at the default budget);
- requests for the whole enrichment per distinct unknown track;
- plays given another album or artist than the generator's truth.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bson import ObjectId

from bench.engine import BatchSupport, RequestGate, ScrobbleStore, SpotifyClient
from bench.import_bench import import_files
from bench.mongo import Database
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher
from custom_components.spotify_scrobbler.engine.payload import artist_document, parse_item
from custom_components.spotify_scrobbler.engine.store import IMPORTED_MS_FIELD
from tests.export_fake import music_entry, write_export
from tests.spotify_fake import Catalog, FakeSpotify

type Json = dict[str, Any]

SHAPE = (10_000, 2_000, 800)  # tracks, albums, artists
KNOWN_SHARE = 0.2
REQUESTS_MARK = 300
SEED = 14
START = datetime(2019, 1, 1, tzinfo=UTC)
PER_FILE = 15_000


@dataclass(slots=True)
class EnrichmentBench:
    """Everything measured."""

    plays: int
    distinct_tracks: int
    unknown_tracks: int
    import_s: float
    import_peak_mib: float
    requests_at_mark: int
    share_at_mark: float
    requests_total: int
    album_requests: int
    tracks_from_albums: int
    wrong_attributions: int
    without_ids: int
    enrichment_s: float


def _progress(message: str) -> None:
    print(f"-- {message}", file=sys.stderr, flush=True)


def zipf_export(catalog: Catalog, plays: int, rng: random.Random) -> list[Json]:
    """``plays`` music entries, tracks drawn with weight 1/rank, 31 s to 6 min apart."""
    ranked = sorted(catalog.tracks)
    rng.shuffle(ranked)
    weights = [1 / rank for rank in range(1, len(ranked) + 1)]
    chosen = rng.choices(ranked, weights, k=plays)
    moment = START
    entries = []
    for track_id in chosen:
        moment += timedelta(seconds=rng.randint(31, 360))
        length = catalog.tracks[track_id].duration_ms
        entries.append(music_entry(catalog, track_id, moment, rng.randint(30_000, length)))
    return entries


async def store_known(store: ScrobbleStore, catalog: Catalog, track_ids: list[str]) -> None:
    """Documents the live loop would have stored for these tracks."""
    tracks: dict[str, Json] = {}
    albums: dict[str, Json] = {}
    artists: dict[str, Json] = {}
    for track_id in track_ids:
        parsed = parse_item(
            {"track": catalog.track_json(track_id, dev_mode=True), "played_at": START.isoformat()},
            set(),
        )
        assert parsed is not None
        tracks[track_id] = parsed.track
        if parsed.album is not None:
            albums[parsed.album["id"]] = parsed.album
        for artist_id in parsed.play.artist_ids:
            artists[artist_id] = artist_document(catalog.artist_json(artist_id, dev_mode=True))
    for collection, docs in (
        (store.tracks, tracks),
        (store.albums, albums),
        (store.artists, artists),
    ):
        if docs:
            await collection.insert_many(list(docs.values()))


async def listened_share(db: Database, owner: ObjectId) -> float:
    """Share of the imported ms_played whose plays have album and artist ids."""
    total = enriched = 0
    cursor = db["infos"].find(
        {"owner": owner}, {"_id": 0, IMPORTED_MS_FIELD: 1, "primaryArtistId": 1, "albumId": 1}
    )
    async for doc in cursor:
        listened = int(doc.get(IMPORTED_MS_FIELD) or 0)
        total += listened
        if doc.get("primaryArtistId") and doc.get("albumId"):
            enriched += listened
    return enriched / total if total else 0.0


async def wrong_attributions(db: Database, owner: ObjectId, catalog: Catalog) -> tuple[int, int]:
    """(plays whose ids differ from the generator's truth, plays still without ids)."""
    wrong = missing = 0
    cursor = db["infos"].find(
        {"owner": owner}, {"_id": 0, "id": 1, "albumId": 1, "primaryArtistId": 1, "artistIds": 1}
    )
    async for doc in cursor:
        track = catalog.tracks[doc["id"]]
        if doc.get("primaryArtistId") is None:
            missing += 1
        elif (doc.get("albumId"), doc.get("artistIds")) != (track.album_id, list(track.artist_ids)):
            wrong += 1
    return wrong, missing


async def run_enrichment_bench(
    db: Database, http: aiohttp.ClientSession, plays: int
) -> EnrichmentBench:
    """Generate, import, enrich; see the module's docstring."""
    rng = random.Random(SEED)
    catalog = Catalog.generate(*SHAPE, seed=SEED)
    entries = zipf_export(catalog, plays, rng)
    distinct = sorted({e["spotify_track_uri"].rsplit(":", 1)[1] for e in entries})
    known = rng.sample(distinct, round(KNOWN_SHARE * len(distinct)))
    store = ScrobbleStore(db)
    await store.ensure_indexes()
    account = await store.load_account("bench-zipf", "Bench Zipf", [])
    await store_known(store, catalog, known)
    with tempfile.TemporaryDirectory(prefix="bench-zipf-") as folder:
        paths = write_export(Path(folder), entries, PER_FILE)
        tracemalloc.start()
        try:
            _, import_s = await import_files(store, account.owner, paths)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    _progress(f"  imported in {import_s:.1f} s; enriching")
    async with FakeSpotify(catalog, []) as fake:

        async def token() -> str:
            return fake.access_token

        client = SpotifyClient(
            http, token, RequestGate(spacing=0), base_url=fake.api_url, batch_support=BatchSupport()
        )
        enricher = MetadataEnricher(
            client, RequestGate(spacing=0), store, account.owner, list, interval=0
        )
        await enricher.count_pending()
        fake.reset_log()
        started = time.perf_counter()
        at_mark: tuple[int, float] | None = None
        while await enricher.step():
            if at_mark is None and enricher.requests >= REQUESTS_MARK:
                await enricher.flush()
                at_mark = (enricher.requests, await listened_share(db, account.owner))
        enrichment_s = time.perf_counter() - started
        album_requests = len(fake.calls("/v1/albums/"))
    wrong, missing = await wrong_attributions(db, account.owner, catalog)
    if at_mark is None:
        at_mark = (enricher.requests, await listened_share(db, account.owner))
    return EnrichmentBench(
        plays=plays,
        distinct_tracks=len(distinct),
        unknown_tracks=len(distinct) - len(known),
        import_s=import_s,
        import_peak_mib=peak / 2**20,
        requests_at_mark=at_mark[0],
        share_at_mark=at_mark[1],
        requests_total=enricher.requests,
        album_requests=album_requests,
        tracks_from_albums=enricher.tracks_from_albums,
        wrong_attributions=wrong,
        without_ids=missing,
        enrichment_s=enrichment_s,
    )


def enrichment_rows(result: EnrichmentBench) -> list[tuple[str, str, str, str, bool]]:
    """(metric, value, -, target, met) rows."""
    per_track = result.requests_total / max(result.unknown_tracks, 1)
    return [
        (
            f"Zipf export: listening time with ids after {result.requests_at_mark} requests",
            f"{100 * result.share_at_mark:.1f} %",
            "-",
            ">= 80 %",
            result.share_at_mark >= 0.8,
        ),
        (
            "Zipf export: requests per distinct unknown track",
            f"{per_track:.2f} ({result.requests_total} for {result.unknown_tracks})",
            "-",
            "<= 0.5",
            per_track <= 0.5,
        ),
        (
            "Zipf export: wrong attributions / plays without ids",
            f"{result.wrong_attributions} / {result.without_ids}",
            "-",
            "0 / 0",
            result.wrong_attributions == 0 and result.without_ids == 0,
        ),
    ]


def enrichment_summary(result: EnrichmentBench) -> Json:
    """The JSON keys of issue 14, item 3."""
    return {
        "enriched_share_after_300_requests": round(result.share_at_mark, 4),
        "enriched_share_requests": result.requests_at_mark,
        "enrichment_requests_per_unknown_track": round(
            result.requests_total / max(result.unknown_tracks, 1), 3
        ),
        "enrichment_requests_total": result.requests_total,
        "enrichment_album_requests": result.album_requests,
        "enrichment_tracks_from_albums": result.tracks_from_albums,
        "enrichment_unknown_tracks": result.unknown_tracks,
        "enrichment_wrong_attributions": result.wrong_attributions,
        "enrichment_plays_without_ids": result.without_ids,
        "enrichment_zipf_s_unthrottled": round(result.enrichment_s, 1),
        "import_peak_mib": round(result.import_peak_mib, 1),
        "import_zipf_s": round(result.import_s, 1),
    }
