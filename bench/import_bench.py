"""The history import on a generated extended streaming history (issue 7, item 4).

The real engine (``history_import``): files read segment by segment in an executor, as the
integration does, into a fresh database. Timed from the first byte read to the last play
written; the background enrichment is run afterwards (without its request budget) to count
the Spotify requests an import costs, and timed separately.
"""

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.engine import BatchSupport, RequestGate, ScrobbleStore, SpotifyClient
from bench.mongo import CommandLog, Database
from custom_components.spotify_scrobbler.engine.export_entries import ImportCounts
from custom_components.spotify_scrobbler.engine.export_reader import read_segment
from custom_components.spotify_scrobbler.engine.history_import import HistoryImporter
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher
from tests.export_fake import GeneratedExport, generate_export, write_export
from tests.spotify_fake import Catalog, FakeSpotify

EXPORT_START = datetime(2016, 1, 1, tzinfo=UTC)
EXPORT_SEED = 17
PER_FILE = 15_000  # entries per Streaming_History_Audio_*.json, like Spotify's files
CATALOG = (3_000, 1_200, 500)  # tracks, albums, artists: a long history's variety


@dataclass(slots=True)
class ImportRun:
    """One import of the whole export."""

    counts: ImportCounts
    seconds: float
    spotify_requests: int
    mongo_roundtrips: int


@dataclass(slots=True)
class ImportBench:
    """Everything measured."""

    plays: int
    entries: int
    files: int
    export_mb: float
    expected: int
    first: ImportRun
    second: ImportRun
    stored: int
    missing: int
    unexpected: int
    enrichment_requests: int
    enrichment_s: float
    enrichment_tracks: int
    plays_without_ids: int


def _progress(message: str) -> None:
    print(f"-- {message}", file=sys.stderr, flush=True)


async def import_files(
    store: ScrobbleStore, owner: object, paths: list[Path]
) -> tuple[ImportCounts, float]:
    """Import like the integration: per file, segments read in an executor."""
    loop = asyncio.get_running_loop()
    importer = HistoryImporter(store, owner, [])  # type: ignore[arg-type]
    counts = ImportCounts()
    started = time.perf_counter()
    await importer.ensure_indexes()
    await importer.prepare(datetime.now(UTC))
    for path in paths:
        offset, finished = 0, False
        while not finished:
            segment = await loop.run_in_executor(None, read_segment, str(path), offset)
            result = await importer.import_entries(segment.entries)
            counts.add(result.counts)
            offset, finished = segment.end_offset, segment.finished
    return counts, time.perf_counter() - started


async def run_import_bench(
    db: Database, log: CommandLog, http: aiohttp.ClientSession, plays: int
) -> ImportBench:
    """Generate the export, import it twice, then enrich its tracks."""
    catalog = Catalog.generate(*CATALOG, seed=EXPORT_SEED)
    export: GeneratedExport = generate_export(catalog, EXPORT_START, plays, seed=EXPORT_SEED)
    store = ScrobbleStore(db)
    await store.ensure_indexes()
    account = await store.load_account("bench-import", "Bench Import", [])
    async with FakeSpotify(catalog, []) as fake:
        with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
            paths = write_export(Path(folder), export.entries, PER_FILE)
            size = sum(p.stat().st_size for p in paths)
            runs: list[ImportRun] = []
            for _ in range(2):
                fake.reset_log()
                mark = log.mark()
                counts, seconds = await import_files(store, account.owner, paths)
                runs.append(
                    ImportRun(counts, seconds, len(fake.requests), len(log.since(mark, db.name)))
                )
                _progress(f"  import {len(runs)}: {seconds:.1f} s, {counts.imported} added")

        docs = await db["infos"].find({}, {"_id": 0, "id": 1, "played_at": 1}).to_list()
        stored = {(doc["id"], doc["played_at"]) for doc in docs}

        async def token() -> str:
            return fake.access_token

        client = SpotifyClient(
            http, token, RequestGate(spacing=0), base_url=fake.api_url, batch_support=BatchSupport()
        )
        enricher = MetadataEnricher(
            client, RequestGate(spacing=0), store, account.owner, list, interval=0
        )
        pending = await enricher.count_pending()
        _progress(f"  enrichment of {pending} tracks (no budget)")
        fake.reset_log()
        started = time.perf_counter()
        await enricher.run()
        enrichment_s = time.perf_counter() - started
        enrichment_requests = len(fake.requests)
    return ImportBench(
        plays=plays,
        entries=len(export.entries),
        files=len(paths),
        export_mb=size / 1e6,
        expected=len(export.expected),
        first=runs[0],
        second=runs[1],
        stored=len(docs),
        missing=len(export.expected - stored),
        unexpected=len(stored - export.expected),
        enrichment_requests=enrichment_requests,
        enrichment_s=enrichment_s,
        enrichment_tracks=pending,
        plays_without_ids=await db["infos"].count_documents({"primaryArtistId": None}),
    )


