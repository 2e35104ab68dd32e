"""Telling start- from end-stamped live plays by the plays around them (stamp_modes)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from custom_components.spotify_scrobbler.engine.payload import item_timing, parse_time
from custom_components.spotify_scrobbler.engine.stamp_modes import (
    Neighbours,
    stamp_modes,
    stamp_modes_among,
)

RECORDED = Path(__file__).parent.parent / "fixtures" / "spotify-web-api"

START = datetime(2026, 12, 7, 9, 0, 0, 120_000, tzinfo=UTC)
GAP = timedelta(milliseconds=250)


def _stamped(lengths: list[int], stamp: str, start: datetime = START) -> list[tuple[datetime, int]]:
    """Back-to-back plays of these lengths (ms), as a client stamping ``stamp`` reports them."""
    plays = []
    for length in lengths:
        end = start + timedelta(milliseconds=length)
        plays.append((start if stamp == "start" else end, length))
        start = end + GAP
    return plays


def test_back_to_back_plays_of_different_lengths_tell_the_stamping() -> None:
    """A run of repeats between other tracks takes the run's stamping."""
    lengths = [200_000, 180_000, 240_000, 240_000, 240_000, 150_000]
    assert stamp_modes(_stamped(lengths, "end")) == ["end"] * 6
    assert stamp_modes(_stamped(lengths, "start")) == ["start"] * 6


def test_nothing_tells_repeats_alone_or_a_play_alone() -> None:
    """One track's repeats lie one length apart either way; a single play has no neighbour."""
    assert stamp_modes(_stamped([240_000] * 3, "end")) == [None] * 3
    assert stamp_modes(_stamped([240_000], "start")) == [None]
    assert stamp_modes([]) == []


def test_a_pause_separates_two_clients() -> None:
    """After a pause another client may stamp the other way: each run keeps its own."""
    first = _stamped([200_000, 180_000], "end")
    second = _stamped([150_000, 210_000], "start", START + timedelta(hours=1))
    assert stamp_modes(first + second) == ["end", "end", "start", "start"]


def test_a_run_whose_plays_disagree_tells_nothing() -> None:
    """Lengths that fit both ways in one run (a coincidence, or a client switch without
    pause): no guess."""
    end = _stamped([200_000, 180_000], "end")
    moment = end[-1][0] + timedelta(milliseconds=180_000 + 250)
    # Lies the earlier play's length after the last one: a start-stamped neighbour.
    assert stamp_modes([*end, (moment, 90_000)]) == [None, None, None]


def test_unknown_lengths_and_crossfades_tell_nothing() -> None:
    """A length of 0 (missing in the payload) fits no distance; plays overlapping by a
    crossfade lie less than a length apart either way."""
    assert stamp_modes([(START, 0), (START + timedelta(seconds=1), 0)]) == [None, None]
    crossfaded = [
        (START, 200_000),
        (START + timedelta(milliseconds=180_000 - 6_000), 180_000),
    ]
    assert stamp_modes(crossfaded) == [None, None]


def test_a_local_file_after_repeats_tells_their_stamping() -> None:
    """Two repeats alone fit both stampings; the local file heard next (not a play we store,
    yet heard like one) lies its own length after them only if the client stamps ends."""
    for stamp in ("end", "start"):
        timeline = _stamped([240_000, 240_000, 180_000], stamp)
        repeats, local = timeline[:2], timeline[2:]
        assert stamp_modes(repeats) == [None, None]
        assert stamp_modes_among(repeats, local) == [stamp, stamp]
        # Given in any order, and a neighbour at a play's own instant is that play.
        assert stamp_modes_among(repeats[::-1], [*local, repeats[0]]) == [stamp, stamp]
    assert stamp_modes_among([], _stamped([180_000], "end")) == []


def test_every_recorded_item_has_a_timing() -> None:
    """Tracks, local files and episodes alike give (played_at, length); junk gives none."""
    page = json.loads((RECORDED / "recently_played_tracks.json").read_text())
    for item in page["items"]:
        assert item_timing(item) == (parse_time(item["played_at"]), item["track"]["duration_ms"])
    local = {"played_at": "2026-02-01T10:00:00.000Z", "track": {"is_local": True, "id": None}}
    assert item_timing(local) is None  # no length: tells nothing
    local["track"] |= {"duration_ms": 180_000}
    assert item_timing(local) == (datetime(2026, 2, 1, 10, tzinfo=UTC), 180_000)
    for junk in (None, {"track": None}, {"played_at": "x", "track": {"duration_ms": 1}}):
        assert item_timing(junk) is None
    assert item_timing({"played_at": local["played_at"], "track": {"duration_ms": True}}) is None


def test_neighbours_keep_the_newest_and_forget_the_old() -> None:
    """Bounded however long only local files play; pruned with the cache of recent plays."""
    neighbours = Neighbours(3)
    timeline = _stamped([180_000] * 5, "end")
    neighbours.note(timeline[:2])
    neighbours.note(timeline[2:])
    assert sorted(neighbours.timings()) == timeline[2:]
    neighbours.forget_before(timeline[3][0])
    assert sorted(neighbours.timings()) == timeline[3:]
