"""A fake Spotify Web API for tests and benchmarks.

Three layers, usable on their own:

* payload builders: pure functions that return Spotify's documented JSON shapes;
* ``Catalog`` / ``listening_day``: a deterministic catalogue and a day of plays to replay;
* ``FakeSpotify``: an aiohttp server on 127.0.0.1 that serves ``/v1`` and ``/api/token`` from a
  catalogue and a list of plays, with a settable clock, a request log and scripted faults.

Only the standard library and aiohttp are used, so it runs without Home Assistant.

Defaults follow what a Home Assistant user gets in 2026 (GUIDE.md §3): a development-mode app,
so ``dev_mode=True`` (no ``popularity``, ``followers``, ``available_markets``) and
``batch_allowed=False`` (``GET /tracks?ids=`` & co. answer 403).
"""

import asyncio
import contextlib
import itertools
import random
import re
import string
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self

from aiohttp import web
from aiohttp.typedefs import Handler

type Json = dict[str, Any]

API_ORIGIN = "https://api.spotify.com"
API_V1 = f"{API_ORIGIN}/v1"
OPEN_ORIGIN = "https://open.spotify.com"
IMAGE_ORIGIN = "https://i.scdn.co/image"

HISTORY_SIZE = 50
"""Spotify keeps only the last ~50 plays reachable through recently-played."""
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
BATCH_MAX_IDS = {"tracks": 50, "albums": 20, "artists": 50}
SCOPE = "user-read-recently-played user-read-private"
MARKETS = ("DE", "FR", "GB", "SE", "US")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BASE62 = string.digits + string.ascii_letters
_ID_RE = re.compile(r"[0-9A-Za-z]{22}")

# Spotify's image ids start with a prefix that encodes kind and size.
_ALBUM_IMAGE_PREFIXES = (
    (640, "ab67616d0000b273"),
    (300, "ab67616d00001e02"),
    (64, "ab67616d00004851"),
)
_ARTIST_IMAGE_PREFIXES = (
    (640, "ab6761610000e5eb"),
    (320, "ab67616100005174"),
    (160, "ab6761610000f178"),
)


# --------------------------------------------------------------------------- time helpers


