"""The deterministic workloads of the benchmark (issue 4's standard listening day and more)."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.spotify_fake import Catalog, ListeningDay, Play, listening_day, truncate_ms

CATALOG_SEED = 7
DAY_SEED = 11
FIFTY_SEED = 3
DAY_START = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
FIFTY_END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLL_INTERVAL = timedelta(seconds=120)
NEW_PLAYS = 50


def standard_catalog() -> Catalog:
    """150 tracks, 90 albums, 60 artists."""
    return Catalog.generate(150, 90, 60, seed=CATALOG_SEED)


def standard_day(catalog: Catalog) -> ListeningDay:
    """300 plays over 16 h, 5 local files, an outage holding 25 plays."""
    return listening_day(catalog, DAY_START, plays=300, hours=16, seed=DAY_SEED, local_files=5)


def in_outage(day: ListeningDay, moment: datetime) -> bool:
    """Whether the poller is down at ``moment``."""
    return day.outage[0] <= moment <= day.outage[1]


def poll_times(day: ListeningDay) -> list[datetime]:
    """Every 120 s from 2 min before the first play to 4 min after the last, outage skipped."""
    moment = day.start - timedelta(minutes=2)
    end = day.end + timedelta(minutes=4)
    times: list[datetime] = []
    while moment <= end:
        if not in_outage(day, moment):
            times.append(moment)
        moment += POLL_INTERVAL
    return times


@dataclass(frozen=True, slots=True)
class FiftyNew:
    """50 plays of 50 distinct tracks, 20-40 s apart, and the poll time just after them."""

    plays: tuple[Play, ...]
    now: datetime

    @property
    def first(self) -> datetime:
        """played_at of the oldest play."""
        return self.plays[0].played_at


def fifty_new(catalog: Catalog, shift_days: int = 0) -> FiftyNew:
    """The '50 new plays' cycle: every track (and most albums/artists) is new to the store.

    ``shift_days`` moves the same plays later by whole days (one window per timed run).
    """
    rng = random.Random(FIFTY_SEED)
    tracks = rng.sample(sorted(catalog.tracks), NEW_PLAYS)
    moment = truncate_ms(FIFTY_END + timedelta(days=shift_days))
    plays: list[Play] = []
    for track_id in reversed(tracks):
        plays.append(Play(moment, catalog.tracks[track_id]))
        moment -= timedelta(milliseconds=rng.randint(20_000, 40_000))
    plays.reverse()
    return FiftyNew(tuple(plays), FIFTY_END + timedelta(days=shift_days, seconds=60))


def timed_windows(catalog: Catalog, count: int) -> list[FiftyNew]:
    """``count`` '50 new plays' windows, one day apart, for the timed cycles."""
    return [fifty_new(catalog, shift) for shift in range(1, count + 1)]


HISTORY_END = FIFTY_END - timedelta(days=2)
"""Synthetic history (the timed cycles' 'already stored' plays) ends before every window."""
