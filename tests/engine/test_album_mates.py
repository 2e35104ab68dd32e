"""An album's listing as track objects, and when it is worth asking for (recorded payload)."""

import json
from pathlib import Path
from typing import Any

from custom_components.spotify_scrobbler.engine.album_mates import (
    album_of,
    export_names,
    listed_tracks,
)
from custom_components.spotify_scrobbler.engine.payload import parse_item

RECORDED = Path(__file__).parent.parent / "fixtures" / "spotify-web-api" / "get_album.json"


def recorded_album() -> dict[str, Any]:
    """Spotify's real GET /v1/albums/{id} answer."""
    album: dict[str, Any] = json.loads(RECORDED.read_text())
    return album


def test_the_listing_reads_as_the_albums_tracks() -> None:
    """Every listed track parses as a play of this album, with its own artists and length."""
    album = recorded_album()
    tracks = listed_tracks(album)
    assert len(tracks) == len(album["tracks"]["items"]) == 11
    for track, item in zip(tracks, album["tracks"]["items"], strict=True):
        parsed = parse_item({"track": track, "played_at": "2026-02-01T10:00:00.000Z"}, set())
        assert parsed is not None
        assert parsed.play.track_id == item["id"]
        assert parsed.play.album_id == album["id"]
        assert list(parsed.play.artist_ids) == [a["id"] for a in item["artists"]]
        assert parsed.play.duration_ms == item["duration_ms"]
        assert "tracks" not in track["album"]


def test_an_unusable_listing_lists_nothing() -> None:
    """No page, no items, or items without an id: nothing."""
    assert listed_tracks({"id": "a"}) == []
    assert listed_tracks({"id": "a", "tracks": {"items": None}}) == []
    assert listed_tracks({"id": "a", "tracks": {"items": [{"name": "no id"}, "x"]}}) == []


def test_the_names_an_export_entry_could_carry() -> None:
    """The album's name, and the track's and the album's artists (compilations)."""
    album = recorded_album()
    track = listed_tracks(album)[0]
    assert album_of(track) is not None
    assert export_names(track) == ("SINGLARITY", {"Area 11"})
    various = {**track, "artists": [{"name": "Guest"}]}
    assert export_names(various) == ("SINGLARITY", {"Guest", "Area 11"})
    assert export_names({**track, "artists": [], "album": {"id": "x", "artists": []}}) is None
    assert export_names({"id": "t", "album": None, "artists": []}) is None
    assert album_of({"album": {"name": "no id"}}) is None