def to_unix_ms(moment: datetime) -> int:
    """Unix milliseconds, computed without float rounding."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_unix_ms(ms: int) -> datetime:
    """Aware UTC datetime from Unix milliseconds."""
    return _EPOCH + timedelta(milliseconds=ms)


def truncate_ms(moment: datetime) -> datetime:
    """Drop sub-millisecond precision: Spotify and MongoDB both stop at milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_played_at(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and 'Z', as Spotify sends: 2026-11-24T10:00:00.123Z."""
    if moment.tzinfo is None:
        raise ValueError("played_at must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_played_at(value: str) -> datetime:
    """Inverse of ``format_played_at`` (also accepts Spotify's variant without milliseconds)."""
    return datetime.fromisoformat(value)


# --------------------------------------------------------------------------- payload builders


def image_object(url: str, size: int) -> Json:
    """Spotify image object (square)."""
    return {"url": url, "height": size, "width": size}


def _links(kind: str, entity_id: str | None) -> Json:
    """external_urls, href and uri of a catalogue object; all empty/null for local files."""
    if entity_id is None:
        return {"external_urls": {}, "href": None, "uri": None}
    return {
        "external_urls": {"spotify": f"{OPEN_ORIGIN}/{kind}/{entity_id}"},
        "href": f"{API_V1}/{kind}s/{entity_id}",
        "uri": f"spotify:{kind}:{entity_id}",
    }


def simplified_artist(artist_id: str | None, name: str) -> Json:
    """Simplified artist object, as embedded in tracks and albums (no genres, no images)."""
    links = _links("artist", artist_id)
    return {
        "external_urls": links["external_urls"],
        "href": links["href"],
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": links["uri"],
    }


def full_artist(
    artist_id: str,
    name: str,
    *,
    genres: Sequence[str] = (),
    images: Sequence[Json] = (),
    followers: int = 0,
    popularity: int = 0,
    dev_mode: bool = False,
) -> Json:
    """Artist object of GET /artists/{id}; dev-mode apps get no followers/popularity."""
    payload = simplified_artist(artist_id, name)
    payload["genres"] = list(genres)
    payload["images"] = list(images)
    if not dev_mode:
        payload["followers"] = {"href": None, "total": followers}
        payload["popularity"] = popularity
    return dict(sorted(payload.items()))


def simplified_album(
    album_id: str | None,
    name: str,
    *,
    artists: Sequence[Json],
    album_type: str | None = "album",
    total_tracks: int = 1,
    release_date: str | None = "2020-01-01",
    release_date_precision: str | None = "day",
    images: Sequence[Json] = (),
    available_markets: Sequence[str] = MARKETS,
    dev_mode: bool = False,
) -> Json:
    """Simplified album object, as embedded in track objects."""
    links = _links("album", album_id)
    payload: Json = {
        "album_type": album_type,
        "artists": list(artists),
        "external_urls": links["external_urls"],
        "href": links["href"],
        "id": album_id,
        "images": list(images),
        "name": name,
        "release_date": release_date,
        "release_date_precision": release_date_precision,
        "total_tracks": total_tracks,
        "type": "album",
        "uri": links["uri"],
    }
    if not dev_mode:
        payload["available_markets"] = list(available_markets)
    return payload


def simplified_track(
    track_id: str | None,
    name: str,
    *,
    artists: Sequence[Json],
    duration_ms: int = 200_000,
    track_number: int = 1,
    disc_number: int = 1,
    explicit: bool = False,
    is_local: bool = False,
    uri: str | None = None,
    available_markets: Sequence[str] = MARKETS,
    dev_mode: bool = False,
) -> Json:
    """Simplified track object, as listed in an album's ``tracks``."""
    links = _links("track", track_id)
    payload: Json = {
        "artists": list(artists),
        "disc_number": disc_number,
        "duration_ms": duration_ms,
        "explicit": explicit,
        "external_urls": links["external_urls"],
        "href": links["href"],
        "id": track_id,
        "is_local": is_local,
        "is_playable": not is_local,
        "name": name,
        "preview_url": None,  # Spotify stopped serving previews to new apps in Nov 2024.
        "track_number": track_number,
        "type": "track",
        "uri": uri if uri is not None else links["uri"],
    }
    if not dev_mode:
        payload["available_markets"] = [] if is_local else list(available_markets)
    return payload


def track_object(
    track_id: str | None,
    name: str,
    *,
    album: Json,
    artists: Sequence[Json],
    duration_ms: int = 200_000,
    track_number: int = 1,
    disc_number: int = 1,
    explicit: bool = False,
    isrc: str | None = None,
    popularity: int = 0,
    is_local: bool = False,
    uri: str | None = None,
    available_markets: Sequence[str] = MARKETS,
    dev_mode: bool = False,
) -> Json:
    """Full track object (GET /tracks/{id}, and the ``track`` of a recently-played item)."""
    payload = simplified_track(
        track_id,
        name,
        artists=artists,
        duration_ms=duration_ms,
        track_number=track_number,
        disc_number=disc_number,
        explicit=explicit,
        is_local=is_local,
        uri=uri,
        available_markets=available_markets,
        dev_mode=dev_mode,
    )
    payload["album"] = album
    payload["external_ids"] = {"isrc": isrc} if isrc is not None else {}
    if not dev_mode:
        payload["popularity"] = popularity
    return dict(sorted(payload.items()))


def full_album(
    album_id: str,
    name: str,
    *,
    artists: Sequence[Json],
    tracks: Sequence[Json],
    album_type: str = "album",
    release_date: str = "2020-01-01",
    release_date_precision: str = "day",
    images: Sequence[Json] = (),
    label: str = "",
    upc: str | None = None,
    popularity: int = 0,
    available_markets: Sequence[str] = MARKETS,
    dev_mode: bool = False,
) -> Json:
    """Album object of GET /albums/{id}; ``tracks`` are simplified tracks (one page holds all)."""
    payload = simplified_album(
        album_id,
        name,
        artists=artists,
        album_type=album_type,
        total_tracks=len(tracks),
        release_date=release_date,
        release_date_precision=release_date_precision,
        images=images,
        available_markets=available_markets,
        dev_mode=dev_mode,
    )
    payload["tracks"] = {
        "href": f"{API_V1}/albums/{album_id}/tracks?offset=0&limit=50",
        "items": list(tracks),
        "limit": 50,
        "next": None,
        "offset": 0,
        "previous": None,
        "total": len(tracks),
    }
    payload["copyrights"] = [{"text": f"(C) {release_date[:4]} {label}", "type": "C"}]
    payload["external_ids"] = {"upc": upc} if upc is not None else {}
    payload["genres"] = []  # deprecated by Spotify: always empty
    payload["label"] = label
    if not dev_mode:
        payload["popularity"] = popularity
    return dict(sorted(payload.items()))


def local_file_uri(artist: str, album: str, title: str, duration_ms: int) -> str:
    """spotify:local:artist:album:title:seconds, each part form-encoded like Spotify does."""
    parts = (urllib.parse.quote_plus(part) for part in (artist, album, title))
    return f"spotify:local:{':'.join(parts)}:{duration_ms // 1000}"


def local_track_object(
    title: str, *, artist: str, album: str, duration_ms: int, dev_mode: bool = False
) -> Json:
    """Track object of a local file: is_local true, and no ids on track, album or artists."""
    return track_object(
        None,
        title,
        album=simplified_album(
            None,
            album,
            artists=[],
            album_type=None,
            total_tracks=0,
            release_date=None,
            release_date_precision=None,
            available_markets=(),
            dev_mode=dev_mode,
        ),
        artists=[simplified_artist(None, artist)],
        duration_ms=duration_ms,
        track_number=0,
        disc_number=0,
        is_local=True,
        uri=local_file_uri(artist, album, title, duration_ms),
        available_markets=(),
        dev_mode=dev_mode,
    )


def context_object(uri: str | None) -> Json | None:
    """Play context (album, playlist, artist...) from its URI; None stays None."""
    if uri is None:
        return None
    _, kind, entity_id = uri.split(":", 2)
    return {
        "external_urls": {"spotify": f"{OPEN_ORIGIN}/{kind}/{entity_id}"},
        "href": f"{API_V1}/{kind}s/{entity_id}",
        "type": kind,
        "uri": uri,
    }


def play_item(track: Json, played_at: datetime, context: Json | None = None) -> Json:
    """Play history object: one item of GET /me/player/recently-played."""
    return {"track": track, "played_at": format_played_at(played_at), "context": context}


def local_file_item(
    title: str,
    *,
    artist: str,
    album: str,
    duration_ms: int,
    played_at: datetime,
    dev_mode: bool = False,
) -> Json:
    """Recently-played item of a local file (no context: Spotify gives none for those)."""
    track = local_track_object(
        title, artist=artist, album=album, duration_ms=duration_ms, dev_mode=dev_mode
    )
    return play_item(track, played_at)


def recently_played_page(
    items: Sequence[Json],
    *,
    href: str,
    limit: int,
    next_url: str | None,
    total: int | None = None,
) -> Json:
    """Cursor-based paging object; cursors are the newest/oldest played_at of the page in ms.

    An empty page has ``cursors: null`` (observed, spotify/web-api#1405).
    """
    cursors: Json | None = None
    if items:
        stamps = [to_unix_ms(parse_played_at(item["played_at"])) for item in items]
        cursors = {"after": str(max(stamps)), "before": str(min(stamps))}
    return {
        "cursors": cursors,
        "href": href,
        "items": list(items),
        "limit": limit,
        "next": next_url,
        "total": len(items) if total is None else total,
    }


def error_body(status: int, message: str) -> Json:
    """Web API error object."""
    return {"error": {"status": status, "message": message}}


def oauth_error_body(error: str, description: str) -> Json:
    """Accounts service (token endpoint) error object."""
    return {"error": error, "error_description": description}


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class Artist:
    """A catalogue artist; ``images`` are (url, size) pairs."""

    id: str
    name: str
    genres: tuple[str, ...] = ()
    images: tuple[tuple[str, int], ...] = ()
    followers: int = 0
    popularity: int = 0


@dataclass(frozen=True, slots=True)
class Album:
    """A catalogue album; ``track_ids`` in track-number order."""

    id: str
    name: str
    artist_ids: tuple[str, ...]
    track_ids: tuple[str, ...]
    album_type: str = "album"
    release_date: str = "2020-01-01"
    release_date_precision: str = "day"
    images: tuple[tuple[str, int], ...] = ()
    label: str = ""
    upc: str | None = None
    popularity: int = 0


@dataclass(frozen=True, slots=True)
class Track:
    """A catalogue track; ``artist_ids[0]`` is the primary artist."""

    id: str
    name: str
    album_id: str
    artist_ids: tuple[str, ...]
    duration_ms: int = 200_000
    track_number: int = 1
    disc_number: int = 1
    explicit: bool = False
    isrc: str | None = None
    popularity: int = 0


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A local file the user played: Spotify reports it without any id."""

    title: str
    artist: str
    album: str
    duration_ms: int

    @property
    def uri(self) -> str:
        """Its spotify:local: URI."""
        return local_file_uri(self.artist, self.album, self.title, self.duration_ms)


@dataclass(frozen=True, slots=True)
class Play:
    """One play as Spotify reports it: what, when (ms precision, UTC) and from which context."""

    played_at: datetime
    track: Track | LocalFile
    context_uri: str | None = None

    @property
    def track_id(self) -> str | None:
        """The track id, None for a local file."""
        return None if isinstance(self.track, LocalFile) else self.track.id

    @property
    def is_local(self) -> bool:
        """Whether this is a local file (the scrobbler must skip it)."""
        return isinstance(self.track, LocalFile)


def _images(pairs: Iterable[tuple[str, int]]) -> list[Json]:
    return [image_object(url, size) for url, size in pairs]


_FIRST_NAMES = ("Ada", "Björn", "Chloé", "Dmitri", "Esra", "Felix", "Grace", "Hiro", "Inès")
_LAST_NAMES = ("Alvarez", "Brontë", "Chen", "Dahl", "Eriksen", "Fontaine", "García", "Haas", "Ito")
_ADJECTIVES = (
    *("Golden", "Silent", "Electric", "Broken", "Velvet", "Neon", "Hollow", "Crimson", "Lucky"),
    *("Frozen", "Wild", "Paper", "Midnight", "Distant", "Sugar", "Iron", "Blue", "Gentle"),
)
_NOUNS = (
    *("Harbor", "Echo", "Summer", "River", "Signal", "Garden", "Mirror", "Highway", "Satellite"),
    *("Heart", "Window", "Ocean", "Fire", "Letter", "Shadow", "City", "Dream", "Engine", "Parade"),
)
_GENRES = (
    *("indie pop", "art rock", "synthwave", "neo soul", "post-punk", "dream pop", "hip hop"),
    *("lo-fi beats", "nordic folk", "k-pop", "jazz fusion", "techno", "shoegaze", "bossa nova"),
)
_ISRC_COUNTRIES = ("US", "GB", "SE", "DE", "FR", "KR")


@dataclass(slots=True)
class Catalog:
    """Artists, albums and tracks by id, rendered on demand as Spotify payloads."""

    artists: dict[str, Artist] = field(default_factory=dict)
    albums: dict[str, Album] = field(default_factory=dict)
    tracks: dict[str, Track] = field(default_factory=dict)

    @classmethod
    def generate(
        cls, n_tracks: int = 150, n_albums: int = 90, n_artists: int = 60, *, seed: int = 0
    ) -> Self:
        """A deterministic catalogue: the same arguments always give the same ids and names.

        Every album has at least one track. Tracks have 1-3 artists (the album's artist first,
        then featured artists who may have no album of their own), 90 s - 6 min durations; a few
        albums are compilations whose tracks' primary artist differs from the album's.
        """
        if not 1 <= n_albums <= n_tracks or n_artists < 1:
            raise ValueError("need n_tracks >= n_albums >= 1 and n_artists >= 1")
        rng = random.Random(seed)  # noqa: S311 -- test data, not security
        ids = _IdFactory(rng)

        artists = [_random_artist(rng, ids.new(), index) for index in range(n_artists)]
        album_ids = [ids.new() for _ in range(n_albums)]
        album_artist = [rng.choice(artists) for _ in range(n_albums)]
        # Album i gets track i, so none is empty; the rest are spread at random.
        album_of = list(range(n_albums)) + [
            rng.randrange(n_albums) for _ in range(n_tracks - n_albums)
        ]
        by_album: dict[int, list[int]] = {}
        for track_index, album_index in enumerate(album_of):
            by_album.setdefault(album_index, []).append(track_index)
        compilation = {i for i in by_album if len(by_album[i]) >= 3 and rng.random() < 0.1}

        track_ids = [ids.new() for _ in range(n_tracks)]
        tracks: dict[int, Track] = {}
        albums: list[Album] = []
        for album_index in range(n_albums):
            members = by_album[album_index]
            year = rng.randint(1965, 2026)
            for number, track_index in enumerate(members, start=1):
                primary = album_artist[album_index]
                if album_index in compilation:
                    primary = rng.choice(artists)
                tracks[track_index] = _random_track(
                    rng,
                    track_ids[track_index],
                    album_ids[album_index],
                    primary,
                    artists,
                    number=number,
                    isrc=f"{rng.choice(_ISRC_COUNTRIES)}{_code(rng, 3)}{year % 100:02d}"
                    f"{track_index:05d}",
                )
            albums.append(
                _random_album(
                    rng,
                    album_ids[album_index],
                    album_artist[album_index],
                    tuple(track_ids[i] for i in members),
                    year=year,
                    compilation=album_index in compilation,
                )
            )
        return cls(
            artists={artist.id: artist for artist in artists},
            albums={album.id: album for album in albums},
            tracks={tracks[i].id: tracks[i] for i in range(n_tracks)},
        )

    def artist_json(self, artist_id: str, *, dev_mode: bool = False) -> Json:
        """Full artist object."""
        artist = self.artists[artist_id]
        return full_artist(
            artist.id,
            artist.name,
            genres=artist.genres,
            images=_images(artist.images),
            followers=artist.followers,
            popularity=artist.popularity,
            dev_mode=dev_mode,
        )

    def _artist_refs(self, artist_ids: Iterable[str]) -> list[Json]:
        return [simplified_artist(i, self.artists[i].name) for i in artist_ids]

    def _album_ref(self, album: Album, *, dev_mode: bool) -> Json:
        return simplified_album(
            album.id,
            album.name,
            artists=self._artist_refs(album.artist_ids),
            album_type=album.album_type,
            total_tracks=len(album.track_ids),
            release_date=album.release_date,
            release_date_precision=album.release_date_precision,
            images=_images(album.images),
            dev_mode=dev_mode,
        )

    def album_json(self, album_id: str, *, dev_mode: bool = False) -> Json:
        """Full album object, with all its tracks."""
        album = self.albums[album_id]
        tracks = [self.tracks[i] for i in album.track_ids]
        return full_album(
            album.id,
            album.name,
            artists=self._artist_refs(album.artist_ids),
            tracks=[
                simplified_track(
                    track.id,
                    track.name,
                    artists=self._artist_refs(track.artist_ids),
                    duration_ms=track.duration_ms,
                    track_number=track.track_number,
                    disc_number=track.disc_number,
                    explicit=track.explicit,
                    dev_mode=dev_mode,
                )
                for track in tracks
            ],
            album_type=album.album_type,
            release_date=album.release_date,
            release_date_precision=album.release_date_precision,
            images=_images(album.images),
            label=album.label,
            upc=album.upc,
            popularity=album.popularity,
            dev_mode=dev_mode,
        )

    def track_json(self, track_id: str, *, dev_mode: bool = False) -> Json:
        """Full track object with its simplified album and artists."""
        track = self.tracks[track_id]
        return track_object(
            track.id,
            track.name,
            album=self._album_ref(self.albums[track.album_id], dev_mode=dev_mode),
            artists=self._artist_refs(track.artist_ids),
            duration_ms=track.duration_ms,
            track_number=track.track_number,
            disc_number=track.disc_number,
            explicit=track.explicit,
            isrc=track.isrc,
            popularity=track.popularity,
            dev_mode=dev_mode,
        )

    def play_json(self, play: Play, *, dev_mode: bool = False) -> Json:
        """Recently-played item of a play."""
        if isinstance(play.track, LocalFile):
            local = play.track
            return local_file_item(
                local.title,
                artist=local.artist,
                album=local.album,
                duration_ms=local.duration_ms,
                played_at=play.played_at,
                dev_mode=dev_mode,
            )
        track = self.track_json(play.track.id, dev_mode=dev_mode)
        return play_item(track, play.played_at, context_object(play.context_uri))


class _IdFactory:
    """Unique 22-character base62 ids, like Spotify's."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def new(self) -> str:
        while True:
            candidate = "".join(self._rng.choices(_BASE62, k=22))
            if candidate not in self._seen:
                self._seen.add(candidate)
                return candidate


def _code(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_uppercase + string.digits, k=length))


def _image_set(
    rng: random.Random, prefixes: tuple[tuple[int, str], ...]
) -> tuple[tuple[str, int], ...]:
    suffix = f"{rng.getrandbits(96):024x}"
    return tuple((f"{IMAGE_ORIGIN}/{prefix}{suffix}", size) for size, prefix in prefixes)


def _random_artist(rng: random.Random, artist_id: str, index: int) -> Artist:
    if index % 3 == 0:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    else:
        name = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s"
    return Artist(
        id=artist_id,
        name=name,
        genres=tuple(rng.sample(_GENRES, rng.randint(1, 3))),
        images=_image_set(rng, _ARTIST_IMAGE_PREFIXES),
        followers=int(rng.paretovariate(1.2) * 1000),
        popularity=rng.randint(5, 95),
    )


def _random_album(
    rng: random.Random,
    album_id: str,
    artist: Artist,
    track_ids: tuple[str, ...],
    *,
    year: int,
    compilation: bool,
) -> Album:
    if compilation:
        album_type = "compilation"
    elif len(track_ids) <= 3 and rng.random() < 0.7:
        album_type = "single"
    else:
        album_type = "album"
    roll = rng.random()
    if roll < 0.85:
        release_date, precision = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "day"
    elif roll < 0.95:
        release_date, precision = str(year), "year"
    else:
        release_date, precision = f"{year}-{rng.randint(1, 12):02d}", "month"
    return Album(
        id=album_id,
        name=f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}",
        artist_ids=(artist.id,),
        track_ids=track_ids,
        album_type=album_type,
        release_date=release_date,
        release_date_precision=precision,
        images=_image_set(rng, _ALBUM_IMAGE_PREFIXES),
        label=f"{rng.choice(_NOUNS)} Records",
        upc=f"{rng.randrange(10**12):012d}",
        popularity=rng.randint(0, 90),
    )


