"""Whether each live play was stamped at its start or its end, told by the plays around it.

Pure functions (no I/O, no Home Assistant). Spotify's ``played_at`` marks the start of a
play for some clients and its end for others. Plays heard back to back, neither paused nor
skipped, lie one play apart: the later play's length apart when the client stamps ends, the
earlier play's when it stamps starts. Where the two lengths differ, the distance tells
which; a run of plays back to back comes from one client and shares the answer.

The history import's matching needs it for repeats of one track back to back: there the
end of one play and the start of the next lie a fraction of a second apart, and only the
stamping says which of the two live plays an imported play stands for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, Literal

type Stamping = Literal["start", "end"]

# How far two instants one play apart may lie beyond that play's length (the pause between
# tracks) or short of it (rounding): far below the difference between most tracks' lengths.
# A crossfade or a longer pause fits neither way, and tells nothing.
LATE: Final = timedelta(seconds=2)
EARLY: Final = timedelta(milliseconds=500)


def stamp_modes(plays: Sequence[tuple[datetime, int]]) -> list[Stamping | None]:
    """For plays in time order, as (played_at, track length in ms): how each was stamped.

    None where nothing tells: a play alone, a run of one track's repeats, plays paused,
    skipped or crossfaded, or a run whose plays disagree.
    """
    modes: list[Stamping | None] = [None] * len(plays)
    first = 0
    votes: set[Stamping] = set()
    for index in range(1, len(plays) + 1):
        follows = index < len(plays) and _back_to_back(plays[index - 1], plays[index])
        if follows:
            vote = _vote(plays[index - 1], plays[index])
            if vote is not None:
                votes.add(vote)
            continue
        if len(votes) == 1:
            mode = next(iter(votes))
            modes[first:index] = [mode] * (index - first)
        first, votes = index, set()
    return modes


def stamp_modes_among(
    plays: Sequence[tuple[datetime, int]], neighbours: Iterable[tuple[datetime, int]]
) -> list[Stamping | None]:
    """``stamp_modes`` of ``plays`` told with other items heard around them.

    Neighbours (local files, episodes: items not stored as plays) are
    heard like the rest: a local file after two repeats of one track says which way the
    client stamps, where the repeats alone cannot.
    """
    own = {moment for moment, _ in plays}
    timeline = sorted(
        [(moment, length, row) for row, (moment, length) in enumerate(plays)]
        + [(moment, length, -1) for moment, length in set(neighbours) if moment not in own]
    )
    modes: list[Stamping | None] = [None] * len(plays)
    for (_, _, row), mode in zip(
        timeline, stamp_modes([(moment, length) for moment, length, _ in timeline]), strict=True
    ):
        if row >= 0:
            modes[row] = mode
    return modes


class Neighbours:
    """Timings of recent items stored as no play, newest ``limit`` kept (instant -> length)."""

    def __init__(self, limit: int) -> None:
        """Keep at most ``limit``: only neighbours of plays still in Spotify's window matter."""
        self._limit = limit
        self._lengths: dict[datetime, int] = {}

    def note(self, timings: Iterable[tuple[datetime, int]]) -> None:
        """Remember these (played_at, length) pairs, dropping the oldest beyond the bound."""
        self._lengths.update(timings)
        for moment in sorted(self._lengths)[: max(0, len(self._lengths) - self._limit)]:
            del self._lengths[moment]

    def forget_before(self, moment: datetime) -> None:
        """Drop the neighbours older than ``moment``."""
        for older in [at for at in self._lengths if at < moment]:
            del self._lengths[older]

    def timings(self) -> list[tuple[datetime, int]]:
        """The neighbours as (played_at, length) pairs."""
        return list(self._lengths.items())


def _fits(distance: timedelta, length_ms: int) -> bool:
    """Whether ``distance`` is one play of ``length_ms`` (0: unknown length, never)."""
    residual = distance - timedelta(milliseconds=length_ms)
    return length_ms > 0 and -EARLY <= residual <= LATE


def _back_to_back(earlier: tuple[datetime, int], later: tuple[datetime, int]) -> bool:
    """Whether two plays lie one of them apart: heard one right after the other."""
    distance = later[0] - earlier[0]
    return _fits(distance, later[1]) or _fits(distance, earlier[1])


def _vote(earlier: tuple[datetime, int], later: tuple[datetime, int]) -> Stamping | None:
    """'end' if they lie the later play apart only, 'start' if the earlier only."""
    distance = later[0] - earlier[0]
    ends, starts = _fits(distance, later[1]), _fits(distance, earlier[1])
    if ends == starts:
        return None
    return "end" if ends else "start"
