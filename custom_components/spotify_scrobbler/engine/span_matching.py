"""Which live plays of one track the imported plays stand for: the live loop's matching.

Pure functions (no I/O, no Home Assistant). An imported play covers a span of instants a
live ``played_at`` of the same play can have (start- or end-stamped, paused on the way);
each one stands for at most one live play, and each live play takes at most one.

The matching takes as many pairs as possible, and among those the live plays nearest to
where the export says each play began or ended. Nearest first alone is not enough: the
end of a play and the start of a back-to-back repeat lie a fraction of a second apart
(the export's whole seconds), so a live play nearest to its successor's start would take
that import and leave its own one, and its successor, unmatched: stored twice.

Where the plays around a live play tell how its client stamps (``stamp_modes``), it is
measured to that anchor only: for repeats back to back, timing alone cannot tell an
end-stamped play from the start-stamped next one.

The spans of one track's imports are ordered alike by their start and their end (real
plays do not overlap), so some best matching never pairs them crosswise, and one pass of
dynamic programming over the plays in time order finds it. (With stampings known for some
live plays only, the distances no longer share one measure: the pass then finds the best
non-crossing matching, still the most pairs.)
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .stamp_modes import Stamping


@dataclass(slots=True, frozen=True)
class ImportSpan:
    """One imported play: where a live played_at of it may lie, and its two anchors."""

    start: datetime
    end: datetime
    began: datetime  # ts - ms_played
    ended: datetime  # ts

    def distance(self, moment: datetime, stamping: Stamping | None = None) -> int:
        """Microseconds from ``moment`` to the anchor its stamping marks, else the nearer."""
        if stamping == "start":
            nearest = abs(moment - self.began)
        elif stamping == "end":
            nearest = abs(moment - self.ended)
        else:
            nearest = min(abs(moment - self.began), abs(moment - self.ended))
        return (nearest.days * 86_400 + nearest.seconds) * 1_000_000 + nearest.microseconds


def match_spans(
    live: Sequence[datetime],
    spans: Sequence[ImportSpan],
    kept: Mapping[int, int] | None = None,
    stampings: Sequence[Stamping | None] | None = None,
) -> dict[int, int]:
    """Live play index -> span index: the most pairs, then the least total distance.

    ``live`` and ``spans`` are one track's; a pair needs the live instant inside the span.
    ``kept`` are pairs an earlier matching chose (live index -> span index): they count as
    no distance, so they stay unless more pairs need them changed. ``stampings`` (per live
    play, see ``stamp_modes``) measure each live play to the anchor it marks.
    """
    kept = kept or {}
    stampings = stampings or [None] * len(live)
    points = sorted(range(len(live)), key=lambda index: live[index])
    order = sorted(range(len(spans)), key=lambda index: (spans[index].end, spans[index].start))
    times = [live[index] for index in points]
    # Independent blocks: consecutive spans whose ranges of live plays overlap.
    matched: dict[int, int] = {}
    block: list[tuple[int, int, int]] = []  # (span index, first point, end point)
    reach = -1
    for span_index in order:
        span = spans[span_index]
        first = bisect.bisect_left(times, span.start)
        last = bisect.bisect_right(times, span.end)
        if first >= last:
            continue
        if block and first >= reach:
            matched.update(_best(block, points, live, spans, kept=kept, stampings=stampings))
            block = []
        block.append((span_index, first, last))
        reach = max(reach, last)
    if block:
        matched.update(_best(block, points, live, spans, kept=kept, stampings=stampings))
    return matched


def _best(
    block: Sequence[tuple[int, int, int]],
    points: Sequence[int],
    live: Sequence[datetime],
    spans: Sequence[ImportSpan],
    *,
    kept: Mapping[int, int],
    stampings: Sequence[Stamping | None],
) -> dict[int, int]:
    """One block's best non-crossing matching (points and spans both in time order)."""
    low = min(first for _, first, _ in block)
    high = max(last for _, _, last in block)
    rows = [points[position] for position in range(low, high)]
    # score[i][j]: (pairs, -distance) of the best matching of the first i live plays with
    # the first j spans; choice[i][j] how it was reached.
    width = len(block) + 1
    score: list[list[tuple[int, int]]] = [[(0, 0)] * width for _ in range(len(rows) + 1)]
    choice = [bytearray(width) for _ in range(len(rows) + 1)]
    for i in range(1, len(rows) + 1):
        moment = live[rows[i - 1]]
        for j in range(1, width):
            best, how = score[i - 1][j], 1  # live play i unmatched
            if score[i][j - 1] > best:
                best, how = score[i][j - 1], 2  # span j unmatched
            span_index = block[j - 1][0]
            span = spans[span_index]
            if span.start <= moment <= span.end:
                pairs, distance = score[i - 1][j - 1]
                cost = (
                    0
                    if kept.get(rows[i - 1]) == span_index
                    else span.distance(moment, stampings[rows[i - 1]])
                )
                paired = (pairs + 1, distance - cost)
                if paired > best:
                    best, how = paired, 3
            score[i][j], choice[i][j] = best, how
    result: dict[int, int] = {}
    i, j = len(rows), width - 1
    while i and j:
        how = choice[i][j]
        if how == 3:
            result[rows[i - 1]] = block[j - 1][0]
            i, j = i - 1, j - 1
        elif how == 2:
            j -= 1
        else:
            i -= 1
    return result