def import_summary(result: ImportBench) -> dict[str, object]:
    """The JSON fields (issue 7's three, then details)."""
    first, second = result.first, result.second
    return {
        "import_plays_per_s": round(first.counts.imported / first.seconds),
        "import_spotify_requests": first.spotify_requests + result.enrichment_requests,
        "reimport_added_plays": second.counts.imported,
        "import_plays": first.counts.imported,
        "import_entries": result.entries,
        "import_files": result.files,
        "import_s": round(first.seconds, 1),
        "reimport_s": round(second.seconds, 1),
        "import_spotify_requests_during_import": first.spotify_requests,
        "import_enrichment_requests": result.enrichment_requests,
        "import_enrichment_tracks": result.enrichment_tracks,
        "import_enrichment_s_unthrottled": round(result.enrichment_s, 1),
        "import_mongo_roundtrips": first.mongo_roundtrips,
        "import_plays_missing": result.missing,
        "import_plays_unexpected": result.unexpected,
        "import_plays_without_ids_after_enrichment": result.plays_without_ids,
    }


def import_rows(result: ImportBench) -> list[tuple[str, str, str, str, bool]]:
    """(metric, ours, seed, target, ok) rows for the table."""
    first, second = result.first, result.second
    return [
        (
            f"history import, {first.counts.imported} plays (s)",
            f"{first.seconds:.1f}",
            "-",
            "< 60",
            first.seconds < 60,
        ),
        (
            "re-import: plays added",
            str(second.counts.imported),
            "-",
            "0",
            not second.counts.imported,
        ),
        (
            "import: stored == expected (lost/extra)",
            f"{result.missing}/{result.unexpected}",
            "-",
            "0/0",
            result.missing == 0 and result.unexpected == 0 and result.stored == result.expected,
        ),
    ]


def import_lines(result: ImportBench) -> list[str]:
    """Details printed under the table."""
    first, second = result.first, result.second
    skipped = ", ".join(f"{k} {v}" for k, v in first.counts.skipped.items() if v)
    budget_h = result.enrichment_requests * 3 / 3600
    return [
        (
            f"-- history import: {result.entries} entries in {result.files} files "
            f"({result.export_mb:.1f} MB), {result.plays} music plays generated"
        ),
        (
            f"   first import: {first.seconds:.1f} s, {first.counts.imported} imported, "
            f"{first.counts.duplicates} duplicates (same track within 30 s in the file), skipped: "
            f"{skipped}; {first.mongo_roundtrips} MongoDB round trips, "
            f"{first.spotify_requests} Spotify requests"
        ),
        (
            f"   second import: {second.seconds:.1f} s, {second.counts.imported} added, "
            f"{second.counts.duplicates} duplicates"
        ),
        (
            f"   stored {result.stored} / expected {result.expected}: {result.missing} lost, "
            f"{result.unexpected} unexpected"
        ),
        (
            f"   enrichment (development-mode app, budget off): {result.enrichment_tracks} tracks, "
            f"{result.enrichment_requests} Spotify requests in {result.enrichment_s:.1f} s; "
            f"at the default budget (one request per 3 s) ~{budget_h:.1f} h in the background; "
            f"plays still without ids: {result.plays_without_ids}"
        ),
    ]
