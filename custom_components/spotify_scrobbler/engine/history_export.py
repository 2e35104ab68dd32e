"""Export of one account's plays as Spotify's "Extended streaming history" files.

Plain asyncio (no Home Assistant imports). Memory stays bounded whatever the history size:
plays are read with ONE MongoDB cursor in ``played_at`` order, a batch at a time; each
batch's track, album and artist names are looked up with ``$in`` (a bounded cache spares
the repeats); entries are serialised and appended to the current file in an executor, and
a file is renamed to its Spotify name only once complete.

The rule that makes a round trip exact (import the files into an empty account: the same
(track id, played_at) set), given the import's rules (export_entries, import_matching):

* ``ts`` is the stored ``played_at`` itself, never shifted: the import stores a play at
  its ``ts``. An imported play's ``played_at`` IS its export's ``ts`` (the end of the
  play); a live play's is Spotify's ``played_at``, the end of the play on some clients
  and its start on others, which nothing tells apart. Milliseconds are written when the
  instant has them (``2026-02-25T20:15:20.497Z``, as Spotify's API writes ``played_at``);
  ``whole_seconds`` cuts them, as Spotify's files do, for importers that read nothing
  else (ListenBrainz), and a re-import then stores those plays up to a second earlier.
* ``ms_played`` is the import's ``scrobbler_ms_played`` if the play has it, else
  ``durationMs`` (the track's length: a live play's listening time is unknown), and never
  less than ``MIN_MS_PLAYED``: every importer (ours, Your Spotify's) takes a shorter
  ``ms_played`` for a skip, while a stored play was counted as a play.
* Same-track plays less than 30 s apart, which the import takes for one play, are never
  stored by this integration (the live loop's and the import's ±30 s rules).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import PyMongoError

from .export_writer import ExportFiles
from .import_matching import MIN_MS_PLAYED
from .known_metadata import BoundedMap
from .payload import SPOTIFY_ID, as_utc
from .spoken_plays import SPOKEN_FIELDS, SpokenPlays, spoken_entry_fields
from .store import IMPORTED_MS_FIELD, NOT_BLACKLISTED, STUB_FIELD, Document, ScrobbleStore

READ_BATCH: Final = 2_000  # plays per cursor batch: converted and written together
NAME_CACHE: Final = 10_000  # names kept per kind (tracks, albums, artists) between batches
MONGO_ATTEMPTS: Final = 5  # per MongoDB step, before the export fails
MONGO_RETRY_DELAY: Final = 30.0  # seconds between those attempts

PLAY_PROJECTION: Final = {
    "_id": 1,
    "id": 1,
    "played_at": 1,
    "durationMs": 1,
    "albumId": 1,
    "primaryArtistId": 1,
    IMPORTED_MS_FIELD: 1,
}
TRACK_PROJECTION: Final = {"_id": 0, "id": 1, "name": 1, "album": 1, "artists": 1, STUB_FIELD: 1}
# Fields of Spotify's entries this integration does not know: written as null, so that
# every key of Spotify's own files is there.
_UNKNOWN_BEFORE_NAMES: Final = ("conn_country", "ip_addr")
_UNKNOWN_AFTER_URI: Final = (
    *SPOKEN_FIELDS,
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
)

_TRACK_KEYS: Final = (
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
)

type RunBlocking = Callable[..., Awaitable[Any]]  # (func, *args) -> func(*args), off the loop


# --- one entry


def entry_ts(moment: datetime, *, whole_seconds: bool = False) -> str:
    """The export's ``ts``: UTC with 'Z'; milliseconds only when there are some to keep."""
    utc = as_utc(moment)
    millis = utc.microsecond // 1000
    fraction = "" if whole_seconds or millis == 0 else f".{millis:03d}"
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def ms_played_of(play: Document) -> int:
    """What the entry says was listened to (see the module's docstring)."""
    for key in (IMPORTED_MS_FIELD, "durationMs"):
        value = play.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return max(int(value), MIN_MS_PLAYED)
    return MIN_MS_PLAYED


@dataclass(slots=True, frozen=True)
class EntryNames:
    """The names an entry carries (None: not in MongoDB)."""

    track: str | None = None
    artist: str | None = None
    album: str | None = None


