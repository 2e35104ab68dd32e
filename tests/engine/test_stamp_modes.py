"""Telling start- from end-stamped live plays by the plays around them (stamp_modes)."""

from datetime import UTC, datetime, timedelta

from custom_components.spotify_scrobbler.engine.stamp_modes import stamp_modes

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
