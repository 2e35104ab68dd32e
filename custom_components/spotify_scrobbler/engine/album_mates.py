"""An album's other tracks, for enriching imported plays an album at a time.

Plain Python (no I/O, no Home Assistant). Development-mode apps get one track per request;
``GET /albums/{id}`` lists up to 50 of the album's tracks with their ids, artists and
lengths. Which album a track is on comes from Spotify (the track object, or the album's
own listing by track id), never from names alone, so no play can get a wrong album or
artist. Names only tell whether an album request is worth making: whether any other
queued track's export names the same album and artist.
"""

from __future__ import annotations

from typing import Any, Final

STUB_FIELD: Final = "scrobbler_stub"  # the history import's stub tracks (export names)


def album_of(track: dict[str, Any]) -> dict[str, Any] | None:
    """The album object a full track object names, if it names one with an id."""
    album = track.get("album")
    return album if isinstance(album, dict) and isinstance(album.get("id"), str) else None


def listed_tracks(album: dict[str, Any]) -> list[dict[str, Any]]:
    """The album's listed tracks as full track objects (simplified ones plus the album)."""
    page = album.get("tracks")
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(items, list):
        return []
    reference = {key: value for key, value in album.items() if key != "tracks"}
    return [
        {**item, "album": reference}
        for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def export_names(track: dict[str, Any]) -> tuple[str, set[str]] | None:
    """(album name, artist names) an export entry of ``track`` could carry.

    The export names the track's album and its primary artist; for a compilation that
    is not the album's artist, so both the track's and the album's artists count. None
    when the names to compare are missing (then no album request is made for it).
    """
    album = album_of(track)
    name = album.get("name") if album is not None else None
    artists = {
        artist["name"]
        for source in (track.get("artists"), album.get("artists") if album else None)
        if isinstance(source, list)
        for artist in source
        if isinstance(artist, dict) and isinstance(artist.get("name"), str)
    }
    if not isinstance(name, str) or not artists:
        return None
    return name, artists