def export_entry(
    track_id: str, played_at: datetime, ms_played: int, names: EntryNames, *, whole_seconds: bool
) -> dict[str, Any]:
    """One entry, its keys in the order of Spotify's files."""
    entry: dict[str, Any] = {
        "ts": entry_ts(played_at, whole_seconds=whole_seconds),
        "platform": None,
        "ms_played": ms_played,
    }
    entry.update(dict.fromkeys(_UNKNOWN_BEFORE_NAMES))
    entry["master_metadata_track_name"] = names.track
    entry["master_metadata_album_artist_name"] = names.artist
    entry["master_metadata_album_album_name"] = names.album
    entry["spotify_track_uri"] = f"spotify:track:{track_id}"
    entry.update(dict.fromkeys(_UNKNOWN_AFTER_URI))
    return entry


def spoken_export_entry(doc: Mapping[str, Any], *, whole_seconds: bool) -> dict[str, Any] | None:
    """A kept podcast episode or audiobook chapter as an entry (None: unusable document)."""
    ts, ms_played = doc.get("ts"), doc.get("ms_played")
    if not isinstance(ts, datetime) or not isinstance(ms_played, int):
        return None
    entry: dict[str, Any] = {
        "ts": entry_ts(ts, whole_seconds=whole_seconds),
        "platform": None,
        "ms_played": ms_played,
    }
    entry.update(dict.fromkeys(_UNKNOWN_BEFORE_NAMES))
    entry.update(dict.fromkeys(_TRACK_KEYS))
    entry.update(dict.fromkeys(_UNKNOWN_AFTER_URI))
    entry.update(spoken_entry_fields(doc))
    return entry


# --- names, per batch


@dataclass(slots=True, frozen=True)
class TrackNames:
    """What an entry takes from a track document."""

    name: str | None
    album_id: str | None
    artist_id: str | None  # the first artist
    stub_artist: str | None  # the export's names, on a track the import made from them
    stub_album: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def track_names(doc: Mapping[str, Any]) -> TrackNames:
    """A track document's names and ids (any field may be missing)."""
    listed = doc.get("artists")
    artists = [a for a in listed if isinstance(a, str)] if isinstance(listed, list) else []
    stub = doc.get(STUB_FIELD)
    stub = stub if isinstance(stub, dict) else {}
    return TrackNames(
        _text(doc.get("name")),
        _text(doc.get("album")),
        artists[0] if artists else None,
        _text(stub.get("artist_name")),
        _text(stub.get("album_name")),
    )


_NAME_ONLY: Final = {"_id": 0, "id": 1, "name": 1}


def _doc_name(doc: Mapping[str, Any]) -> str | None:
    return _text(doc.get("name"))


class NameLookup:
    """Names by id for a batch of plays: ``$in`` queries for what the cache lacks."""

    def __init__(self, store: ScrobbleStore, size: int = NAME_CACHE) -> None:
        """Look up in ``store``'s tracks, albums and artists; cache ``size`` of each."""
        self._store = store
        self._tracks: BoundedMap[TrackNames | None] = BoundedMap(size)
        self._albums: BoundedMap[str | None] = BoundedMap(size)
        self._artists: BoundedMap[str | None] = BoundedMap(size)
        self.queries = 0

    async def names(self, plays: Sequence[Document]) -> dict[str, EntryNames]:
        """Names by play ``_id`` (as str) for the plays with a track id."""
        track_ids = {p["id"] for p in plays if isinstance(p.get("id"), str)}
        tracks = await self._fetch(
            self._tracks, self._store.tracks, TRACK_PROJECTION, track_ids, track_names
        )
        album_of: dict[str, str | None] = {}
        artist_of: dict[str, str | None] = {}
        for play in plays:
            track = tracks.get(str(play.get("id")))
            key = str(play["_id"])
            album_of[key] = _text(play.get("albumId")) or (track.album_id if track else None)
            artist_of[key] = _text(play.get("primaryArtistId")) or (
                track.artist_id if track else None
            )
        album_ids = {a for a in album_of.values() if a}
        artist_ids = {a for a in artist_of.values() if a}
        albums = await self._fetch(
            self._albums, self._store.albums, _NAME_ONLY, album_ids, _doc_name
        )
        artists = await self._fetch(
            self._artists, self._store.artists, _NAME_ONLY, artist_ids, _doc_name
        )
        found: dict[str, EntryNames] = {}
        for play in plays:
            key = str(play["_id"])
            track = tracks.get(str(play.get("id")))
            found[key] = EntryNames(
                track.name if track else None,
                artists.get(artist_of[key] or "") or (track.stub_artist if track else None),
                albums.get(album_of[key] or "") or (track.stub_album if track else None),
            )
        return found

    async def _fetch[V](
        self,
        cache: BoundedMap[V | None],
        collection: AsyncCollection[Document],
        projection: Mapping[str, int],
        ids: set[str],
        convert: Callable[[Mapping[str, Any]], V | None],
    ) -> dict[str, V | None]:
        """Values for ``ids``: the cached ones, the others from ONE ``$in`` query."""
        found = {i: cache.get(i) for i in ids if i in cache}
        missing = [i for i in ids if i not in found]
        if missing:
            self.queries += 1
            fetched: dict[str, V | None] = dict.fromkeys(missing)  # None: not stored
            async for doc in collection.find({"id": {"$in": missing}}, projection):
                if isinstance(doc.get("id"), str) and doc["id"] in fetched:
                    fetched[doc["id"]] = convert(doc)
            for key, value in fetched.items():
                cache.put(key, value)
            found.update(fetched)
        return found