def _random_track(
    rng: random.Random,
    track_id: str,
    album_id: str,
    primary: Artist,
    artists: Sequence[Artist],
    *,
    number: int,
    isrc: str,
) -> Track:
    others = [artist for artist in artists if artist.id != primary.id]
    n_featured = min(len(others), rng.choices((0, 1, 2), weights=(6, 3, 1))[0])
    featured = rng.sample(others, n_featured)
    name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if featured and rng.random() < 0.5:
        name += f" (feat. {featured[0].name})"
    return Track(
        id=track_id,
        name=name,
        album_id=album_id,
        artist_ids=(primary.id, *(artist.id for artist in featured)),
        duration_ms=rng.randint(90_000, 360_000),
        track_number=number,
        explicit=rng.random() < 0.15,
        isrc=isrc,
        popularity=rng.randint(0, 100),
    )


# --------------------------------------------------------------------------- workload

_SESSION_GAP = timedelta(minutes=5)
_OUTAGE_MARGIN = timedelta(seconds=10)
_OUTAGE_PLAYS = 25


@dataclass(frozen=True, slots=True)
class ListeningDay:
    """A day of plays, oldest first, and the window during which the poller must not run."""

    plays: tuple[Play, ...]
    outage: tuple[datetime, datetime]

    @property
    def start(self) -> datetime:
        """played_at of the first play."""
        return self.plays[0].played_at

    @property
    def end(self) -> datetime:
        """played_at of the last play."""
        return self.plays[-1].played_at

    def plays_between(self, start: datetime, end: datetime) -> list[Play]:
        """Plays with start <= played_at <= end."""
        return [play for play in self.plays if start <= play.played_at <= end]


