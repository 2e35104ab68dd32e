"""The metadata id cache stays bounded whatever the history size."""

from custom_components.spotify_scrobbler.engine.known_metadata import BoundedIdSet


def test_least_recently_seen_ids_are_evicted() -> None:
    """Beyond its size the set forgets the ids seen longest ago."""
    ids = BoundedIdSet(size=3)
    ids.add_all(["a", "b", "c"])
    assert "a" in ids  # refreshes a
    ids.add_all(["d"])
    assert len(ids) == 3
    assert "b" not in ids
    assert all(i in ids for i in ("a", "c", "d"))
    ids.add_all(f"x{n}" for n in range(100))
    assert len(ids) == 3