# --- the export


@dataclass(slots=True, frozen=True)
class ExportRange:
    """Which plays: [start, end) on played_at (None: open), blacklisted ones or not."""

    start: datetime | None = None
    end: datetime | None = None
    include_blacklisted: bool = True

    def query(self, owner: ObjectId) -> Document:
        """The MongoDB filter."""
        query: Document = {"owner": owner}
        bounds: Document = {}
        if self.start is not None:
            bounds["$gte"] = self.start
        if self.end is not None:
            bounds["$lt"] = self.end
        if bounds:
            query["played_at"] = bounds
        if not self.include_blacklisted:
            query.update(NOT_BLACKLISTED)
        return query


@dataclass(slots=True)
class ExportCounts:
    """Progress: plays matched, written, skipped (no usable track id or time), files.

    Podcast episodes and audiobook chapters a history import kept count as plays here;
    ``spoken`` says how many of those written they are.
    """

    total: int = 0
    exported: int = 0
    skipped: int = 0
    spoken: int = 0
    files: list[str] = field(default_factory=list)


class HistoryExporter:
    """Exports one account's plays into a folder (see the module's docstring)."""

    def __init__(
        self,
        store: ScrobbleStore,
        owner: ObjectId,
        files: ExportFiles,
        selection: ExportRange,
        *,
        run_blocking: RunBlocking,
        whole_seconds: bool = False,
        on_progress: Callable[[ExportCounts], Awaitable[None]] | None = None,
        batch_size: int | None = None,
        retry_delay: float | None = None,
    ) -> None:
        """Read ``owner``'s plays of ``selection`` from ``store`` into ``files``.

        ``run_blocking(func, *args)`` runs the serialisation and file I/O off the event loop
        (Home Assistant's ``async_add_executor_job``).
        """
        self.store = store
        self.owner = owner
        self.files = files
        self.selection = selection
        self.whole_seconds = whole_seconds
        self.counts = ExportCounts()
        self.names = NameLookup(store)
        self._run_blocking = run_blocking
        self._on_progress = on_progress
        self._batch = READ_BATCH if batch_size is None else batch_size
        self._retry_delay = MONGO_RETRY_DELAY if retry_delay is None else retry_delay
        self._cursor: AsyncCursor[Document] | None = None
        # Where a reopened cursor resumes: the last instant read, and the plays read at it.
        self._resume_at: datetime | None = None
        self._read_at: set[Any] = set()
        self._spoken = SpokenPlays(store.db, owner)
        self._spoken_after: tuple[datetime, Any] | None = None  # (ts, _id) written last

    async def run(self) -> ExportCounts:
        """Export everything; on any error or cancellation the unfinished file is deleted."""
        try:
            self.counts.total = await self._retrying(self._count)
            while plays := await self._retrying(self._next_batch):
                names = await self._retrying(lambda: self.names.names(plays))
                await self._off_loop(self._write, plays, names)
                await self._progress()
            # Then what the imports kept apart from music, in files of their own (each
            # file in time order, as Spotify's are).
            await self._off_loop(self.files.finish)
            while spoken := await self._retrying(self._next_spoken_batch):
                await self._off_loop(self._write_spoken, spoken)
                await self._progress()
            self.counts.files = await self._off_loop(self.files.finish)
        except BaseException:
            await asyncio.shield(self._off_loop(self.files.abort))
            raise
        finally:
            await self._close_cursor()
        return self.counts

    async def _count(self) -> int:
        music = await self.store.infos.count_documents(self.selection.query(self.owner))
        spoken = await self._spoken.collection.count_documents(
            self._spoken.query(self.selection.start, self.selection.end)
        )
        return music + spoken

    async def _progress(self) -> None:
        self.counts.files = list(self.files.completed)
        if self._on_progress is not None:
            await self._on_progress(self.counts)

    async def _next_spoken_batch(self) -> list[Document]:
        """The next kept spoken plays in (ts, _id) order: one query each, so resumable."""
        query = self._spoken.query(self.selection.start, self.selection.end)
        if self._spoken_after is not None:
            ts, last_id = self._spoken_after
            query["$or"] = [{"ts": {"$gt": ts}}, {"ts": ts, "_id": {"$gt": last_id}}]
        cursor = self._spoken.collection.find(query).sort([("ts", ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.limit(self._batch).to_list()
        if docs:
            self._spoken_after = (docs[-1]["ts"], docs[-1]["_id"])
        return docs

    def _write_spoken(self, docs: Sequence[Document]) -> None:
        """Convert and write kept spoken plays (blocking)."""
        entries: list[tuple[int, dict[str, Any]]] = []
        for doc in docs:
            entry = spoken_export_entry(doc, whole_seconds=self.whole_seconds)
            if entry is None:
                self.counts.skipped += 1
                continue
            entries.append((as_utc(doc["ts"]).year, entry))
        self.files.add(entries)
        self.counts.exported += len(entries)
        self.counts.spoken += len(entries)

    async def _next_batch(self) -> list[Document]:
        """The next plays in played_at order; after a failure, reopened where it stopped."""
        if self._cursor is None:
            query = self.selection.query(self.owner)
            if self._resume_at is not None:
                query["played_at"] = {**query.get("played_at", {}), "$gte": self._resume_at}
            self._cursor = self.store.infos.find(
                query, PLAY_PROJECTION, batch_size=self._batch
            ).sort("played_at", ASCENDING)
        while True:
            try:
                plays = await self._cursor.to_list(self._batch)
            except PyMongoError:
                await self._close_cursor()
                raise
            # A reopened cursor starts with the plays read at the resume instant again.
            fresh = [p for p in plays if p.get("_id") not in self._read_at]
            for play in plays:
                played_at = play.get("played_at")
                if not isinstance(played_at, datetime):
                    continue
                if played_at != self._resume_at:
                    self._resume_at, self._read_at = played_at, set()
                self._read_at.add(play.get("_id"))
            if fresh or not plays:
                return fresh

    async def _close_cursor(self) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            with contextlib.suppress(PyMongoError):  # the server forgets it by itself
                await cursor.close()

    def _write(self, plays: Sequence[Document], names: Mapping[str, EntryNames]) -> None:
        """Convert and write one batch (blocking: serialisation and file I/O)."""
        entries: list[tuple[int, dict[str, Any]]] = []
        for play in plays:
            track_id, played_at = play.get("id"), play.get("played_at")
            if (
                not isinstance(track_id, str)
                or SPOTIFY_ID.fullmatch(track_id) is None
                or not isinstance(played_at, datetime)
            ):
                self.counts.skipped += 1  # nothing an importer could identify
                continue
            entry = export_entry(
                track_id,
                played_at,
                ms_played_of(play),
                names.get(str(play["_id"]), EntryNames()),
                whole_seconds=self.whole_seconds,
            )
            entries.append((as_utc(played_at).year, entry))
        self.files.add(entries)
        self.counts.exported += len(entries)

    async def _off_loop[*Ts, T](self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        result: T = await self._run_blocking(func, *args)
        return result

    async def _retrying[T](self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt()`` again after MongoDB failures; the last failure propagates."""
        for number in range(1, MONGO_ATTEMPTS + 1):
            try:
                return await attempt()
            except PyMongoError:
                if number == MONGO_ATTEMPTS:
                    raise
                await asyncio.sleep(self._retry_delay)
        raise AssertionError("unreachable")  # pragma: no cover