def listening_day(
    catalog: Catalog,
    start: datetime,
    plays: int = 300,
    hours: float = 16,
    *,
    seed: int = 0,
    local_files: int = 5,
    outage_plays: int | None = None,
    playlists: int = 4,
) -> ListeningDay:
    """A deterministic day of listening, to replay through ``FakeSpotify``.

    Plays come in sessions spread over ``hours`` from ``start`` (they run longer when
    ``plays`` do not fit). Inside a session consecutive plays are 20-40 s apart (the spec's
    pace: think of skips; real tracks last longer), sessions are at least 5 min apart, and every
    played_at has millisecond precision and is unique. Tracks repeat, popular ones often, but never
    within 3 plays of each other, so the scrobbler's "same track within +/-30 s" duplicate rule
    never merges two real plays. ``local_files`` plays are local files (no ids).

    The spec asks for "a burst of more than 20 plays between two 120 s polls". At 20-40 s
    spacing at most 6 plays fit in 120 s, so this is read as: an outage (HA down, network out)
    during which the poller does not run while ``outage_plays`` plays happen (default 25, or
    0 - an empty window - for days of fewer than 27 plays). ``ListeningDay.outage`` is that
    window, exactly ``outage_plays`` plays fall inside it; a driver skips its polls there. It
    stays below Spotify's 50-play horizon, so a correct scrobbler recovers every play of it on
    the first poll after the outage.
    """
    if outage_plays is None:
        outage_plays = _OUTAGE_PLAYS if plays >= _OUTAGE_PLAYS + 2 else 0
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if not catalog.tracks:
        raise ValueError("the catalogue has no tracks")
    if not 0 <= local_files <= plays or not 0 <= outage_plays <= plays - 2:
        raise ValueError("need 0 <= local_files <= plays and 0 <= outage_plays <= plays - 2")
    rng = random.Random(seed)  # noqa: S311 -- test data, not security

    sizes, outage_session = _session_sizes(rng, plays, need=outage_plays + 2 if outage_plays else 0)
    times, first_index = _schedule(rng, truncate_ms(start), sizes, hours)
    picks = _pick_tracks(rng, catalog, plays)
    playlist_ids = _IdFactory(rng)
    playlist_uris = [f"spotify:playlist:{playlist_ids.new()}" for _ in range(playlists)]
    local_pool = [
        LocalFile(
            title=f"Home Recording {n}",
            artist="Me & My Band",
            album="Demos: 2026",
            duration_ms=rng.randint(90_000, 360_000),
        )
        for n in range(1, 4)
    ]
    local_at = set(rng.sample(range(plays), local_files))

    result: list[Play] = []
    for index, (moment, track) in enumerate(zip(times, picks, strict=True)):
        if index in local_at:
            result.append(Play(moment, rng.choice(local_pool)))
            continue
        roll = rng.random()
        context: str | None = None
        if roll < 0.5:
            context = f"spotify:album:{track.album_id}"
        elif roll < 0.8 and playlist_uris:
            context = rng.choice(playlist_uris)
        result.append(Play(moment, track, context))

    before_first = result[0].played_at - timedelta(milliseconds=1)
    outage = (before_first, before_first)  # zero-length, holds no play
    if outage_plays:
        first = first_index[outage_session]
        last = first + sizes[outage_session] - 1
        # Keep at least one play of the session on each side of the window.
        begin = rng.randint(first + 1, last - outage_plays)
        outage = (
            result[begin].played_at - _OUTAGE_MARGIN,
            result[begin + outage_plays - 1].played_at + _OUTAGE_MARGIN,
        )
    return ListeningDay(plays=tuple(result), outage=outage)


