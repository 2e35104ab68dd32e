"""Spotify payloads → typed plays and Your Spotify documents, and stored documents → details.

Every field of Spotify's JSON is treated as untrusted: missing, null or mistyped values
make an item skipped or a field left out, never an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from .models import Play, PlayDetails
from .store import Document

_LOGGER = logging.getLogger(__name__)

SPOTIFY_ID: Final = re.compile(r"[0-9A-Za-z]{1,64}")
EARLIEST_PLAY: Final = datetime(2000, 1, 1, tzinfo=UTC)  # Spotify launched in 2008
LATEST_PLAY: Final = datetime(3000, 1, 1, tzinfo=UTC)

TRACK_FIELDS: Final = (
    "name",
    "duration_ms",
    "disc_number",
    "track_number",
    "explicit",
    "external_ids",
    "external_urls",
    "preview_url",
    "popularity",
    "is_local",
    "href",
    "uri",
    "type",
)
ALBUM_FIELDS: Final = (
    "name",
    "album_type",
    "release_date",
    "release_date_precision",
    "total_tracks",
    "images",
    "external_urls",
    "href",
    "uri",
    "type",
)
ARTIST_FIELDS: Final = (
    "name",
    "genres",
    "images",
    "popularity",
    "followers",
    "external_urls",
    "href",
    "uri",
    "type",
)


@dataclass(slots=True, frozen=True)
class ParsedItem:
    """A recently-played item that is a real track, with its documents."""

    play: Play
    details: PlayDetails
    track: Document
    album: Document | None
    artists: tuple[Document, ...]

    def to_item(self) -> dict[str, Any]:
        """Back to a recently-played item holding only the stored fields (parse_item's input)."""
        track = {k: v for k, v in self.track.items() if k not in {"album", "artists"}}
        track["artists"] = [dict(artist) for artist in self.artists]
        if self.album is not None:
            track["album"] = {k: v for k, v in self.album.items() if k != "artists"} | {
                "artists": [{"id": artist_id} for artist_id in self.album.get("artists", ())]
            }
        played_at = self.play.played_at.astimezone(UTC)
        return {
            "played_at": played_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{played_at:%f}"[:3] + "Z",
            "track": track,
        }


def parse_item(item: Any, blacklist: set[str]) -> ParsedItem | None:
    """A recently-played item as a play, or None for local files, episodes and junk."""
    if not isinstance(item, dict):
        return None
    track = item.get("track")
    played_at = parse_time(item.get("played_at"))
    if not isinstance(track, dict) or played_at is None:
        _LOGGER.debug("skipping a recently-played item without track or played_at")
        return None
    track_id = track.get("id")
    if track.get("type") != "track" or track.get("is_local") or not _is_id(track_id):
        _LOGGER.debug("skipping %s (local file or not a track)", track.get("uri"))
        return None
    assert isinstance(track_id, str)  # checked by _is_id  # noqa: S101
    artists = tuple(
        _pick(a, ARTIST_FIELDS) | {"id": a["id"]}
        for a in track.get("artists") or ()
        if isinstance(a, dict) and _is_id(a.get("id"))
    )
    raw_album = track.get("album")
    album: Document | None = None
    if isinstance(raw_album, dict) and _is_id(raw_album.get("id")):
        album = _pick(raw_album, ALBUM_FIELDS) | {
            "id": raw_album["id"],
            "artists": [
                a["id"]
                for a in raw_album.get("artists") or ()
                if isinstance(a, dict) and _is_id(a.get("id"))
            ],
        }
    duration = track.get("duration_ms")
    duration_ms = duration if isinstance(duration, int) and duration >= 0 else 0
    artist_ids = tuple(a["id"] for a in artists)
    play = Play(
        track_id=track_id,
        played_at=played_at,
        album_id=album["id"] if album else None,
        artist_ids=artist_ids,
        duration_ms=duration_ms,
        blacklisted=bool(artist_ids) and artist_ids[0] in blacklist,
    )
    track_doc = _pick(track, TRACK_FIELDS) | {
        "id": track_id,
        "album": play.album_id,
        "artists": list(artist_ids),
    }
    name = track.get("name")
    details = PlayDetails(
        play=play,
        track_name=name if isinstance(name, str) else track_id,
        artist_names=tuple(str(a.get("name", "")) for a in artists),
        album_name=str(album["name"]) if album and isinstance(album.get("name"), str) else None,
        image_url=_first_image(album),
        spotify_url=_spotify_url(track),
    )
    return ParsedItem(play, details, track_doc, album, artists)


def details_from_documents(
    info: Document,
    tracks: dict[str, Document],
    albums: dict[str, Document],
    artists: dict[str, Document],
) -> PlayDetails | None:
    """Rebuild a stored play's details (names, cover) from its documents."""
    track_id = info.get("id")
    played_at = info.get("played_at")
    if not isinstance(track_id, str) or not isinstance(played_at, datetime):
        _LOGGER.warning("Ignoring a malformed play document in MongoDB")
        return None
    artist_ids = tuple(i for i in info.get("artistIds") or () if isinstance(i, str))
    duration = info.get("durationMs")
    play = Play(
        track_id=track_id,
        played_at=as_utc(played_at),
        album_id=info.get("albumId") if isinstance(info.get("albumId"), str) else None,
        artist_ids=artist_ids,
        duration_ms=duration if isinstance(duration, int) else 0,
        blacklisted="blacklistedBy" in info,
    )
    track = tracks.get(track_id, {})
    album = albums.get(play.album_id or "")
    name = track.get("name")
    return PlayDetails(
        play=play,
        track_name=name if isinstance(name, str) else track_id,
        artist_names=tuple(str(artists.get(i, {}).get("name", i)) for i in artist_ids),
        album_name=str(album["name"]) if album and isinstance(album.get("name"), str) else None,
        image_url=_first_image(album),
        spotify_url=_spotify_url(track),
    )


def artist_document(obj: dict[str, Any]) -> Document:
    """The ``artists`` document of a full artist object (genres and images included)."""
    doc = _pick(obj, ARTIST_FIELDS) | {"id": obj["id"]}
    doc.setdefault("genres", [])
    doc.setdefault("images", [])
    return doc


def _pick(source: dict[str, Any], fields: Iterable[str]) -> Document:
    return {key: source[key] for key in fields if key in source}


def item_timing(item: Any) -> tuple[datetime, int] | None:
    """Any recently-played item's (played_at, length in ms): local files and episodes too.

    Items that are not stored as plays still tell how their client stamps the plays around
    them (see ``stamp_modes``).
    """
    if not isinstance(item, dict) or not isinstance(track := item.get("track"), dict):
        return None
    played_at, length = parse_time(item.get("played_at")), track.get("duration_ms")
    if played_at is None or not isinstance(length, int) or isinstance(length, bool):
        return None
    return played_at, length


def _is_id(value: object) -> bool:
    return isinstance(value, str) and SPOTIFY_ID.fullmatch(value) is not None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 instant with a zone (Spotify's played_at, the export's ts) as UTC.

    Truncated to milliseconds like BSON dates. Instants outside EARLIEST_PLAY..LATEST_PLAY
    are not plays (year 1 or 9999 would overflow the ±30 s duplicate window later).
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 in a zone east of UTC
        return None
    if not EARLIEST_PLAY <= moment <= LATEST_PLAY:
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (BSON dates may come back naive)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _first_image(album: Document | None) -> str | None:
    images = album.get("images") if album else None
    if isinstance(images, list) and images and isinstance(images[0], dict):
        url = images[0].get("url")
        return url if isinstance(url, str) else None
    return None


def _spotify_url(track: dict[str, Any]) -> str | None:
    urls = track.get("external_urls")
    url = urls.get("spotify") if isinstance(urls, dict) else None
    return url if isinstance(url, str) else None
