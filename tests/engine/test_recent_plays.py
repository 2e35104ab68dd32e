"""The live loop's cache of recent plays: bounded by pruning, and its JSON form."""

from datetime import UTC, datetime, timedelta

from custom_components.spotify_scrobbler.engine.pending import PendingPlays
from custom_components.spotify_scrobbler.engine.recent_plays import RecentPlays
from custom_components.spotify_scrobbler.engine.scrobbler import Scrobbler

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_prune_forgets_plays_and_imported_spans_before_the_window() -> None:
    """Old live plays and old imported plays are forgotten; newer ones still count."""
    recent = RecentPlays()
    recent.add_all([("old", AT - 200 * MINUTE), ("new", AT), ("new", AT - 300 * MINUTE)])
    recent.add_imported("old", AT - 180 * MINUTE, 200_000)
    recent.add_imported("new", AT + 5 * MINUTE, 200_000)
    recent.covered_from(AT - 400 * MINUTE)
    assert len(recent) == 3

    recent.prune(AT - 60 * MINUTE)

    assert len(recent) == 1
    assert recent.complete_from == AT - 60 * MINUTE
    assert not recent.has_play_near("old", AT - 200 * MINUTE)
    assert recent.has_play_near("new", AT)
    # The old import is gone, the new one still stands for the live play of its span.
    assert recent.match_imported([("old", AT - 182 * MINUTE)]) == set()
    assert recent.match_imported([("new", AT + 5 * MINUTE)]) == {0}


def test_json_round_trip_and_an_unusable_form() -> None:
    """The outbox's JSON form restores the cache; anything unusable leaves it empty."""
    recent = RecentPlays()
    recent.add_all([("a", AT), ("b", AT + MINUTE)])
    recent.covered_from(AT - MINUTE)
    restored = RecentPlays()
    restored.restore(recent.to_json())
    assert len(restored) == 2
    assert restored.complete_from == AT - MINUTE
    assert restored.has_play_near("b", AT + MINUTE)
    restored.restore({"plays": [["a", "not a time"]]})
    assert len(restored) == 0
    assert restored.complete_from is None


def test_imported_plays_and_their_live_plays_survive_the_json_form() -> None:
    """A restart that trusts the file still knows which live play each import stands for."""
    recent = RecentPlays()
    recent.add_imported("t", AT, 200_000)
    recent.add_imported("u", AT, 180_000)
    assert recent.match_imported([("t", AT)]) == {0}
    restored = RecentPlays()
    restored.restore(recent.to_json())
    # The import of "t" is taken by its live play, which a later batch no longer holds.
    assert restored.match_imported([("t", AT - 2 * MINUTE)]) == set()
    assert restored.match_imported([("t", AT)]) == {0}
    # The import of "u" is free, and stands for a live play within its span.
    assert restored.match_imported([("u", AT - 3 * MINUTE)]) == {0}
    restored.restore({"plays": [], "imported": [["u", "bad", "bad", None]]})
    assert restored.match_imported([("u", AT)]) == set()


async def test_nothing_waiting_needs_no_query() -> None:
    """Sorting the waiting plays with none waiting asks MongoDB nothing."""
    scrobbler = Scrobbler(None, None, None, pending=PendingPlays())  # type: ignore[arg-type]
    assert await scrobbler.sort_waiting() == (frozenset(), frozenset())


def test_an_import_taken_by_a_play_no_longer_in_the_batch_stays_taken() -> None:
    """A later batch without the live play that took an import cannot give it to another."""
    recent = RecentPlays()
    recent.add_imported("t", AT, 200_000)
    assert recent.match_imported([("t", AT)]) == {0}
    assert recent.match_imported([("t", AT - 2 * MINUTE)]) == set()
