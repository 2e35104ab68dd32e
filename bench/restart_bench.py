"""Where a user waits on a large history: a restart's first cycle, setup's reads, ``top``.

Runs on the timed part's large history (200 000 plays by default), after its last timed
cycle, so that Spotify's window (the fake's) holds 50 plays MongoDB has stored:

- restart cycle: a fresh Scrobbler runs the first cycle after a restart, once as before
  (nothing known: the window's stored plays are looked up) and once with the cache the
  outbox file restores when MongoDB's cursor is where the file left it;
- setup: the MongoDB part of an entry's setup, reading the totals (before, and still when
  the file cannot be trusted) and trusting the file's (a background count follows);
- top: the ``top`` action for each kind: counted in MongoDB (all time, by plays), and from
  the rollups (built once, timed) over six periods, the slowest reported; and the first
  ranking of this month after a live write of one play (its month and year summed again).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from bench.engine import KnownMetadata, Scrobbler, ScrobbleStore, SpotifyClient
from bench.mongo import CommandLog
from custom_components.spotify_scrobbler.engine.blacklist import apply_blacklist
from custom_components.spotify_scrobbler.engine.models import Play
from custom_components.spotify_scrobbler.engine.recent_plays import RecentPlays
from custom_components.spotify_scrobbler.engine.top import KINDS, Kind, top_entries

type Json = dict[str, Any]


@dataclass(slots=True, frozen=True)
class Timed:
    """Milliseconds and MongoDB round trips of one measured step."""

    ms: float
    round_trips: int


@dataclass(slots=True)
class RestartBench:
    """Everything measured here."""

    history: int
    cycle_before: Timed
    cycle_after: Timed
    setup_before: Timed
    setup_after: Timed
    top: dict[str, Timed]  # from the rollups: the slowest of several periods
    top_counted: dict[str, Timed]  # all time, counted in MongoDB (before)
    rollup_build: Timed
    top_after_write: Timed  # tracks, this month, right after a live write


async def _timed(log: CommandLog, database: str, step: Callable[[], Awaitable[object]]) -> Timed:
    mark = log.mark()
    started = time.perf_counter()
    await step()
    elapsed = (time.perf_counter() - started) * 1000
    return Timed(round(elapsed, 1), len(log.since(mark, database)))


async def run_restart_bench(
    log: CommandLog,
    store: ScrobbleStore,
    *,
    spotify_id: str,
    history: int,
    client: SpotifyClient,
    set_now: Callable[[datetime], Awaitable[None]],
    now: datetime,
) -> RestartBench:
    """Measure on ``store``'s account, whose last cycle stored the window at ``now``."""
    database = store.db.name
    await set_now(now + timedelta(minutes=2))
    account = await store.load_account(spotify_id, "Bench History", [])
    running = Scrobbler(client, store, account, KnownMetadata.empty())
    await running.run_cycle()  # the integration before the restart: its cache covers the window
    saved = running.recent.to_json()

    async def restart_cycle(recent: RecentPlays | None) -> None:
        account = await store.load_account(spotify_id, "Bench History", [])
        scrobbler = Scrobbler(client, store, account, KnownMetadata.empty(), recent=recent)
        step = await _timed(log, database, scrobbler.run_cycle)
        timings.append(step)

    timings: list[Timed] = []
    await restart_cycle(None)
    restored = RecentPlays()
    restored.restore(saved)
    await restart_cycle(restored)
    cycle_before, cycle_after = timings

    owner = account.owner
    setup_before = await _timed(log, database, lambda: _setup(store, spotify_id, count=True))
    setup_after = await _timed(log, database, lambda: _setup(store, spotify_id, count=False))
    # Before: counted in MongoDB (the only way before issue 14, and while rollups are stale).
    counted: dict[str, Timed] = {}
    for kind in KINDS:

        async def ranked(kind: Kind = kind) -> object:
            return await top_entries(
                store.db, owner, kind, start=None, end=None, limit=10, order="plays"
            )

        counted[kind] = await _timed(log, database, ranked)
    build = await _timed(log, database, lambda: store.rollups.rebuild(owner))
    top: dict[str, Timed] = {}
    periods = _periods(now)
    for kind in KINDS:
        slowest: Timed | None = None
        for start, end in periods:

            async def from_rollups(kind: Kind = kind, start: Any = start, end: Any = end) -> object:
                return await top_entries(
                    store.db,
                    owner,
                    kind,
                    start=start,
                    end=end,
                    limit=10,
                    order="listening_time",
                    rollups=store.rollups,
                )

            step = await _timed(log, database, from_rollups)
            slowest = step if slowest is None or step.ms > slowest.ms else slowest
        assert slowest is not None
        top[kind] = slowest
    played_at = (now - timedelta(seconds=30)).replace(microsecond=0)
    play = Play("benchtracklatewrite00001", played_at, None, ("benchartist",), 200_000)
    await store.write_cycle(
        account,
        tracks=[],
        albums=[],
        artists=[],
        artist_stubs=[],
        plays=[play],
        newest_played_at=played_at,
    )
    this_month = periods[2][0]

    async def after_write() -> object:
        return await top_entries(
            store.db,
            owner,
            "tracks",
            start=this_month,
            end=None,
            limit=10,
            order="plays",
            rollups=store.rollups,
        )

    top_after_write = await _timed(log, database, after_write)
    return RestartBench(
        history,
        cycle_before,
        cycle_after,
        setup_before,
        setup_after,
        top,
        counted,
        build,
        top_after_write,
    )


