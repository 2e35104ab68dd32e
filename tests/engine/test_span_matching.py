"""The live loop's matching of imported plays to live plays (RecentPlays, span_matching)."""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.spotify_scrobbler.engine.recent_plays import RecentPlays
from custom_components.spotify_scrobbler.engine.span_matching import ImportSpan, match_spans

LENGTH = timedelta(milliseconds=271_393)
GAP = timedelta(milliseconds=250)  # between back-to-back plays
START = datetime(2026, 12, 7, 4, 10, 0, 300_000, tzinfo=UTC)


def _plays(count: int, start: datetime = START) -> list[tuple[datetime, datetime]]:
    """(start, end) of ``count`` back-to-back plays of one track."""
    plays = []
    for _ in range(count):
        plays.append((start, start + LENGTH))
        start += LENGTH + GAP
    return plays


def _recent(plays: list[tuple[datetime, datetime]]) -> RecentPlays:
    """The cache holding these plays as imported ones (ts in whole seconds)."""
    recent = RecentPlays()
    ms_played = LENGTH // timedelta(milliseconds=1)
    for _, end in plays:
        recent.add_imported("t", end.replace(microsecond=0), ms_played)
    return recent


@pytest.mark.parametrize("stamp", ["start", "end"])
@pytest.mark.parametrize("count", [2, 3, 5])
def test_back_to_back_repeats_each_take_their_own_import(stamp: str, count: int) -> None:
    """Soak seed 102: an end-stamped play lies nearer to where the export says the repeat
    began than to its own ts; nearest first left a repeat without an import (stored twice)."""
    plays = _plays(count)
    recent = _recent(plays)
    live = [("t", start if stamp == "start" else end) for start, end in plays]
    assert recent.match_imported(live) == set(range(count))


def test_only_the_repeat_imported_takes_the_nearest_play() -> None:
    """A play, another track, the repeat: only the repeat is in the export. The first play
    lies in the repeat's span (its pause allowance), yet the repeat itself takes it."""
    first, repeat = _plays(1)[0], _plays(1, START + LENGTH + timedelta(minutes=3))[0]
    recent = _recent([repeat])
    for stamp in (0, 1):
        assert recent.match_imported([("t", first[stamp]), ("t", repeat[stamp])]) == {1}
        recent = _recent([repeat])


def test_an_import_stands_for_the_play_that_took_it_before() -> None:
    """A live play seen again keeps its import; the next play is matched with the rest."""
    plays = _plays(2)
    recent = _recent(plays)
    assert recent.match_imported([("t", plays[0][1])]) == {0}
    assert recent.match_imported([("t", plays[0][1]), ("t", plays[1][1])]) == {0, 1}


def test_a_play_outside_every_span_takes_nothing() -> None:
    """A live play more than a span away from every import is a play of its own."""
    (play,) = _plays(1)
    spans = [ImportSpan(play[0] - timedelta(minutes=10), play[1], play[0], play[1])]
    assert match_spans([play[1] + timedelta(minutes=1), play[1]], spans) == {1: 0}
    assert match_spans([play[1] + timedelta(minutes=1)], spans) == {}


@pytest.mark.xfail(
    strict=True,
    reason="by timing alone, end-stamped repeats are start-stamped repeats shifted by one "
    "play: without another track around them to tell the stamping, the matching guesses",
)
def test_an_earlier_repeat_outside_the_export_takes_no_import() -> None:
    """Soak seed 105, reduced: three back-to-back end-stamped plays waiting for MongoDB,
    the export holds only the last two. The first play's end lies where the export says
    the second began (the 0.25 s gap less the ts fraction), so the least distance pairs
    every live play with the next play's import: the last play is left over and stored
    twice, the first is lost. Today's rule cannot tell this from start-stamped plays."""
    plays = _plays(3, START.replace(microsecond=730_000))
    recent = _recent(plays[1:])
    live = [("t", end) for _, end in plays]
    assert recent.match_imported(live) == {1, 2}


def test_the_stamping_tells_which_repeat_an_import_stands_for() -> None:
    """Soak seeds 105 and 11: the same three plays, the export holding only the last two.
    Known to be end-stamped, each import takes its own play and the play outside the
    export is left to be stored. (Start-stamped plays lie nearest their own import's start
    anyway: the nearest anchor was never wrong for them.)"""
    plays = _plays(3, START.replace(microsecond=730_000))
    recent = _recent(plays[1:])
    live = [("t", end) for _, end in plays]
    assert recent.match_imported(live, ["end"] * 3) == {1, 2}


def _span(play: tuple[datetime, datetime]) -> ImportSpan:
    """An imported play's span as the cache holds it (10 min back for pauses, 30 s on)."""
    start, end = play
    return ImportSpan(start - timedelta(minutes=10), end + timedelta(seconds=30), start, end)


def test_plays_far_apart_are_matched_each_with_its_own_import() -> None:
    """Two plays of a track hours apart, both imported, both live: separate matchings."""
    first = _plays(1)[0]
    later = _plays(1, START + timedelta(hours=3))[0]
    assert match_spans([first[1], later[1]], [_span(first), _span(later)]) == {0: 0, 1: 1}


def test_a_repeat_never_seen_live_leaves_the_first_play_its_own_import() -> None:
    """Back-to-back plays both imported, only the first seen live (end-stamped): it lies in
    both spans and takes its own, the one it ended; the repeat's import stays free."""
    first, repeat = _plays(2)
    assert match_spans([first[1]], [_span(first), _span(repeat)]) == {0: 0}
