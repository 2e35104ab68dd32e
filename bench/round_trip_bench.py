"""Export round trip on the imported history (issue 13): export, import into an empty account.

Runs after the import benchmark, on its account (every play imported and enriched): the
real exporter (``history_export``, cursor batches, writes in an executor) writes the files,
the real importer reads them into a new account, and the two (track id, played_at) sets
must be equal, as must the kept podcast episodes and audiobook chapters. The export is
timed once as the integration runs it, and once more under ``tracemalloc`` for its peak of
Python memory (slower: tracing costs time, so that run is not timed).
"""

import asyncio
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.engine import ScrobbleStore
from bench.import_bench import import_files
from bench.mongo import Database
from custom_components.spotify_scrobbler.engine.export_reader import export_files
from custom_components.spotify_scrobbler.engine.export_writer import ExportFiles, prepare_folder
from custom_components.spotify_scrobbler.engine.history_export import (
    ExportCounts,
    ExportRange,
    HistoryExporter,
)
from custom_components.spotify_scrobbler.engine.spoken_plays import SPOKEN_COLLECTION

SOURCE_ACCOUNT = ("bench-import", "Bench Import")  # the import benchmark's account
TARGET_ACCOUNT = ("bench-round-trip", "Bench Round Trip")


@dataclass(slots=True)
class RoundTripBench:
    """Everything measured."""

    plays: int
    spoken: int
    files: int
    export_s: float
    export_peak_mib: float
    import_s: float
    missing: int
    unexpected: int
    spoken_missing: int
    spoken_unexpected: int


async def _run_blocking(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


async def _export(store: ScrobbleStore, owner: Any, folder: Path) -> tuple[ExportCounts, float]:
    prepare_folder(str(folder))  # as the action does before it starts
    exporter = HistoryExporter(
        store, owner, ExportFiles(str(folder)), ExportRange(), run_blocking=_run_blocking
    )
    started = time.perf_counter()
    counts = await exporter.run()
    return counts, time.perf_counter() - started


async def _plays(db: Database, owner: Any) -> set[tuple[str, Any]]:
    cursor = db["infos"].find({"owner": owner}, {"_id": 0, "id": 1, "played_at": 1})
    return {(doc["id"], doc["played_at"]) async for doc in cursor}


async def _spoken(db: Database, owner: Any) -> set[tuple[Any, ...]]:
    cursor = db[SPOKEN_COLLECTION].find({"owner": owner}, {"_id": 0, "owner": 0})
    return {tuple(sorted(doc.items())) async for doc in cursor}


async def run_round_trip_bench(db: Database) -> RoundTripBench:
    """Export the import benchmark's account and import the files into an empty one."""
    store = ScrobbleStore(db)
    source = await store.load_account(*SOURCE_ACCOUNT, [])
    target = await store.load_account(*TARGET_ACCOUNT, [])
    with tempfile.TemporaryDirectory(prefix="bench-round-trip-") as folder:
        timed_folder, traced_folder = Path(folder, "timed"), Path(folder, "traced")
        counts, export_s = await _export(store, source.owner, timed_folder)
        tracemalloc.start()
        try:
            await _export(store, source.owner, traced_folder)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        paths = [Path(p) for p in export_files(str(timed_folder))]
        _, import_s = await import_files(store, target.owner, paths)
    stored, copied = await _plays(db, source.owner), await _plays(db, target.owner)
    spoken, spoken_copied = await _spoken(db, source.owner), await _spoken(db, target.owner)
    return RoundTripBench(
        plays=len(stored),
        spoken=counts.spoken,
        files=len(counts.files),
        export_s=export_s,
        export_peak_mib=peak / 2**20,
        import_s=import_s,
        missing=len(stored - copied),
        unexpected=len(copied - stored),
        spoken_missing=len(spoken - spoken_copied),
        spoken_unexpected=len(spoken_copied - spoken),
    )


def round_trip_summary(result: RoundTripBench) -> dict[str, object]:
    """The JSON fields."""
    return {
        "export_plays": result.plays,
        "export_spoken": result.spoken,
        "export_files": result.files,
        "export_s": round(result.export_s, 1),
        "export_plays_per_s": round(result.plays / max(result.export_s, 1e-9)),
        "export_peak_mib": round(result.export_peak_mib, 1),
        "round_trip_import_s": round(result.import_s, 1),
        "round_trip_missing": result.missing,
        "round_trip_unexpected": result.unexpected,
        "round_trip_spoken_missing": result.spoken_missing,
        "round_trip_spoken_unexpected": result.spoken_unexpected,
    }


def round_trip_rows(result: RoundTripBench) -> list[tuple[str, str, str, str, bool]]:
    """(metric, ours, seed, target, ok) rows for the table."""
    exact = result.plays > 0 and not (
        result.missing or result.unexpected or result.spoken_missing or result.spoken_unexpected
    )
    return [
        (
            f"export of {result.plays} plays (s)",
            f"{result.export_s:.1f}",
            "-",
            "< 60",
            result.export_s < 60,
        ),
        (
            "export: peak Python memory (MiB)",
            f"{result.export_peak_mib:.1f}",
            "-",
            "< 64",
            result.export_peak_mib < 64,
        ),
        (
            "round trip into an empty account: lost/extra (plays; spoken)",
            (
                f"{result.missing}/{result.unexpected}; "
                f"{result.spoken_missing}/{result.spoken_unexpected}"
            ),
            "-",
            "0/0; 0/0",
            exact,
        ),
    ]
