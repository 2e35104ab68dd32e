"""The stored plays of the live loop's window that this process knows, imported ones apart.

Plain Python (no I/O, no Home Assistant). The scrobbler asks MongoDB only about the part of
its window this cache does not cover, and matches live plays to imported ones through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from .models import DUPLICATE_WINDOW
from .payload import as_utc
from .span_matching import ImportSpan, match_spans
from .stamp_modes import Stamping

# A start-stamped play paused on the way began earlier than the export's ms_played says.
IMPORT_PAUSE_ALLOWANCE: Final = timedelta(minutes=10)


class RecentPlays:
    """Stored plays of one account from ``complete_from`` on, as far as this process knows.

    Holds at most the lookback window (pruned every cycle), so it stays small whatever the
    size of the history; forgotten after any failed cycle so MongoDB is asked again.
    """

    def __init__(self) -> None:
        """Know nothing yet."""
        self._by_track: dict[str, set[datetime]] = {}
        # Imported plays by track: (start, end) of the span a live played_at of the same
        # play can have (start- or end-stamped, see the history import's rule).
        self._imported: dict[str, set[tuple[datetime, datetime]]] = {}
        # Where the play of each span began and ended by the export: (track, span start)
        # -> (ts - ms_played, ts), the two instants a live played_at can mark.
        self._bounds: dict[tuple[str, datetime], tuple[datetime, datetime]] = {}
        # The live play each imported play stands for, once seen: (track, span start) ->
        # live played_at. A later repeat right after it is another play, not this one.
        self._absorbed: dict[tuple[str, datetime], datetime] = {}
        self.complete_from: datetime | None = None

    def forget(self) -> None:
        """Drop everything (after a failure the cache may miss plays that were written)."""
        self._by_track.clear()
        self._imported.clear()
        self._bounds.clear()
        self._absorbed.clear()
        self.complete_from = None

    def add_all(self, plays: Iterable[tuple[str, datetime]]) -> None:
        """Remember stored plays."""
        for track_id, played_at in plays:
            self._by_track.setdefault(track_id, set()).add(played_at)

    def add_imported(self, track_id: str, ts: datetime, ms_played: int) -> None:
        """Remember a stored imported play: it stands for a live play anywhere in its span."""
        began = ts - timedelta(milliseconds=ms_played)
        start = began - IMPORT_PAUSE_ALLOWANCE
        self._imported.setdefault(track_id, set()).add((start, ts + DUPLICATE_WINDOW))
        self._bounds[track_id, start] = (began, ts)

    def match_imported(
        self,
        plays: Sequence[tuple[str, datetime]],
        stampings: Sequence[Stamping | None] | None = None,
    ) -> set[int]:
        """Which of ``plays`` (live plays not stored as such) imported plays stand for.

        One live play per imported play, chosen by ``span_matching``: as many as possible,
        those chosen before unless more pairs need them changed, else the one nearest to
        where the export says its play began or ended (a neighbouring repeat, which a
        span's pause allowance may reach, never takes the import of another play), measured
        to the anchor ``stampings`` names where known. An imported play that took a live
        play no longer in ``plays`` stays taken.
        """
        stampings = stampings or [None] * len(plays)
        matched: set[int] = set()
        by_track: dict[str, list[int]] = {}
        for index, (track_id, _) in enumerate(plays):
            by_track.setdefault(track_id, []).append(index)
        for track_id, indexes in by_track.items():
            instants = {plays[index][1]: row for row, index in enumerate(indexes)}
            free: list[tuple[datetime, datetime]] = []
            kept: dict[int, int] = {}
            for start, end in sorted(self._imported.get(track_id, ())):
                taker = self._absorbed.get((track_id, start))
                if taker is not None and taker not in instants:
                    continue
                if taker is not None:
                    kept[instants[taker]] = len(free)
                    del self._absorbed[track_id, start]
                free.append((start, end))
            spans = [ImportSpan(*span, *self._bounds[track_id, span[0]]) for span in free]
            pairs = match_spans(
                [plays[index][1] for index in indexes],
                spans,
                kept,
                [stampings[index] for index in indexes],
            )
            for row, column in pairs.items():
                matched.add(indexes[row])
                self._absorbed[track_id, free[column][0]] = plays[indexes[row]][1]
        return matched

    def covered_from(self, start: datetime) -> None:
        """Every stored play from ``start`` on is known now."""
        if self.complete_from is None or start < self.complete_from:
            self.complete_from = start

    def has_play_near(self, track_id: str, played_at: datetime) -> bool:
        """Whether a stored play of the track is less than 30 s away."""
        return any(abs(t - played_at) < DUPLICATE_WINDOW for t in self._by_track.get(track_id, ()))

    def prune(self, before: datetime) -> None:
        """Forget plays older than ``before``; the cache is complete from there on only."""
        for track_id in list(self._by_track):
            kept = {t for t in self._by_track[track_id] if t >= before}
            if kept:
                self._by_track[track_id] = kept
            else:
                del self._by_track[track_id]
        for track_id in list(self._imported):
            spans = {span for span in self._imported[track_id] if span[1] >= before}
            if spans:
                self._imported[track_id] = spans
            else:
                del self._imported[track_id]
        spans_kept = {
            (track_id, start) for track_id, spans in self._imported.items() for start, _ in spans
        }
        self._bounds = {key: bounds for key, bounds in self._bounds.items() if key in spans_kept}
        self._absorbed = {key: at for key, at in self._absorbed.items() if key in spans_kept}
        if self.complete_from is not None and self.complete_from < before:
            self.complete_from = before

    def __len__(self) -> int:
        """Number of plays held."""
        return sum(len(times) for times in self._by_track.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in the outbox file: all a restart needs to skip MongoDB's query."""
        imported = []
        for (track_id, start), (began, ts) in self._bounds.items():
            taker = self._absorbed.get((track_id, start))
            imported.append(
                [track_id, began.isoformat(), ts.isoformat(), taker.isoformat() if taker else None]
            )
        return {
            "complete_from": self.complete_from.isoformat() if self.complete_from else None,
            "plays": [
                [track_id, at.isoformat()]
                for track_id, times in self._by_track.items()
                for at in times
            ],
            "imported": imported,
        }

    def restore(self, stored: Any) -> None:
        """Load the JSON form; anything unusable leaves the cache empty (MongoDB is asked)."""
        self.forget()
        try:
            plays = [(str(t), _instant(at)) for t, at in stored["plays"]]
            imported = [
                (str(t), _instant(began), _instant(ts), _instant(taker) if taker else None)
                for t, began, ts, taker in stored.get("imported", ())
            ]
            start = stored.get("complete_from")
            complete_from = _instant(start) if start else None
        except AttributeError, KeyError, TypeError, ValueError:
            return
        self.add_all(plays)
        for track_id, began, ts, taker in imported:
            self.add_imported(track_id, ts, int((ts - began) / timedelta(milliseconds=1)))
            if taker is not None:
                self._absorbed[track_id, began - IMPORT_PAUSE_ALLOWANCE] = taker
        self.complete_from = complete_from


def _instant(value: Any) -> datetime:
    return as_utc(datetime.fromisoformat(value))