def _session_sizes(rng: random.Random, plays: int, *, need: int) -> tuple[list[int], int]:
    """Split plays into sessions; the returned index names one with at least ``need`` plays."""
    n_sessions = max(1, min(8, plays // 40))
    if n_sessions == 1:
        return [plays], 0
    big = min(plays, max(need + 4, plays // n_sessions))
    rest = plays - big
    weights = [rng.uniform(0.5, 1.5) for _ in range(n_sessions - 1)]
    others = [int(rest * w / sum(weights)) for w in weights]
    others[0] += rest - sum(others)
    big_index = rng.randrange(n_sessions)
    sizes = [size for size in others if size > 0]
    big_index = min(big_index, len(sizes))
    sizes.insert(big_index, big)
    return sizes, big_index


def _schedule(
    rng: random.Random, start: datetime, sizes: Sequence[int], hours: float
) -> tuple[list[datetime], list[int]]:
    """played_at of every play, and the index of each session's first play."""
    slot = timedelta(hours=hours) / len(sizes)
    times: list[datetime] = []
    first_index: list[int] = []
    previous_end: datetime | None = None
    for number, size in enumerate(sizes):
        slack = slot - timedelta(seconds=40 * size) - _SESSION_GAP
        offset = slack * rng.random() if slack > timedelta(0) else timedelta(0)
        moment = start + slot * number + offset
        if previous_end is not None:
            moment = max(moment, previous_end + _SESSION_GAP)
        moment = truncate_ms(moment) + timedelta(milliseconds=rng.randrange(1000))
        first_index.append(len(times))
        for _ in range(size):
            times.append(moment)
            previous_end = moment
            moment += timedelta(milliseconds=rng.randint(20_000, 40_000))
    return times, first_index


def _pick_tracks(rng: random.Random, catalog: Catalog, count: int) -> list[Track]:
    """Zipf-like favourites, with no track repeated within 3 consecutive plays."""
    order = sorted(catalog.tracks)
    rng.shuffle(order)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(order))]
    window = min(3, len(order) - 1)
    picks: list[Track] = []
    for _ in range(count):
        recent = {track.id for track in picks[len(picks) - window :]} if window else set()
        while (choice := rng.choices(order, weights)[0]) in recent:
            pass
        picks.append(catalog.tracks[choice])
    return picks


# --------------------------------------------------------------------------- the server


class RequestRecord(NamedTuple):
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    at: float
    """time.monotonic() on arrival."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted response for the next request whose path starts with ``prefix``."""

    prefix: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Json | None = None
    raw_body: bytes | None = None
    delay: float = 0.0


_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Invalid access token",
    403: "Forbidden",
    404: "Resource not found",
    429: "API rate limit exceeded",
    500: "Server error",
    502: "Bad gateway",
    503: "Service unavailable",
}
# Approximation of the message: the exact text is not documented.
_PREMIUM_REQUIRED = "Active premium subscription required for the owner of the app."


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, message), status=status, headers=headers)


