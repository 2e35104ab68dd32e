"""One scrobbling cycle: window → new plays → missing metadata → ordered writes.

Plain asyncio (no Home Assistant imports): the coordinator runs it every 120 s and the
benchmark runs it directly.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .models import (
    CycleResult,
    CycleSummary,
    Play,
    PlayDetails,
    from_unix_ms,
    to_unix_ms,
)
from .spotify import SpotifyClient
from .store import Account, Document, ScrobbleStore

_LOGGER = logging.getLogger(__name__)

LOOKBACK: Final = timedelta(hours=2)  # the seed's overlap with the previous cycle
DUPLICATE_WINDOW: Final = timedelta(seconds=30)  # same track within ±30 s = same play
HISTORY_LIMIT: Final = 50  # Spotify keeps no more recently-played items than this
KNOWN_IDS_CACHE_SIZE: Final = 4096  # per kind; bounds memory whatever the history size

SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{1,64}")

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


class BoundedIdSet:
    """Ids known to be stored, least recently seen evicted first (bounded memory)."""

    def __init__(self, size: int = KNOWN_IDS_CACHE_SIZE) -> None:
        """Keep at most ``size`` ids."""
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, item_id: object) -> bool:
        """Whether the id is known (refreshes its place)."""
        if item_id in self._ids:
            self._ids.move_to_end(str(item_id))
            return True
        return False

    def __len__(self) -> int:
        """Number of ids kept."""
        return len(self._ids)

    def add_all(self, ids: Iterable[str]) -> None:
        """Remember ids, evicting the oldest beyond the bound."""
        for item_id in ids:
            self._ids[item_id] = None
            self._ids.move_to_end(item_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


class RecentPlays:
    """Stored plays of one account from ``complete_from`` on, as far as this process knows.

    Holds at most the lookback window (pruned every cycle), so it stays small whatever the
    size of the history; forgotten after any failed cycle so MongoDB is asked again.
    """

    def __init__(self) -> None:
        """Know nothing yet."""
        self._by_track: dict[str, set[datetime]] = {}
        self.complete_from: datetime | None = None

    def forget(self) -> None:
        """Drop everything (after a failure the cache may miss plays that were written)."""
        self._by_track.clear()
        self.complete_from = None

    def add_all(self, plays: Iterable[tuple[str, datetime]]) -> None:
        """Remember stored plays."""
        for track_id, played_at in plays:
            self._by_track.setdefault(track_id, set()).add(played_at)

    def covered_from(self, start: datetime) -> None:
        """Every stored play from ``start`` on is known now."""
        if self.complete_from is None or start < self.complete_from:
            self.complete_from = start

    def has_play_near(self, track_id: str, played_at: datetime) -> bool:
        """Whether a stored play of the track is within ±30 s."""
        return any(abs(t - played_at) <= DUPLICATE_WINDOW for t in self._by_track.get(track_id, ()))

    def prune(self, before: datetime) -> None:
        """Forget plays older than ``before``; the cache is complete from there on only."""
        for track_id in list(self._by_track):
            kept = {t for t in self._by_track[track_id] if t >= before}
            if kept:
                self._by_track[track_id] = kept
            else:
                del self._by_track[track_id]
        if self.complete_from is not None and self.complete_from < before:
            self.complete_from = before

    def __len__(self) -> int:
        """Number of plays held."""
        return sum(len(times) for times in self._by_track.values())


@dataclass(slots=True)
class KnownMetadata:
    """Metadata ids known to be in MongoDB, shared by all accounts of one database."""

    tracks: BoundedIdSet
    albums: BoundedIdSet
    artists: BoundedIdSet  # enriched artists only

    @classmethod
    def empty(cls) -> KnownMetadata:
        """Nothing known yet."""
        return cls(BoundedIdSet(), BoundedIdSet(), BoundedIdSet())


@dataclass(slots=True, frozen=True)
class ParsedItem:
    """A recently-played item that is a real track, with its documents."""

    play: Play
    details: PlayDetails
    track: Document
    album: Document | None
    artists: tuple[Document, ...]


class Scrobbler:
    """Runs cycles for one Spotify account."""

    def __init__(
        self,
        client: SpotifyClient,
        store: ScrobbleStore,
        account: Account,
        known: KnownMetadata | None = None,
    ) -> None:
        """Bind the account to its Spotify client and the store."""
        self.client = client
        self.store = store
        self.account = account
        self.known = known or KnownMetadata.empty()
        self.recent = RecentPlays()

    async def run_cycle(self, blacklisted_artists: Iterable[str] = ()) -> CycleResult:
        """Fetch the window, store the new plays and return them (oldest first)."""
        try:
            result = await self._cycle(blacklisted_artists)
        except BaseException:
            self.recent.forget()
            raise
        if self.account.last_timestamp > 0:
            last = from_unix_ms(self.account.last_timestamp)
            self.recent.prune(last - LOOKBACK - DUPLICATE_WINDOW)
        return result

    async def _cycle(self, blacklisted_artists: Iterable[str]) -> CycleResult:
        after_ms = max(0, self.account.last_timestamp - int(LOOKBACK.total_seconds() * 1000))
        raw_items = await self.client.recently_played(after_ms)
        blacklist = set(blacklisted_artists)
        parsed = [p for item in raw_items if (p := parse_item(item, blacklist)) is not None]
        skipped = len(raw_items) - len(parsed)
        if not parsed:
            return CycleResult(summary=CycleSummary(items=len(raw_items), skipped=skipped))

        parsed.sort(key=lambda p: p.play.played_at)
        gap = self._gap(len(raw_items), parsed[0].play.played_at)
        new = await self._without_duplicates(parsed)
        newest = parsed[-1].play.played_at
        if not new and to_unix_ms(newest) <= self.account.last_timestamp:
            # Idle cycle: nothing to write at all.
            return CycleResult(
                summary=CycleSummary(items=len(raw_items), skipped=skipped, duplicates=len(parsed))
            )

        artists, stubs, requests = await self._artist_documents(new)
        tracks = _unique_by_id(p.track for p in new if p.track["id"] not in self.known.tracks)
        albums = _unique_by_id(
            p.album for p in new if p.album is not None and p.album["id"] not in self.known.albums
        )
        result = await self.store.write_cycle(
            self.account,
            tracks=tracks,
            albums=albums,
            artists=artists,
            artist_stubs=stubs,
            plays=[p.play for p in new],
            newest_played_at=newest,
        )
        self.known.tracks.add_all(doc["id"] for doc in tracks)
        self.known.albums.add_all(doc["id"] for doc in albums)
        self.known.artists.add_all(doc["id"] for doc in artists)
        # Every attempted play is stored now: inserted, or refused by the unique index because
        # a play at that instant already was. Either way it must not be attempted again.
        self.recent.add_all((p.play.track_id, p.play.played_at) for p in new)

        inserted = set(result.inserted_plays)
        return CycleResult(
            gap=gap,
            new_plays=tuple(p.details for p in new if p.play in inserted),
            summary=CycleSummary(
                items=len(raw_items),
                skipped=skipped,
                duplicates=len(parsed) - len(inserted),
                new_plays=len(inserted),
                new_tracks=result.new_tracks,
                new_albums=result.new_albums,
                new_artists=result.new_artists,
                enrichment_requests=requests,
            ),
        )

    def _gap(self, item_count: int, oldest: datetime) -> tuple[datetime, datetime] | None:
        """A full window that starts after the last stored play: plays may have been missed."""
        last = self.account.last_timestamp
        if last <= 0 or item_count < HISTORY_LIMIT or to_unix_ms(oldest) <= last:
            return None
        return from_unix_ms(last), oldest

    async def _without_duplicates(self, parsed: Sequence[ParsedItem]) -> list[ParsedItem]:
        """Apply the seed's ±30 s same-track rule against stored plays and within the batch.

        Stored plays only exist up to ``lastTimestamp`` (it moves after the plays are
        written), so MongoDB is asked only about items that close to it, and only for the
        part of the window the cache of recent plays does not cover yet: steady-state
        cycles need no query at all, whatever the size of the history.
        """
        recent = self.recent
        last_ms = self.account.last_timestamp
        if last_ms > 0:
            last_stored = from_unix_ms(last_ms)
            unknown = [
                p.play.played_at
                for p in parsed
                if p.play.played_at - DUPLICATE_WINDOW <= last_stored
                and (
                    recent.complete_from is None
                    or p.play.played_at - DUPLICATE_WINDOW < recent.complete_from
                )
            ]
            if unknown:
                start = unknown[0] - DUPLICATE_WINDOW
                stored = await self.store.plays_between(self.account.owner, start, last_stored)
                recent.add_all((track_id, _as_utc(at)) for track_id, at in stored)
                recent.covered_from(start)
        batch: dict[str, list[datetime]] = {}
        new: list[ParsedItem] = []
        for item in parsed:
            track_id, played_at = item.play.track_id, item.play.played_at
            if recent.has_play_near(track_id, played_at) or any(
                abs(t - played_at) <= DUPLICATE_WINDOW for t in batch.get(track_id, ())
            ):
                continue
            batch.setdefault(track_id, []).append(played_at)
            new.append(item)
        return new

    async def _artist_documents(
        self, new: Sequence[ParsedItem]
    ) -> tuple[list[Document], list[Document], int]:
        """(enriched artists to store, stubs for the rest, Spotify requests made)."""
        stubs = {a["id"]: a for p in new for a in p.artists}
        wanted = [artist_id for artist_id in stubs if artist_id not in self.known.artists]
        if not wanted:
            return [], [], 0
        stored = await self.store.enriched_artist_ids(wanted)
        self.known.artists.add_all(stored)
        missing = [artist_id for artist_id in wanted if artist_id not in stored]
        if not missing:
            return [], [], 0
        before = self.client.requests_made
        fetched = [
            artist_document(obj)
            for obj in await self.client.lookup("artists", missing)
            if isinstance(obj.get("id"), str) and obj["id"] in stubs
        ]
        requests = self.client.requests_made - before
        enriched = {doc["id"] for doc in fetched}
        return fetched, [stubs[i] for i in missing if i not in enriched], requests


def parse_item(item: Any, blacklist: set[str]) -> ParsedItem | None:
    """A recently-played item as a play, or None for local files, episodes and junk."""
    if not isinstance(item, dict):
        return None
    track = item.get("track")
    played_at = _parse_time(item.get("played_at"))
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
        _LOGGER.warning("ignoring a malformed play document in MongoDB")
        return None
    artist_ids = tuple(i for i in info.get("artistIds") or () if isinstance(i, str))
    duration = info.get("durationMs")
    play = Play(
        track_id=track_id,
        played_at=_as_utc(played_at),
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


def _unique_by_id(docs: Iterable[Document | None]) -> list[Document]:
    unique: dict[str, Document] = {}
    for doc in docs:
        if doc is not None:
            unique.setdefault(doc["id"], doc)
    return list(unique.values())


def _is_id(value: object) -> bool:
    return isinstance(value, str) and SPOTIFY_ID.fullmatch(value) is not None


def _parse_time(value: object) -> datetime | None:
    """Spotify's ISO 8601 played_at, truncated to milliseconds like BSON dates."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _as_utc(moment: datetime) -> datetime:
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
