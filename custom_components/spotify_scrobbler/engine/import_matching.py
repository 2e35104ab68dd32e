"""Which plays of an export are not stored yet: the history import's matching rule.

Pure functions over in-memory data (no I/O, no Home Assistant), so that a property test can
compare them with an oracle.

* An export entry is a play that stopped at ``ts`` after ``ms_played`` ms of listening: it
  covers [ts - ms_played, ts] (further back if it was paused). Spotify's live ``played_at``
  marks the start of a play on some clients and its end on others, so a play stored by the
  live loop is the same play as an export entry of its track when its ``played_at`` lies in
  that span, give or take ``TOLERANCE`` (``MAX_PAUSE`` before it). Matching is one-to-one
  (a live play absorbs at most one entry and an entry at most one live play), computed as a
  maximum matching: entries in order of their window's end, each taking the earliest free
  live play inside its window.
* Plays stored by an import (they carry ``scrobbler_ms_played``) sit exactly at their ``ts``,
  and two real plays of a track have ``ts`` at least the later one's ``ms_played`` (>= 30 s)
  apart: an entry less than ``MIN_PLAY`` from such a play, or from another entry of the
  same track (the file's own repeats), is the same play. The strict bound cannot merge two
  real plays.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

MIN_MS_PLAYED: Final = 30_000  # shorter plays are skips (Your Spotify's and Maloja's rule)
MIN_PLAY: Final = timedelta(milliseconds=MIN_MS_PLAYED)
# Slack between a live played_at and the instant it marks (clock skew, the export's whole
# seconds): the live loop's ±30 s.
TOLERANCE: Final = timedelta(seconds=30)
# A play paused on the way started longer than ms_played before its ts: a start-stamped
# played_at is recognised up to this much earlier (the tolerance included).
MAX_PAUSE: Final = timedelta(minutes=10)
# A longer ms_played is taken as this long: it only widens a window (and a range query).
MAX_LISTENED: Final = timedelta(hours=12)


@dataclass(slots=True, frozen=True)
class ExportPlay:
    """A music play of the export: what the file tells about it."""

    played_at: datetime  # the export's ts: UTC end of the play
    track_id: str
    ms_played: int
    track_name: str | None
    artist_name: str | None
    album_name: str | None


def window(play: ExportPlay) -> tuple[datetime, datetime]:
    """The live played_at values that can mark this play: its span, widened."""
    listened = min(timedelta(milliseconds=play.ms_played), MAX_LISTENED)
    return play.played_at - listened - MAX_PAUSE, play.played_at + TOLERANCE


def _near(times: list[datetime] | None, moment: datetime) -> bool:
    """Whether a sorted list holds an instant less than MIN_PLAY from ``moment``."""
    if not times:
        return False
    index = bisect.bisect_right(times, moment - MIN_PLAY)
    return index < len(times) and times[index] < moment + MIN_PLAY


@dataclass(slots=True)
class StoredPlays:
    """Stored plays of a time range by track, sorted: live ones and imported ones."""

    live: dict[str, list[datetime]] = field(default_factory=dict)
    imported: dict[str, list[datetime]] = field(default_factory=dict)

    def add(self, track_id: str, played_at: datetime, *, imported: bool) -> None:
        """Add one stored play."""
        times = (self.imported if imported else self.live).setdefault(track_id, [])
        bisect.insort(times, played_at)


@dataclass(slots=True)
class Matching:
    """What ``select_new`` decided for a segment."""

    new: list[ExportPlay] = field(default_factory=list)
    duplicates: int = 0
    # Live plays absorbed by an entry, and those entries: for the run's record.
    taken: list[tuple[str, datetime]] = field(default_factory=list)
    absorbed: list[ExportPlay] = field(default_factory=list)


class RunRecord:
    """Live plays absorbed by earlier segments of one import run, and the entries they took.

    A live play taken at the end of one segment must not absorb an entry of the next one
    (back-to-back repeats across a segment boundary), and an entry seen again later in the
    run (a copy of a file) is the play that already took its live play. Pruned to what can
    still matter: segments come in time order, so nothing before a segment's earliest
    window can.
    """

    def __init__(self) -> None:
        """An empty record (a new run)."""
        self._taken: dict[str, set[datetime]] = {}
        self._absorbed: dict[str, list[datetime]] = {}

    def __len__(self) -> int:
        """Records kept (live plays taken)."""
        return sum(len(times) for times in self._taken.values())

    def prune(self, before: datetime) -> None:
        """Forget everything earlier than ``before``."""
        for track_id in list(self._taken):
            kept = {moment for moment in self._taken[track_id] if moment >= before}
            if kept:
                self._taken[track_id] = kept
            else:
                del self._taken[track_id]
        for track_id in list(self._absorbed):
            times = self._absorbed[track_id]
            times = times[bisect.bisect_left(times, before) :]
            if times:
                self._absorbed[track_id] = times
            else:
                del self._absorbed[track_id]

    def is_taken(self, track_id: str, played_at: datetime) -> bool:
        """Whether an earlier segment's entry absorbed this live play."""
        return played_at in self._taken.get(track_id, ())

    def absorbed_near(self, play: ExportPlay) -> bool:
        """Whether an entry of an earlier segment that absorbed a live play is this play."""
        return _near(self._absorbed.get(play.track_id), play.played_at)

    def commit(self, matching: Matching) -> None:
        """Keep a segment's matches, once its plays are stored (a retry must not see them)."""
        for track_id, played_at in matching.taken:
            self._taken.setdefault(track_id, set()).add(played_at)
        for play in matching.absorbed:
            bisect.insort(self._absorbed.setdefault(play.track_id, []), play.played_at)


def select_new(plays: Sequence[ExportPlay], stored: StoredPlays, record: RunRecord) -> Matching:
    """The plays of a segment that are not stored yet.

    ``plays``: the segment's plays, sorted by ts; ``stored``: every stored play of the
    account in the segment's windows; ``record``: the run's. ``record`` is only pruned
    here; commit the result once the new plays are stored.
    """
    result = Matching()
    if not plays:
        return result
    record.prune(min(window(play)[0] for play in plays))
    candidates: list[ExportPlay] = []
    # A repeat is measured from the last entry kept: one already stored (or absorbed by an
    # earlier segment) is no reference, else it could hide the next real play.
    last_kept: dict[str, datetime] = {}
    for play in plays:
        previous = last_kept.get(play.track_id)
        if (
            (previous is not None and play.played_at - previous < MIN_PLAY)
            or _near(stored.imported.get(play.track_id), play.played_at)
            or record.absorbed_near(play)
        ):
            result.duplicates += 1
            continue
        last_kept[play.track_id] = play.played_at
        candidates.append(play)
    # Windows all extend TOLERANCE past ts: sorted by ts is sorted by window end, the order
    # in which taking the earliest free point gives a maximum matching.
    used: dict[str, set[int]] = {}
    for play in candidates:
        start, end = window(play)
        times = stored.live.get(play.track_id, [])
        taken = used.setdefault(play.track_id, set())
        index = bisect.bisect_left(times, start)
        while index < len(times) and times[index] <= end:
            if index not in taken and not record.is_taken(play.track_id, times[index]):
                break
            index += 1
        if index < len(times) and times[index] <= end:
            taken.add(index)
            result.taken.append((play.track_id, times[index]))
            result.absorbed.append(play)
            result.duplicates += 1
        else:
            result.new.append(play)
    return result
