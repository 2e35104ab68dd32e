"""Benchmark: the real scrobbling engine vs a model of the seed, on the same workload.

Run it through ``scripts/bench`` (it provides Python 3.14, the venv and MongoDB/FerretDB).
Spotify is ``tests/spotify_fake.FakeSpotify``; request counts come from its request log,
MongoDB round trips from a PyMongo ``CommandListener`` (one CommandStartedEvent = one round
trip; handshake/monitoring commands excluded). The table ends with PASS/MISS per target of
issue 4; the last line of output is one JSON object. Numbers, not assertions: the exit status
is 0 unless the benchmark itself fails.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from bench.engine import (
    Account,
    BatchSupport,
    KnownMetadata,
    RequestGate,
    Scrobbler,
    ScrobbleStore,
    SpotifyClient,
)
from bench.enrichment_bench import (
    EnrichmentBench,
    enrichment_rows,
    enrichment_summary,
    run_enrichment_bench,
)
from bench.import_bench import (
    ImportBench,
    import_lines,
    import_rows,
    import_summary,
    run_import_bench,
)
from bench.loopblock import LoopBlockMeter, Slice
from bench.mongo import (
    Command,
    CommandLog,
    Database,
    Document,
    breakdown,
    database_name,
    make_client,
)
from bench.restart_bench import (
    RestartBench,
    restart_rows,
    restart_summary,
    run_restart_bench,
)
from bench.round_trip_bench import (
    RoundTripBench,
    round_trip_rows,
    round_trip_summary,
    run_round_trip_bench,
)
from bench.seed_model import SeedCycleError, SeedModel
from bench.workload import (
    HISTORY_END,
    POLL_INTERVAL,
    FiftyNew,
    fifty_new,
    poll_times,
    standard_catalog,
    standard_day,
    timed_windows,
)
from tests.spotify_fake import Catalog, FakeSpotify, ListeningDay, Track, to_unix_ms

type Json = dict[str, Any]


def progress(message: str) -> None:
    """Progress goes to stderr; stdout holds the report."""
    print(f"-- {message}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class Env:
    """What every part of the benchmark shares."""

    args: argparse.Namespace
    log: CommandLog
    mongo: AsyncMongoClient[Document]
    http: aiohttp.ClientSession
    catalog: Catalog
    day: ListeningDay
    databases: list[str] = field(default_factory=list)

    def database(self, label: str) -> Database:
        """A fresh database, dropped at the end."""
        name = database_name(label)
        self.databases.append(name)
        return self.mongo[name]


def engine_client(
    fake_api: str, token: str, batch: BatchSupport, http: aiohttp.ClientSession
) -> SpotifyClient:
    """The real client, with a static token and no spacing (counts matter, not pacing)."""

    async def access_token() -> str:
        return token

    return SpotifyClient(
        http, access_token, RequestGate(spacing=0), base_url=fake_api, batch_support=batch
    )


def clock_of(fake: FakeSpotify) -> Callable[[], datetime]:
    """The fake's clock, for the seed's 'iteration timestamp'."""

    def now() -> datetime:
        if fake.now is None:
            raise RuntimeError("the fake's clock is not set")
        return fake.now

    return now


# --------------------------------------------------------------------------- the day


@dataclass(slots=True)
class Poll:
    """One poll of a day simulation."""

    at: datetime
    spotify: int
    mongo: int
    new_plays: int
    error: str | None = None
    user_reads: int = 0  # the seed's dbLoop reads, counted apart


@dataclass(slots=True)
class StoredCheck:
    """The account's plays in MongoDB against the day's non-local plays."""

    expected: int
    stored_docs: int
    missing: int
    unexpected: int
    duplicated: int
    tracks: tuple[int, int]  # (stored, expected)
    albums: tuple[int, int]
    artists: tuple[int, int]  # (stored with genres, expected)

    @property
    def exact(self) -> bool:
        """Zero lost, zero duplicated, nothing else."""
        return self.missing == 0 and self.unexpected == 0 and self.duplicated == 0


@dataclass(slots=True)
class DayResult:
    """A whole day of polls by one engine."""

    polls: list[Poll]
    wall_s: float
    endpoints: Counter[str]
    check: StoredCheck
    enrichment_requests: int = 0
    after: Poll | None = None  # one more poll once the day is over (an idle cycle)
    mongo_ms: dict[str, float] = field(default_factory=dict)  # round-trip time by command

    @property
    def spotify(self) -> int:
        """Spotify requests of the day."""
        return sum(p.spotify for p in self.polls)

    @property
    def mongo(self) -> int:
        """MongoDB round trips of the day (the seed's dbLoop reads excluded)."""
        return sum(p.mongo for p in self.polls)

    @property
    def user_reads(self) -> int:
        """The seed's dbLoop user reads of the day."""
        return sum(p.user_reads for p in self.polls)

    @property
    def errors(self) -> list[Poll]:
        """Polls whose cycle raised."""
        return [p for p in self.polls if p.error is not None]

    @property
    def idle(self) -> list[Poll]:
        """Polls that stored nothing and did not fail (plus the poll after the day)."""
        polls = [p for p in self.polls if p.new_plays == 0 and p.error is None]
        return polls + ([self.after] if self.after is not None else [])

    @property
    def warm_idle(self) -> list[Poll]:
        """Idle polls whose window still held plays (Spotify answered items)."""
        return [p for p in self.idle if p.spotify > 1 or p.mongo > 0]


def command_time(commands: list[Command]) -> dict[str, float]:
    """Round-trip time (ms, measured by the driver) by command and collection."""
    total: dict[str, float] = {}
    for command in commands:
        key = f"{command.name} {command.target}"
        total[key] = total.get(key, 0.0) + (command.duration_ms or 0.0)
    return dict(sorted(total.items(), key=lambda item: item[1], reverse=True))


async def check_stored(db: Database, owner: ObjectId, day: ListeningDay) -> StoredCheck:
    """Compare what MongoDB holds with what was played."""
    docs = await db["infos"].find({"owner": owner}, {"_id": 0, "id": 1, "played_at": 1}).to_list()
    stored = [(doc["id"], to_unix_ms(doc["played_at"])) for doc in docs]
    stored_set = set(stored)
    real = [p for p in day.plays if p.track_id is not None]
    expected = {(p.track_id, to_unix_ms(p.played_at)) for p in real}
    track_ids = {p.track_id for p in real}
    catalog_tracks = [p.track for p in day.plays if isinstance(p.track, Track)]
    album_ids = {track.album_id for track in catalog_tracks}
    artist_ids = {artist for track in catalog_tracks for artist in track.artist_ids}
    stored_tracks = await db["tracks"].count_documents({"id": {"$in": sorted(track_ids)}})
    stored_albums = await db["albums"].count_documents({"id": {"$in": sorted(album_ids)}})
    stored_artists = await db["artists"].count_documents(
        {"id": {"$in": sorted(artist_ids)}, "genres": {"$exists": True}}
    )
    return StoredCheck(
        expected=len(expected),
        stored_docs=len(stored),
        missing=len(expected - stored_set),
        unexpected=len(stored_set - expected),
        duplicated=len(stored) - len(stored_set),
        tracks=(stored_tracks, len(track_ids)),
        albums=(stored_albums, len(album_ids)),
        artists=(stored_artists, len(artist_ids)),
    )


async def day_ours(env: Env) -> DayResult:
    """The real engine polls the day (development-mode app: batch endpoints refused)."""
    polls = poll_times(env.day)
    async with FakeSpotify(env.catalog, env.day.plays, now=polls[0]) as fake:
        db = env.database("ours_day")
        store = ScrobbleStore(db)
        await store.ensure_indexes()
        account = await store.load_account("bench-day", "Bench Day", [])
        client = engine_client(fake.api_url, fake.access_token, BatchSupport(), env.http)
        scrobbler = Scrobbler(client, store, account, KnownMetadata.empty())
        fake.reset_log()
        enrichment = 0
        started = time.perf_counter()

        async def poll(at: datetime) -> Poll:
            nonlocal enrichment
            fake.now = at
            requests, mark = len(fake.requests), env.log.mark()
            new, error = 0, None
            try:
                result = await scrobbler.run_cycle()
            except Exception as err:  # noqa: BLE001 -- the coordinator logs and goes on
                error = f"{type(err).__name__}: {err}"
            else:
                new = result.summary.new_plays
                enrichment += result.summary.enrichment_requests
            return Poll(
                at, len(fake.requests) - requests, len(env.log.since(mark, db.name)), new, error
            )

        day_mark = env.log.mark()
        results = [await poll(at) for at in polls]
        wall = time.perf_counter() - started
        endpoints = Counter(fake.counts)
        mongo_ms = command_time(env.log.since(day_mark, db.name))
        after = await poll(polls[-1] + POLL_INTERVAL)
        check = await check_stored(db, account.owner, env.day)
    return DayResult(results, wall, endpoints, check, enrichment, after, mongo_ms)


async def day_seed(env: Env, local_files: str = "skip") -> DayResult:
    """The seed model polls the day (batch endpoints allowed, as the seed was written for)."""
    polls = poll_times(env.day)
    async with FakeSpotify(env.catalog, env.day.plays, now=polls[0], batch_allowed=True) as fake:
        db = env.database(f"seed_day_{local_files}")
        model = SeedModel(
            env.http,
            fake.api_url,
            fake.access_token,
            db,
            clock_of(fake),
            local_files="crash" if local_files == "crash" else "skip",
        )
        await model.setup("bench-seed-day")
        fake.reset_log()
        started = time.perf_counter()

        async def poll(at: datetime) -> Poll:
            fake.now = at
            reads = env.log.mark()
            await model.read_user()
            user_reads = len(env.log.since(reads, db.name))
            requests, mark = len(fake.requests), env.log.mark()
            new, error = 0, None
            try:
                cycle = await model.loop()
            except SeedCycleError as err:
                error = str(err)
            else:
                new = cycle.new_plays
            return Poll(
                at,
                len(fake.requests) - requests,
                len(env.log.since(mark, db.name)),
                new,
                error,
                user_reads,
            )

        day_mark = env.log.mark()
        results = [await poll(at) for at in polls]
        wall = time.perf_counter() - started
        endpoints = Counter(fake.counts)
        mongo_ms = command_time(env.log.since(day_mark, db.name))
        after = await poll(polls[-1] + POLL_INTERVAL)
        check = await check_stored(db, model.user["_id"], env.day)
    return DayResult(results, wall, endpoints, check, 0, after, mongo_ms)


# --------------------------------------------------------------------------- 50 new plays


@dataclass(slots=True)
class CycleCount:
    """Requests and round trips of one cycle."""

    spotify: int
    mongo: int
    new_plays: int
    endpoints: Counter[str]
    commands: str
    user_reads: int = 0


async def fifty_ours(env: Env, scenario: FiftyNew) -> tuple[CycleCount, CycleCount]:
    """The 50-new-play cycle, then the idle cycle right after it (same window)."""
    async with FakeSpotify(env.catalog, scenario.plays, now=scenario.now) as fake:
        db = env.database("ours_fifty")
        store = ScrobbleStore(db)
        await store.ensure_indexes()
        account = await store.load_account("bench-fifty", "Bench Fifty", [])
        client = engine_client(fake.api_url, fake.access_token, BatchSupport(), env.http)
        scrobbler = Scrobbler(client, store, account, KnownMetadata.empty())
        counts: list[CycleCount] = []
        for at in (scenario.now, scenario.now + POLL_INTERVAL):
            fake.now = at
            fake.reset_log()
            mark = env.log.mark()
            result = await scrobbler.run_cycle()
            commands = env.log.since(mark, db.name)
            counts.append(
                CycleCount(
                    len(fake.requests),
                    len(commands),
                    result.summary.new_plays,
                    Counter(fake.counts),
                    breakdown(commands),
                )
            )
    return counts[0], counts[1]


async def fifty_seed(env: Env, scenario: FiftyNew) -> tuple[CycleCount, CycleCount]:
    """The seed model on the same cycles (batch endpoints allowed)."""
    async with FakeSpotify(
        env.catalog, scenario.plays, now=scenario.now, batch_allowed=True
    ) as fake:
        db = env.database("seed_fifty")
        model = SeedModel(env.http, fake.api_url, fake.access_token, db, clock_of(fake))
        await model.setup("bench-seed-fifty")
        counts: list[CycleCount] = []
        for at in (scenario.now, scenario.now + POLL_INTERVAL):
            fake.now = at
            reads = env.log.mark()
            await model.read_user()
            user_reads = len(env.log.since(reads, db.name))
            fake.reset_log()
            mark = env.log.mark()
            cycle = await model.loop()
            commands = env.log.since(mark, db.name)
            counts.append(
                CycleCount(
                    len(fake.requests),
                    len(commands),
                    cycle.new_plays,
                    Counter(fake.counts),
                    breakdown(commands),
                    user_reads,
                )
            )
    return counts[0], counts[1]


# --------------------------------------------------------------------------- timed cycles


@dataclass(slots=True)
class TimedRun:
    """One timed 50-new-play cycle."""

    history: int
    ms: float
    new_plays: int
    mongo: int
    slowest_command: str
    block: LoopBlockMeter
    commands: list[Command]


@dataclass(slots=True)
class History:
    """A database whose account already holds ``size`` older plays."""

    size: int
    store: ScrobbleStore
    owner: ObjectId
    spotify_id: str
    newest_ms: int
    insert_s: float


class FakeProcess:
    """``bench.fake_server`` in a subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process, api_url: str) -> None:
        """Wrap a started server."""
        self.proc = proc
        self.api_url = api_url

    @classmethod
    async def start(cls, windows: int) -> FakeProcess:
        """Start it and read its URL."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fake_server",
            str(windows),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"http"):
            proc.kill()
            raise RuntimeError(f"the fake server did not start: {line!r}")
        return cls(proc, line.decode().strip())

    async def set_now(self, moment: datetime) -> None:
        """Set the fake's clock."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"now {to_unix_ms(moment)}\n".encode())
        await self.proc.stdin.drain()
        answer = await self.proc.stdout.readline()
        if answer.strip() != b"ok":
            raise RuntimeError(f"the fake server answered {answer!r}")

    async def stop(self) -> None:
        """Close its stdin and wait for it."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def make_history(env: Env, size: int, label: str) -> History:
    """An account with ``size`` plays, every 3 minutes, ending two days before the windows."""
    db = env.database(label)
    store = ScrobbleStore(db)
    await store.ensure_indexes()
    spotify_id = f"bench-history-{label}"
    account = await store.load_account(spotify_id, "Bench History", [])
    track_pool = [f"histtrack{n:013d}" for n in range(5000)]
    started = time.perf_counter()
    batch: list[Document] = []
    newest = HISTORY_END
    for index in range(size):
        track = track_pool[(index * 7919) % len(track_pool)]
        batch.append(
            {
                "owner": account.owner,
                "id": track,
                "albumId": f"album{index % 2000:017d}",
                "primaryArtistId": f"artist{index % 800:016d}",
                "artistIds": [f"artist{index % 800:016d}"],
                "durationMs": 180_000 + index % 120_000,
                "played_at": newest - timedelta(minutes=3 * index),
            }
        )
        if len(batch) == env.args.insert_batch:
            await db["infos"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db["infos"].insert_many(batch, ordered=False)
    insert_s = time.perf_counter() - started
    newest_ms = to_unix_ms(newest)
    await db["users"].update_one({"_id": account.owner}, {"$set": {"lastTimestamp": newest_ms}})
    return History(size, store, account.owner, spotify_id, newest_ms, insert_s)


async def timed_cycle(
    env: Env,
    fake: FakeProcess,
    history: History,
    window: FiftyNew,
    batch: BatchSupport,
) -> TimedRun:
    """One 50-new-play cycle on top of ``history``, timed and with the loop metered."""
    store = history.store
    # Untimed reset: the metadata must be new again, the account back before the window.
    for collection in (store.tracks, store.albums, store.artists):
        await collection.delete_many({})
    await store.users.update_one(
        {"_id": history.owner}, {"$set": {"lastTimestamp": history.newest_ms}}
    )
    account = await store.load_account(history.spotify_id, "Bench History", [])
    await fake.set_now(window.now)
    return await _metered_cycle(env, fake, history, account, batch)


async def _metered_cycle(
    env: Env, fake: FakeProcess, history: History, account: Account, batch: BatchSupport
) -> TimedRun:
    """Run one cycle of a fresh Scrobbler (empty caches), timed, loop and commands metered."""
    store = history.store
    client = engine_client(fake.api_url, "fake-access-token", batch, env.http)
    scrobbler = Scrobbler(client, store, account, KnownMetadata.empty())
    mark = env.log.mark()
    with LoopBlockMeter(asyncio.get_running_loop()) as meter:
        started = time.perf_counter()
        result = await scrobbler.run_cycle()
        elapsed = time.perf_counter() - started
    commands = env.log.since(mark, store.db.name)
    slowest = max(commands, key=lambda c: c.duration_ms or 0.0, default=None)
    return TimedRun(
        history.size,
        elapsed * 1000,
        result.summary.new_plays,
        len(commands),
        _describe_command(slowest),
        meter,
        commands,
    )


async def idle_cycle(
    env: Env, fake: FakeProcess, history: History, window: FiftyNew, batch: BatchSupport
) -> TimedRun:
    """A cycle after the timed one of ``window``: same window, nothing new (most polls)."""
    store = history.store
    account = await store.load_account(history.spotify_id, "Bench History", [])
    await fake.set_now(window.now + POLL_INTERVAL)
    return await _metered_cycle(env, fake, history, account, batch)


def _describe_command(command: Command | None) -> str:
    if command is None:
        return "-"
    return f"{command.name} {command.target} {command.duration_ms or 0:.1f} ms"


@dataclass(slots=True)
class TimedResult:
    """Everything measured on the timed cycles."""

    warmup: TimedRun
    small: list[TimedRun]
    large: list[TimedRun]
    small_history: History
    large_history: History
    plan: str
    idle_small: TimedRun
    idle_large: TimedRun
    restart: RestartBench | None = None


async def timed(env: Env) -> TimedResult:
    """Cycle times with small and large histories; loop blocking on every timed cycle."""
    runs, large_runs = env.args.runs, env.args.large_runs
    count = 1 + runs + large_runs
    windows = iter(timed_windows(env.catalog, count))
    fake = await FakeProcess.start(count)
    try:
        progress(f"inserting {env.args.small_history} history plays")
        small = await make_history(env, env.args.small_history, "hist_small")
        progress(
            f"inserting {env.args.large_history} history plays (batches of {env.args.insert_batch})"
        )
        large = await make_history(env, env.args.large_history, "hist_large")
        progress(f"  {large.insert_s:.1f} s ({large.size / max(large.insert_s, 1e-9):.0f} docs/s)")
        window = next(windows)
        plan = await explain_window_query(large, window)
        batch = BatchSupport()  # learnt by the warm-up cycle, as after HA's first cycle
        progress("warm-up cycle (small history, not counted): batch support learnt")
        warmup = await timed_cycle(env, fake, small, window, batch)
        timed_small: list[TimedRun] = []
        timed_large: list[TimedRun] = []
        last_small = last_large = window
        for run in range(max(runs, large_runs)):
            if run < runs:
                progress(f"timed run {run + 1}/{runs}: {small.size} plays stored")
                last_small = next(windows)
                timed_small.append(await timed_cycle(env, fake, small, last_small, batch))
            if run < large_runs:
                progress(f"timed run {run + 1}/{large_runs}: {large.size} plays stored")
                last_large = next(windows)
                timed_large.append(await timed_cycle(env, fake, large, last_large, batch))
        progress("idle cycle after the last timed one, both histories")
        idle_small = await idle_cycle(env, fake, small, last_small, batch)
        idle_large = await idle_cycle(env, fake, large, last_large, batch)
        progress("restart cycle, setup and top on the large history")
        restart = await run_restart_bench(
            env.log,
            large.store,
            spotify_id=large.spotify_id,
            history=large.size,
            client=engine_client(fake.api_url, "fake-access-token", batch, env.http),
            set_now=fake.set_now,
            now=last_large.now + POLL_INTERVAL,
        )
    finally:
        await fake.stop()
    return TimedResult(
        warmup, timed_small, timed_large, small, large, plan, idle_small, idle_large, restart
    )


async def explain_window_query(history: History, window: FiftyNew) -> str:
    """How the server runs the engine's window query (plays_between) on the large history."""
    start = window.first - timedelta(seconds=30)
    end = window.plays[-1].played_at + timedelta(seconds=30)
    try:
        answer = await history.store.db.command(
            {
                "explain": {
                    "find": "infos",
                    "filter": {"owner": history.owner, "played_at": {"$gte": start, "$lte": end}},
                },
                "verbosity": "queryPlanner",
            }
        )
    except Exception as err:  # noqa: BLE001 -- informative only
        return f"explain failed: {err}"
    planner = answer.get("queryPlanner", {})
    winning = planner.get("winningPlan", planner.get("Plan", planner))
    text = json.dumps(winning, default=str)
    if "filterPushdown" in answer:
        text += f"; filterPushdown={answer['filterPushdown']}"
    return text[:300]


# --------------------------------------------------------------------------- report


def median(values: list[float]) -> float:
    """Median (0 for no values)."""
    return statistics.median(values) if values else 0.0


def verdict(ok: bool) -> str:  # noqa: FBT001
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    """Rows of (metric, ours, seed, target, result)."""
    header = ("metric", "ours", "seed model", "target", "result")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


def _top_cpu(meter: LoopBlockMeter) -> float:
    return meter.top[0].cpu_ms if meter.top else 0.0


def describe_slices(slices: list[Slice]) -> list[str]:
    """The longest callbacks, one line each."""
    return [f"{s.wall_ms:7.2f} ms wall, {s.cpu_ms:6.2f} ms CPU: {s.what}" for s in slices]


async def drop_databases(mongo: AsyncMongoClient[Document], names: list[str]) -> None:
    """Best effort: after Ctrl-C the server may already be gone."""
    try:
        async with asyncio.timeout(30):
            for name in names:
                await mongo.drop_database(name)
    except (TimeoutError, PyMongoError) as err:
        progress(f"could not drop the benchmark's databases: {type(err).__name__}")


async def main(args: argparse.Namespace) -> Json:
    """Run every part and print the report; returns the JSON summary."""
    log = CommandLog()
    mongo = make_client(log)
    catalog = standard_catalog()
    day = standard_day(catalog)
    async with aiohttp.ClientSession() as http:
        env = Env(args, log, mongo, http, catalog, day)
        try:
            import_result: ImportBench | None = None
            round_trip: RoundTripBench | None = None
            zipf: EnrichmentBench | None = None
            if args.zipf_plays:
                progress(f"Zipf-like export of {args.zipf_plays} plays: import, then enrichment")
                zipf = await run_enrichment_bench(env.database("zipf"), http, args.zipf_plays)
            if args.only_enrichment:
                return only_enrichment_report(zipf)
            if args.import_plays:
                progress(f"history import: {args.import_plays} plays, twice, then enrichment")
                import_db = env.database("import")
                import_result = await run_import_bench(import_db, log, http, args.import_plays)
                progress(f"  {import_result.first.seconds:.1f} s")
                progress("export round trip: export that account, import it into an empty one")
                round_trip = await run_round_trip_bench(import_db)
                progress(f"  export {round_trip.export_s:.1f} s")
            if args.only_import:
                return only_import_report(import_result, round_trip)
            progress(f"day simulation, our engine ({len(poll_times(day))} polls)")
            ours_day = await day_ours(env)
            progress(f"  {ours_day.wall_s:.1f} s")
            progress("day simulation, seed model")
            seed_day = await day_seed(env)
            progress(f"  {seed_day.wall_s:.1f} s")
            seed_crash: DayResult | None = None
            if args.seed_as_coded:
                progress(
                    "day simulation, seed model with local files handled as the seed code does"
                )
                seed_crash = await day_seed(env, "crash")
                progress(f"  {seed_crash.wall_s:.1f} s")
            scenario = fifty_new(catalog)
            progress("50-new-play cycle: our engine, seed model")
            ours_fifty, ours_fifty_idle = await fifty_ours(env, scenario)
            seed_fifty, seed_fifty_idle = await fifty_seed(env, scenario)
            timed_result: TimedResult | None = None
            if not args.no_timing:
                timed_result = await timed(env)
        finally:
            if not args.keep_databases:
                await drop_databases(mongo, env.databases)
            await mongo.close()

    return report(
        args,
        day=day,
        ours_day=ours_day,
        seed_day=seed_day,
        seed_crash=seed_crash,
        fifty=(ours_fifty, ours_fifty_idle, seed_fifty, seed_fifty_idle),
        timed_result=timed_result,
        import_result=import_result,
        round_trip=round_trip,
        zipf=zipf,
    )


def only_enrichment_report(result: EnrichmentBench | None) -> Json:
    """--only-enrichment: the Zipf export's rows and keys."""
    if result is None:
        raise SystemExit("--only-enrichment needs --zipf-plays > 0")
    print_table([(m, v, s, t, verdict(ok)) for m, v, s, t, ok in enrichment_rows(result)])
    return enrichment_summary(result)


def only_import_report(result: ImportBench | None, round_trip: RoundTripBench | None) -> Json:
    """--only-import: the import's and the round trip's rows and details."""
    if result is None or round_trip is None:
        raise SystemExit("--only-import needs --import-plays > 0")
    rows = [
        (m, o, s, t, verdict(ok))
        for m, o, s, t, ok in import_rows(result) + round_trip_rows(round_trip)
    ]
    print_table(rows)
    for line in import_lines(result):
        print(line)
    return import_summary(result) | round_trip_summary(round_trip)


def report(  # noqa: C901, PLR0912, PLR0915 -- a report, top to bottom
    args: argparse.Namespace,
    *,
    day: ListeningDay,
    ours_day: DayResult,
    seed_day: DayResult,
    seed_crash: DayResult | None,
    fifty: tuple[CycleCount, CycleCount, CycleCount, CycleCount],
    timed_result: TimedResult | None,
    import_result: ImportBench | None = None,
    round_trip: RoundTripBench | None = None,
    zipf: EnrichmentBench | None = None,
) -> Json:
    """Print the table and the details; return the JSON summary."""
    ours_fifty, ours_fifty_idle, seed_fifty, seed_fifty_idle = fifty
    # Idle = a cycle that stores nothing: every idle poll of the day, the poll after the day,
    # and the poll after the 50-new-play cycle (its window still holds those 50 plays).
    ours_idle_spotify = max([p.spotify for p in ours_day.idle] + [ours_fifty_idle.spotify])
    ours_idle_mongo = max([p.mongo for p in ours_day.idle] + [ours_fifty_idle.mongo])
    seed_idle_spotify = max([p.spotify for p in seed_day.idle] + [seed_fifty_idle.spotify])
    seed_idle_mongo = max([p.mongo for p in seed_day.idle] + [seed_fifty_idle.mongo])
    ratio = ours_day.spotify / seed_day.spotify if seed_day.spotify else float("inf")

    summary: Json = {
        "mongo_server": os.environ.get("BENCH_MONGO_SERVER", "?"),
        "polls_day": len(ours_day.polls),
        "spotify_requests_idle_cycle": ours_idle_spotify,
        "seed_spotify_requests_idle_cycle": seed_idle_spotify,
        "spotify_requests_day": ours_day.spotify,
        "seed_spotify_requests_day": seed_day.spotify,
        "spotify_requests_day_ratio": round(ratio, 3),
        "enrichment_requests_day": ours_day.enrichment_requests,
        "spotify_requests_cycle_50_new": ours_fifty.spotify,
        "seed_spotify_requests_cycle_50_new": seed_fifty.spotify,
        "mongo_roundtrips_idle_cycle": ours_idle_mongo,
        "seed_mongo_roundtrips_idle_cycle": seed_idle_mongo,
        "mongo_roundtrips_cycle_50_new": ours_fifty.mongo,
        "seed_mongo_roundtrips_cycle_50_new": seed_fifty.mongo,
        "mongo_roundtrips_day": ours_day.mongo,
        "seed_mongo_roundtrips_day": seed_day.mongo,
        "day_wall_s": round(ours_day.wall_s, 2),
        "seed_day_wall_s": round(seed_day.wall_s, 2),
        "day_plays_expected": ours_day.check.expected,
        "day_plays_stored": ours_day.check.stored_docs,
        "day_plays_missing": ours_day.check.missing,
        "day_plays_duplicated": ours_day.check.duplicated,
        "day_plays_unexpected": ours_day.check.unexpected,
        "day_cycle_errors": len(ours_day.errors),
        "seed_day_plays_stored": seed_day.check.stored_docs,
        "seed_day_plays_missing": seed_day.check.missing,
        "seed_day_plays_duplicated": seed_day.check.duplicated,
    }
    if seed_crash is not None:
        summary["seed_as_coded_day_plays_missing"] = seed_crash.check.missing
        summary["seed_as_coded_day_cycle_errors"] = len(seed_crash.errors)

    rows: list[tuple[str, str, str, str, str]] = [
        (
            "Spotify requests per idle cycle (max)",
            str(ours_idle_spotify),
            str(seed_idle_spotify),
            "1",
            verdict(ours_idle_spotify <= 1),
        ),
        (
            "Spotify requests, whole day",
            str(ours_day.spotify),
            str(seed_day.spotify),
            f"<= 0.6 x seed = {0.6 * seed_day.spotify:.0f}",
            verdict(ours_day.spotify <= 0.6 * seed_day.spotify),
        ),
        (
            "MongoDB round trips per idle cycle (max)",
            str(ours_idle_mongo),
            str(seed_idle_mongo),
            "<= 2",
            verdict(ours_idle_mongo <= 2),
        ),
        (
            "MongoDB round trips, cycle with 50 new plays",
            str(ours_fifty.mongo),
            str(seed_fifty.mongo),
            "<= 8",
            verdict(ours_fifty.mongo <= 8),
        ),
    ]
    targets: dict[str, str] = {
        "spotify_requests_idle_cycle": rows[0][4],
        "spotify_requests_day": rows[1][4],
        "mongo_roundtrips_idle_cycle": rows[2][4],
        "mongo_roundtrips_cycle_50_new": rows[3][4],
    }
    if timed_result is not None:
        small_ms = median([r.ms for r in timed_result.small])
        large_ms = median([r.ms for r in timed_result.large])
        timed_runs = timed_result.small + timed_result.large
        block = max(timed_runs, key=lambda r: r.block.max_wall_ms)
        block_median = median([r.block.max_wall_ms for r in timed_runs])
        idle_runs = (timed_result.idle_small, timed_result.idle_large)
        summary |= {
            "loop_max_block_ms": round(block.block.max_wall_ms, 2),
            "loop_max_block_cpu_ms": round(max(r.block.max_cpu_ms for r in timed_runs), 2),
            "loop_max_block_median_ms": round(block_median, 2),
            "loop_max_block_idle_ms": round(max(r.block.max_wall_ms for r in idle_runs), 2),
            "loop_max_block_idle_cpu_ms": round(max(r.block.max_cpu_ms for r in idle_runs), 2),
            "cycle_ms_small_history": round(small_ms, 1),
            "cycle_ms_large_history": round(large_ms, 1),
            "cycle_ms_large_over_small": round(large_ms / small_ms, 2) if small_ms else None,
            "cycle_ms_idle_small_history": round(timed_result.idle_small.ms, 1),
            "cycle_ms_idle_large_history": round(timed_result.idle_large.ms, 1),
            "history_small": timed_result.small_history.size,
            "history_large": timed_result.large_history.size,
            "history_large_insert_s": round(timed_result.large_history.insert_s, 1),
            "timed_runs_small": len(timed_result.small),
            "timed_runs_large": len(timed_result.large),
        }
        rows += [
            (
                "longest event-loop slice, 50-new cycle (ms, wall)",
                f"{block.block.max_wall_ms:.2f}",
                "-",
                "< 10",
                verdict(block.block.max_wall_ms < 10),
            ),
            (
                f"cycle ms, {timed_result.small_history.size} plays stored (median)",
                f"{small_ms:.1f}",
                "-",
                "",
                "",
            ),
            (
                f"cycle ms, {timed_result.large_history.size} plays stored (median)",
                f"{large_ms:.1f}",
                "-",
                f"<= 1.5 x small = {1.5 * small_ms:.1f}",
                verdict(large_ms <= 1.5 * small_ms),
            ),
        ]
        targets["loop_max_block_ms"] = rows[-3][4]
        targets["cycle_ms_large_history"] = rows[-1][4]
        if timed_result.restart is not None:
            summary |= restart_summary(timed_result.restart)
            restart_table = [
                (m, b, a, t, verdict(ok)) for m, b, a, t, ok in restart_rows(timed_result.restart)
            ]
            rows += restart_table
            targets["restart_cycle"] = restart_table[0][4]
            targets["setup_ms_200k"] = restart_table[1][4]
            met = all(row[4] == verdict(ok=True) for row in restart_table[2:6])
            targets["top_ms_200k"] = verdict(ok=met)
    exact = ours_day.check.exact
    rows.append(
        (
            "day: stored plays == expected (lost/dup/extra)",
            f"{ours_day.check.missing}/{ours_day.check.duplicated}/{ours_day.check.unexpected}",
            f"{seed_day.check.missing}/{seed_day.check.duplicated}/{seed_day.check.unexpected}",
            "0/0/0",
            verdict(exact),
        )
    )
    targets["day_stored_plays_exact"] = rows[-1][4]
    if import_result is not None:
        summary |= import_summary(import_result)
        import_table = [(m, o, s, t, verdict(ok)) for m, o, s, t, ok in import_rows(import_result)]
        rows += import_table
        targets["import_under_60_s"] = import_table[0][4]
        targets["reimport_added_plays"] = import_table[1][4]
        targets["import_stored_plays_exact"] = import_table[2][4]
    if round_trip is not None:
        summary |= round_trip_summary(round_trip)
        trip_table = [(m, o, s, t, verdict(ok)) for m, o, s, t, ok in round_trip_rows(round_trip)]
        rows += trip_table
        targets["round_trip_exact"] = trip_table[2][4]
    if zipf is not None:
        summary |= enrichment_summary(zipf)
        zipf_table = [(m, v, s, t, verdict(ok)) for m, v, s, t, ok in enrichment_rows(zipf)]
        rows += zipf_table
        targets["enriched_share_after_300_requests"] = zipf_table[0][4]
        targets["enrichment_requests_per_unknown_track"] = zipf_table[1][4]
        targets["enrichment_wrong_attributions"] = zipf_table[2][4]
    summary["targets"] = targets

    print()
    print("== spotify_scrobbler benchmark ==")
    print(f"MongoDB: {summary['mongo_server']}")
    outage = f"{day.outage[0]:%H:%M:%S}-{day.outage[1]:%H:%M:%S}"
    print(
        f"workload: {len(day.plays)} plays ({sum(p.is_local for p in day.plays)} local files) "
        f"{day.start:%Y-%m-%d %H:%M}-{day.end:%H:%M} UTC, outage {outage} "
        f"({len(day.plays_between(*day.outage))} plays, no polls), {len(ours_day.polls)} polls "
        "every 120 s"
    )
    print()
    print_table(rows)
    print()
    print("-- day simulation")
    for name, result in (("ours", ours_day), ("seed model", seed_day)):
        idle = result.idle
        warm = result.warm_idle
        print(
            f"{name:>10}: {result.spotify} Spotify requests, {result.mongo} MongoDB round trips"
            f" in {result.wall_s:.1f} s wall; {len(result.errors)} failed cycles"
        )
        print(f"{'':>12}endpoints: {dict(sorted(result.endpoints.items()))}")
        if idle:
            print(
                f"{'':>12}idle polls: {len(idle)}, Spotify mean "
                f"{statistics.fmean(p.spotify for p in idle):.1f}"
                f"/max {max(p.spotify for p in idle)}, MongoDB mean "
                f"{statistics.fmean(p.mongo for p in idle):.1f}/max {max(p.mongo for p in idle)}"
                f"; with plays in the window: {len(warm)}"
            )
        check = result.check
        print(
            f"{'':>12}stored plays {check.stored_docs} / expected {check.expected}: "
            f"{check.missing} lost, {check.duplicated} duplicated, {check.unexpected} unexpected"
            f" -> {'EXACT' if check.exact else 'WRONG'}; tracks {check.tracks[0]}/"
            f"{check.tracks[1]}, albums {check.albums[0]}/{check.albums[1]}, artists with "
            f"genres {check.artists[0]}/{check.artists[1]}"
        )
        top = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in list(result.mongo_ms.items())[:3])
        print(f"{'':>12}MongoDB time by command (top 3): {top}")
        if result.user_reads:
            print(
                f"{'':>12}+ {result.user_reads} dbLoop user reads (2 per poll, not counted above)"
            )
    print(f"{'':>12}our enrichment requests in the day: {ours_day.enrichment_requests}")
    if seed_crash is not None:
        check = seed_crash.check
        print(
            f"seed as coded (a local file in the window aborts loop(user)): "
            f"{len(seed_crash.errors)} aborted cycles, {check.missing} plays lost, "
            f"{check.duplicated} duplicated, {seed_crash.spotify} Spotify requests"
        )
    print()
    print("-- cycle with 50 new plays (50 distinct tracks, fresh account and database)")
    for name, count in (
        ("ours", ours_fifty),
        ("ours idle", ours_fifty_idle),
        ("seed", seed_fifty),
        ("seed idle", seed_fifty_idle),
    ):
        print(
            f"{name:>10}: {count.new_plays} new plays, {count.spotify} Spotify requests "
            f"{dict(sorted(count.endpoints.items()))}"
        )
        print(f"{'':>12}{count.mongo} MongoDB round trips: {count.commands}")
    print(f"{'':>12}(seed: + {seed_fifty.user_reads} dbLoop user reads per poll, not counted)")
    if timed_result is not None:
        print()
        large = timed_result.large_history
        print(
            "-- timed 50-new-play cycles (fake Spotify in a subprocess, RequestGate spacing 0; "
            f"{large.size} history plays inserted in {large.insert_s:.1f} s)"
        )
        labelled = [
            ("warm-up", timed_result.warmup),
            *((f"{r.history} stored", r) for r in timed_result.small + timed_result.large),
            (f"idle, {timed_result.small_history.size}", timed_result.idle_small),
            (f"idle, {timed_result.large_history.size}", timed_result.idle_large),
        ]
        for label, run in labelled:
            print(
                f"{label:>16}: {run.ms:8.1f} ms, {run.new_plays} new, {run.mongo} round trips, "
                f"slowest command: {run.slowest_command}; loop: {run.block.callbacks} callbacks, "
                f"longest {run.block.max_wall_ms:.2f} ms ({_top_cpu(run.block):.2f} ms CPU), "
                f"most CPU {run.block.max_cpu_ms:.2f} ms"
            )
        print(f"window query plan on the large history: {timed_result.plan}")
        warm_runs = timed_result.small + timed_result.large
        block = max(warm_runs, key=lambda r: r.block.max_wall_ms)
        print("longest event-loop slices (warm run with the longest one):")
        for line in describe_slices(block.block.top):
            print(f"  {line}")
        cpu_run = max(warm_runs, key=lambda r: r.block.max_cpu_ms)
        if cpu_run.block.most_cpu is not None:
            print("slice that used the most CPU (all 50-new-play runs):")
            print(f"  {describe_slices([cpu_run.block.most_cpu])[0]}")
        for label, runs in (("small", timed_result.small), ("large", timed_result.large)):
            run = sorted(runs, key=lambda r: r.ms)[len(runs) // 2]
            print(f"MongoDB round trips of the median {label}-history cycle ({run.ms:.0f} ms):")
            print(
                "  "
                + ", ".join(
                    f"{c.name} {c.target} {c.duration_ms or 0:.1f} ms" for c in run.commands
                )
            )
    if import_result is not None:
        print()
        for line in import_lines(import_result):
            print(line)
    del args
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed runs, small history")
    parser.add_argument(
        "--large-runs", type=int, default=2, help="timed runs, large history (~10-20 s each)"
    )
    parser.add_argument("--small-history", type=int, default=1_000)
    parser.add_argument("--large-history", type=int, default=200_000)
    parser.add_argument("--insert-batch", type=int, default=10_000)
    parser.add_argument("--no-timing", action="store_true", help="skip the timed cycles")
    parser.add_argument(
        "--seed-as-coded",
        action="store_true",
        help="one more seed day (~1 min): a local file aborts the cycle, as in the seed's code",
    )
    parser.add_argument(
        "--import-plays",
        type=int,
        default=100_000,
        help="music plays of the generated extended streaming history (0: skip the import)",
    )
    parser.add_argument("--only-import", action="store_true", help="run the import part only")
    parser.add_argument(
        "--zipf-plays",
        type=int,
        default=100_000,
        help="plays of the Zipf-like export whose enrichment is measured (0: skip)",
    )
    parser.add_argument(
        "--only-enrichment", action="store_true", help="run the Zipf enrichment part only"
    )
    parser.add_argument("--keep-databases", action="store_true")
    return parser.parse_args(argv)


def cli() -> None:
    """Entry point."""
    args = parse_args(sys.argv[1:])
    started = time.perf_counter()
    try:
        summary = asyncio.run(main(args))
    except KeyboardInterrupt:
        progress("interrupted")
        sys.exit(130)
    summary["bench_wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, sort_keys=False))


if __name__ == "__main__":
    cli()