def _periods(now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    """All time, this year, this month, this week, today, and a span across years."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        (None, None),
        (day.replace(month=1, day=1), None),
        (day.replace(day=1), None),
        (day - timedelta(days=day.weekday()), None),
        (day, None),
        (now - timedelta(days=500, hours=7), now - timedelta(days=3, minutes=13)),
    ]


async def _setup(store: ScrobbleStore, spotify_id: str, *, count: bool) -> None:
    """What an entry's setup asks MongoDB (coordinator._connect), with or without counting."""
    await store.ensure_indexes()
    account = await store.load_account(spotify_id, "Bench History", [])

    async def no_change(_oldest: datetime) -> None:
        return None

    await apply_blacklist(store.db, account.owner, [], no_change)
    if count:
        owner: ObjectId = account.owner
        day = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        await store.day_totals(owner, day, day + timedelta(days=1))
        await store.latest_play(owner)
        await store.totals(owner)


def restart_rows(result: RestartBench) -> list[tuple[str, str, str, str, bool]]:
    """(metric, now, before, target, met) rows.

    "Before" is the path taken before issue 14, and still when the file cannot be trusted.
    """
    size = f"{result.history:,}".replace(",", " ")
    before, after = result.cycle_before, result.cycle_after
    rows = [
        (
            f"first cycle after a restart, {size} plays stored",
            f"{after.ms:.0f} ms, {after.round_trips} round trips",
            f"before: {before.ms:.0f} ms, {before.round_trips}",
            "≤ 1 s, ≤ 2 round trips",
            after.ms <= 1000 and after.round_trips <= 2,
        ),
        (
            f"setup's MongoDB part, {size} plays stored",
            f"{result.setup_after.ms:.0f} ms, {result.setup_after.round_trips} round trips",
            f"before: {result.setup_before.ms:.0f} ms, {result.setup_before.round_trips}",
            "≤ 2 s",
            result.setup_after.ms <= 2000,
        ),
    ]
    rows.extend(
        (
            f"top {kind}, slowest of 6 periods, {size} plays",
            f"{t.ms:.0f} ms, {t.round_trips} round trips",
            f"before: {result.top_counted[kind].ms:.0f} ms (all time)",
            "≤ 1 s",
            t.ms <= 1000,
        )
        for kind, t in result.top.items()
    )
    rows.append(
        (
            f"top tracks, this month, first after a live write, {size} plays",
            f"{result.top_after_write.ms:.0f} ms, {result.top_after_write.round_trips} round trips",
            "-",
            "≤ 1 s",
            result.top_after_write.ms <= 1000,
        )
    )
    rows.append(
        (
            f"rollups built from infos, {size} plays (background)",
            f"{result.rollup_build.ms / 1000:.1f} s, {result.rollup_build.round_trips} round trips",
            "-",
            "-",
            True,
        )
    )
    return rows


def restart_summary(result: RestartBench) -> Json:
    """The JSON keys of issue 14 measured here."""
    return {
        "restart_cycle_ms_200k": result.cycle_after.ms,
        "restart_cycle_mongo_roundtrips": result.cycle_after.round_trips,
        "restart_cycle_ms_200k_untrusted": result.cycle_before.ms,
        "restart_cycle_mongo_roundtrips_untrusted": result.cycle_before.round_trips,
        "setup_ms_200k": result.setup_after.ms,
        "setup_ms_200k_counting": result.setup_before.ms,
        "top_ms_200k": {kind: t.ms for kind, t in result.top.items()},
        "top_ms_200k_counted": {kind: t.ms for kind, t in result.top_counted.items()},
        "rollup_build_ms_200k": result.rollup_build.ms,
        "top_ms_200k_after_write": result.top_after_write.ms,
        "restart_bench_history": result.history,
    }