def _parse_paging(query: Mapping[str, str]) -> tuple[int, int | None, int | None] | web.Response:
    """limit, after, before of a recently-played query, or Spotify's 400 answer."""
    try:
        limit = _int_param(query, "limit")
    except ValueError:
        return _error(400, "Invalid limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        return _error(400, "Invalid limit")
    if "after" in query and "before" in query:
        return _error(400, "Only one of 'after' and 'before' may be specified")
    try:
        return limit, _int_param(query, "after"), _int_param(query, "before")
    except ValueError:
        return _error(400, "Invalid cursor: expected a Unix timestamp in milliseconds")


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    """An integer query parameter; ValueError when present but not an integer."""
    value = query.get(name)
    return None if value is None else int(value)


class FakeSpotify:
    """Spotify's Web API and token endpoint on 127.0.0.1, driven by a catalogue and plays.

    Recently-played paging - what is documented and observed, and what this fake does:

    * Documented (Web API reference): ``limit`` 1-50, default 20; ``after`` / ``before`` are Unix
      ms, exclusive, and "if after is specified, before must not be specified"; items newest
      first; ``cursors.after`` / ``cursors.before`` are the newest / oldest ``played_at`` of the
      page. The older reference text adds: "Follow the next field with the before parameter to
      move back in time, or use the after parameter to move forward in time. If you supply no
      before or after parameter ... the next link will page back in time."
    * Observed: without a cursor, ``next`` is ``...?before=<cursors.before>&limit=N``
      (spotify/web-api#1405 and captured responses); only the last 50 plays exist, so paging
      past them gives ``items: [], next: null, cursors: null`` - and Spotify may still hand out a
      ``next`` on a full page that leads to that empty page (#1405, ``next_on_full_page=True``).
      Spotify rejects ``limit`` above 50 with 400.
    * Not documented: which plays an ``after`` query returns when more than ``limit`` are newer
      than the cursor. Default (``after_paging="forward"``): the ``limit`` plays closest to the
      cursor, newest first, with ``next = ...?after=<cursors.after>&limit=N``, so following
      ``next`` walks forward without gaps or overlaps. ``after_paging="newest"``: the newest
      ``limit`` plays, with a ``before`` ``next`` that pages back in time past the ``after``
      bound (the cursor object carries one cursor only), for clients that must cope with both.
    * ``total`` is documented; here it counts the plays matching the query.

    Time: only plays with ``played_at <= now`` exist; ``now=None`` means all of them have
    happened. Requests are logged before anything else, faults apply before authentication.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        plays: Iterable[Play] = (),
        *,
        now: datetime | None = None,
        dev_mode: bool = True,
        batch_allowed: bool = False,
        owner_premium: bool = True,
        token_revoked: bool = False,
        rotate_refresh_token: bool = False,
        next_on_full_page: bool = False,
        after_paging: Literal["forward", "newest"] = "forward",
        user_id: str = "scrobbler-test-user",
        display_name: str = "Scrobbler Test",
        access_token: str = "fake-access-token",  # noqa: S107 -- a fake
        refresh_token: str = "fake-refresh-token",  # noqa: S107 -- a fake
    ) -> None:
        """Configure the fake; ``start()`` serves it."""
        self.catalog = catalog if catalog is not None else Catalog()
        self.plays: list[Play] = sorted(plays, key=lambda play: play.played_at)
        self.now = now
        self.dev_mode = dev_mode
        self.batch_allowed = batch_allowed
        self.owner_premium = owner_premium
        self.token_revoked = token_revoked
        self.rotate_refresh_token = rotate_refresh_token
        self.next_on_full_page = next_on_full_page
        self.after_paging = after_paging
        self.user_id = user_id
        self.display_name = display_name
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.access_tokens: set[str] = {access_token}
        self.expired_tokens: set[str] = set()
        self.requests: list[RequestRecord] = []
        self.answered: list[tuple[str, int]] = []
        """(path, status) of every answer the fake completed, in order."""
        self.counts: Counter[str] = Counter()
        """Requests per endpoint, keyed by route, e.g. ``/v1/tracks/{id}``, ``/api/token``."""
        self.token_requests: list[dict[str, str]] = []
        """Form fields of every POST /api/token."""
        self.faults: list[Fault] = []
        self.base_url = ""
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    @property
    def api_url(self) -> str:
        """Base of the Web API, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.base_url}/v1"

    @property
    def token_url(self) -> str:
        """The token endpoint (Spotify's is https://accounts.spotify.com/api/token)."""
        return f"{self.base_url}/api/token"

    @property
    def authorize_url(self) -> str:
        """The consent page (Spotify's is https://accounts.spotify.com/authorize)."""
        return f"{self.base_url}/authorize"

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; return the base URL."""
        if self._runner is not None:
            raise RuntimeError("already started")
        self._stopping = asyncio.Event()
        # handler_cancellation: a client that times out must not leave a delayed handler behind.
        runner = web.AppRunner(
            self._build_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; scripted delays end at once."""
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        await self.stop()

    # ---------------------------------------------------------------- test controls

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward (it must have been set) and return the new time."""
        if self.now is None:
            raise RuntimeError("set fake.now before advancing it")
        self.now += delta
        return self.now

    def add_plays(self, plays: Iterable[Play]) -> None:
        """Add plays to the ground truth."""
        self.plays = sorted([*self.plays, *plays], key=lambda play: play.played_at)

    def visible_plays(self) -> list[Play]:
        """Plays that have happened by ``now``, oldest first."""
        return [p for p in self.plays if self.now is None or p.played_at <= self.now]

    def reachable_plays(self) -> list[Play]:
        """What recently-played can still return: the last 50 visible plays, newest first."""
        return self.visible_plays()[::-1][:HISTORY_SIZE]

    def inject(
        self,
        prefix: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: Json | None = None,
        raw_body: bytes | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Script the response of the next ``times`` requests whose path starts with ``prefix``.

        ``status`` None with a ``delay`` only delays the normal answer. Otherwise the answer is
        ``raw_body`` as-is (malformed JSON), else ``body``, else Spotify's error object for
        ``status``. Faults are consumed in the order injected, one per request.
        """
        fault = Fault(prefix, status, dict(headers or {}), body, raw_body, delay)
        self.faults.extend([fault] * times)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 401 'The access token expired'."""
        self.expired_tokens |= self.access_tokens
        self.access_tokens.clear()

    def reset_log(self) -> None:
        """Forget logged requests and counters (faults stay)."""
        self.requests.clear()
        self.counts.clear()
        self.token_requests.clear()

    def calls(self, endpoint: str) -> list[RequestRecord]:
        """Logged requests whose path starts with ``endpoint``."""
        return [record for record in self.requests if record.path.startswith(endpoint)]

    # ---------------------------------------------------------------- app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/me", self._me)
        app.router.add_get("/v1/me/player/recently-played", self._recently_played)
        for kind in BATCH_MAX_IDS:
            app.router.add_get(f"/v1/{kind}", self._batch_handler(kind))
            app.router.add_get(f"/v1/{kind}/{{id}}", self._single_handler(kind))
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/authorize", self._authorize)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else request.path
        self.requests.append(
            RequestRecord(request.method, request.path, dict(request.query), time.monotonic())
        )
        self.counts[endpoint] += 1

        response = await self._respond(request, handler)
        # Only answers that were completed: a client that gave up cancels the handler.
        self.answered.append((request.path, response.status))
        return response

    async def _respond(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.delay:
                await self._sleep(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault)
        if request.path.startswith("/v1/") and (denied := self._authenticate(request)):
            return denied
        try:
            return await handler(request)
        except web.HTTPException as exc:  # unknown path or method: Spotify answers in JSON
            return _error(exc.status, exc.reason)

    def _take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if path.startswith(fault.prefix):
                return self.faults.pop(index)
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        status = fault.status or 200
        if fault.raw_body is not None:
            return web.Response(
                status=status,
                body=fault.raw_body,
                headers=fault.headers,
                content_type="application/json",
            )
        body = fault.body
        if body is None:
            body = error_body(status, _DEFAULT_MESSAGES.get(status, "Error"))
        return web.json_response(body, status=status, headers=fault.headers)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _authenticate(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if not header:
            return _error(401, "No token provided")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return _error(400, "Only valid bearer authentication supported")
        if token not in self.access_tokens:
            message = (
                "The access token expired"
                if token in self.expired_tokens
                else "Invalid access token"
            )
            challenge = (
                f'Bearer realm="spotify", error="invalid_token", error_description="{message}"'
            )
            return _error(401, message, {"WWW-Authenticate": challenge})
        if not self.owner_premium:
            return _error(403, _PREMIUM_REQUIRED)
        return None

    # ---------------------------------------------------------------- handlers

    async def _me(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "country": "SE",
                "display_name": self.display_name,
                "email": f"{self.user_id}@example.invalid",
                "explicit_content": {"filter_enabled": False, "filter_locked": False},
                "external_urls": {"spotify": f"{OPEN_ORIGIN}/user/{self.user_id}"},
                "followers": {"href": None, "total": 0},
                "href": f"{API_V1}/users/{self.user_id}",
                "id": self.user_id,
                "images": [],
                "product": "premium" if self.owner_premium else "free",
                "type": "user",
                "uri": f"spotify:user:{self.user_id}",
            }
        )

    async def _recently_played(self, request: web.Request) -> web.StreamResponse:
        parsed = _parse_paging(request.query)
        if isinstance(parsed, web.Response):
            return parsed
        limit, after, before = parsed

        def ms(play: Play) -> int:
            return to_unix_ms(play.played_at)

        candidates = self.reachable_plays()  # newest first
        next_query: dict[str, int] | None = None
        if after is not None:
            candidates = [play for play in candidates if ms(play) > after]
        if before is not None:
            candidates = [play for play in candidates if ms(play) < before]
        if after is not None and self.after_paging == "forward":
            page = candidates[-limit:]
            if page and (len(candidates) > limit or self._full(page, limit)):
                next_query = {"after": ms(page[0]), "limit": limit}
        else:
            page = candidates[:limit]
            if page and (len(candidates) > limit or self._full(page, limit)):
                next_query = {"before": ms(page[-1]), "limit": limit}

        next_url = None
        if next_query is not None:
            next_url = (
                f"{self.api_url}/me/player/recently-played?{urllib.parse.urlencode(next_query)}"
            )
        payload = recently_played_page(
            [self.catalog.play_json(play, dev_mode=self.dev_mode) for play in page],
            href=f"{self.base_url}{request.path_qs}",
            limit=limit,
            next_url=next_url,
            total=len(candidates),
        )
        return web.json_response(payload)

    def _full(self, page: Sequence[Play], limit: int) -> bool:
        return self.next_on_full_page and len(page) == limit

    def _render(self, kind: str, entity_id: str) -> Json | None:
        if kind == "tracks" and entity_id in self.catalog.tracks:
            return self.catalog.track_json(entity_id, dev_mode=self.dev_mode)
        if kind == "albums" and entity_id in self.catalog.albums:
            return self.catalog.album_json(entity_id, dev_mode=self.dev_mode)
        if kind == "artists" and entity_id in self.catalog.artists:
            return self.catalog.artist_json(entity_id, dev_mode=self.dev_mode)
        return None

    def _single_handler(self, kind: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            entity_id = request.match_info["id"]
            if not _ID_RE.fullmatch(entity_id):
                return _error(400, "Invalid base62 id")
            payload = self._render(kind, entity_id)
            if payload is None:
                return _error(404, "Resource not found")
            return web.json_response(payload)

        return handle

    def _batch_handler(self, kind: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if not self.batch_allowed:
                return _error(403, "Forbidden")
            raw = request.query.get("ids", "")
            if not raw:
                return _error(400, "Missing required parameter: ids")
            ids = raw.split(",")
            if len(ids) > BATCH_MAX_IDS[kind]:
                return _error(400, "Too many ids requested")
            if not all(_ID_RE.fullmatch(entity_id) for entity_id in ids):
                return _error(400, "Invalid base62 id")
            # Unknown ids come back as null, in request order.
            return web.json_response({kind: [self._render(kind, i) for i in ids]})

        return handle

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        """The user always consents: redirect back with a fresh code and the caller's state."""
        query = request.query
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri or not query.get("client_id"):
            return web.Response(status=400, text="INVALID_CLIENT: Invalid redirect URI")
        if query.get("response_type") != "code":
            return web.Response(status=400, text="unsupported_response_type")
        answer = {"code": f"fake-code-{next(self._serial)}"}
        if "state" in query:
            answer["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urllib.parse.urlencode(answer)}"
        return web.Response(status=302, headers={"Location": location})

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        self.token_requests.append(fields)
        grant = fields.get("grant_type")
        if grant == "refresh_token":
            if self.token_revoked:
                return _oauth_error("invalid_grant", "Refresh token revoked")
            if fields.get("refresh_token") != self.refresh_token:
                return _oauth_error("invalid_grant", "Invalid refresh token")
        elif grant == "authorization_code":
            if not fields.get("code"):
                return _oauth_error("invalid_grant", "Invalid authorization code")
        elif grant is None:
            return _oauth_error("unsupported_grant_type", "grant_type parameter is missing")
        else:
            return _oauth_error("unsupported_grant_type", f"Unsupported grant_type: {grant}")

        serial = next(self._serial)
        access_token = f"fake-access-token-{serial}"
        self.access_tokens.add(access_token)
        payload: Json = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": SCOPE,
        }
        # Spotify may or may not send a new refresh token on refresh (GUIDE §3).
        if self.rotate_refresh_token:
            self.refresh_token = f"fake-refresh-token-{serial}"
        if grant == "authorization_code" or self.rotate_refresh_token:
            payload["refresh_token"] = self.refresh_token
        return web.json_response(payload)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response(oauth_error_body(error, description), status=400)
