"""Import of Spotify's "Extended streaming history" export, and background enrichment.

Plain asyncio (no Home Assistant imports), like scrobbler.py, so the benchmark can run it.

* ``read_segment`` parses a bounded number of entries of one ``Streaming_History_Audio_*.json``
  file from a byte offset, with a bounded buffer (run it in an executor).
* ``HistoryImporter`` stores the music plays of a segment with the live loop's duplicate rule
  (same track within ±30 s = same play; unique (owner, played_at) index), asking MongoDB ONE
  range query per segment: FerretDB's SQLite backend full-scans range queries, so a query per
  play or per small batch would take hours on a large history.
* ``MetadataEnricher`` later fills the album and artist ids the export lacks, a few Spotify
  requests per minute through the shared request gate.
"""

from __future__ import annotations

import asyncio
import bisect
import codecs
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, PyMongoError

from .payload import EARLIEST_PLAY, SPOTIFY_ID, artist_document, parse_item, parse_time
from .scrobbler import DUPLICATE_WINDOW
from .spotify import (
    RequestGate,
    SpotifyAuthError,
    SpotifyClient,
    SpotifyError,
    SpotifyRateLimitedError,
)
from .store import DUPLICATE_KEY, Document, ScrobbleStore

_LOGGER = logging.getLogger(__name__)

READ_CHUNK: Final = 256 * 1024  # bytes read at a time
MAX_ENTRY_CHARS: Final = 1024 * 1024  # one entry is ~600 bytes; more means a broken file
SEGMENT_ENTRIES: Final = 20_000  # entries per segment: bounds memory and sets checkpoints
INSERT_BATCH: Final = 5_000  # plays per insert_many
MIN_MS_PLAYED: Final = 30_000  # shorter plays are skips (Your Spotify's and Maloja's rule)
TRACK_URI_PREFIX: Final = "spotify:track:"
PENDING_COLLECTION: Final = "scrobbler_import_pending"
STAGING_COLLECTION: Final = "scrobbler_import_staging"

# Why an entry was not imported, in the order the checks run.
SKIP_REASONS: Final = ("malformed", "podcast", "audiobook", "no_track_id", "too_short")
_EPISODE_FIELDS: Final = ("episode_name", "episode_show_name", "spotify_episode_uri")
_AUDIOBOOK_FIELDS: Final = (
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)

# Enrichment budget: one Spotify request per ENRICH_INTERVAL at most (20 a minute), on top of
# the gate's spacing, so a live cycle never waits more than one request behind enrichment.
ENRICH_INTERVAL: Final = 3.0
ENRICH_RETRY_DELAY: Final = 60.0  # after a Spotify or MongoDB failure
ENRICH_MONGO_ATTEMPTS: Final = 5  # MongoDB failures in a row before the enrichment stops
ENRICH_BATCH: Final = 200  # pending tracks read per step
BATCH_TRACKS: Final = 50  # Spotify's /tracks?ids= limit (apps with extended quota)
# Resolved tracks are written to their plays in one pass over the account's plays that
# lack ids (FerretDB scans the collection for any update not by _id).
ENRICH_FLUSH_TRACKS: Final = 500
RECENT_DAYS: Final = timedelta(days=1)  # the live loop may be writing plays this recent
# parse_item needs a played_at to read a track object; any instant it accepts will do.
_PLACEHOLDER_PLAYED_AT: Final = EARLIEST_PLAY.isoformat()


_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


type RunBlocking = Callable[
    [Callable[[Sequence[Any]], ClassifiedSegment], Sequence[Any]], Awaitable[ClassifiedSegment]
]


class ExportFormatError(Exception):
    """The file is not a JSON array of entries (or is cut off)."""


# --- reading


@dataclass(slots=True)
class Segment:
    """Entries parsed from one file, and where to continue."""

    entries: list[Any]
    end_offset: int  # byte offset just after the last entry (a checkpoint)
    finished: bool  # the array's closing bracket was reached


class _Reader:
    """A bounded text buffer over a binary file that knows the byte offset of its start."""

    def __init__(self, file: Any, offset: int, chunk_size: int) -> None:
        self._file = file
        self._chunk = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.offset = offset  # byte offset of buf[pos]
        self.eof = False

    def fill(self) -> bool:
        """Read one more chunk; False at end of file."""
        if self.eof:
            return False
        data = self._file.read(self._chunk)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as err:
            raise ExportFormatError(f"not UTF-8 near byte {self.offset}") from err
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        self.eof = not data
        if len(self.buf) > MAX_ENTRY_CHARS + self._chunk:
            raise ExportFormatError(f"an entry near byte {self.offset} is too large")
        return True

    def advance(self, end: int) -> None:
        self.offset += len(self.buf[self.pos : end].encode())
        self.pos = end

    def next_char(self) -> str | None:
        """Skip whitespace; the next character (not consumed), None at end of file."""
        while True:
            self.advance(_WHITESPACE.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return None

    def expect(self, chars: str) -> str:
        char = self.next_char()
        if char is None or char not in chars:
            raise ExportFormatError(f"expected one of {chars!r} at byte {self.offset}")
        self.advance(self.pos + 1)
        return char

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the JSON value at the current position, reading more as needed."""
        self.next_char()
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self.eof or not self.fill():
                    raise ExportFormatError(f"invalid JSON at byte {self.offset}") from err
                continue
            # A number cut at the buffer's end decodes too early: make sure it is complete.
            if end >= len(self.buf) and self.fill():
                continue
            self.advance(end)
            return obj


def read_segment(
    path: str, offset: int, max_entries: int | None = None, chunk_size: int = READ_CHUNK
) -> Segment:
    """Up to ``max_entries`` entries of the JSON array in ``path``, from ``offset``.

    ``offset`` is 0 (start of file) or a previous segment's ``end_offset``. Blocking: run it
    in an executor. Memory is bounded by the segment, never by the file.
    """
    limit = SEGMENT_ENTRIES if max_entries is None else max_entries
    decoder = json.JSONDecoder()
    entries: list[Any] = []
    at_start = offset == 0
    with open(path, "rb") as file:  # noqa: PTH123
        if at_start and file.read(3) == codecs.BOM_UTF8:
            offset = 3
        file.seek(offset)
        reader = _Reader(file, offset, chunk_size)
        if at_start:
            reader.expect("[")
            if reader.next_char() == "]":
                reader.advance(reader.pos + 1)
                return Segment(entries, reader.offset, finished=True)
            entries.append(reader.value(decoder))
        while len(entries) < limit:
            checkpoint = reader.offset
            try:
                if reader.expect(",]") == "]":
                    return Segment(entries, reader.offset, finished=True)
                entries.append(reader.value(decoder))
            except ExportFormatError:
                if entries:  # keep what was read; the next segment reports the error
                    return Segment(entries, checkpoint, finished=False)
                raise
        return Segment(entries, reader.offset, finished=False)


def check_export_file(path: str) -> None:
    """Raise ExportFormatError, with a short reason, unless ``path`` begins like an export.

    An export file is a UTF-8 JSON array whose first entry (if any) decodes. A file that
    only breaks further on passes: the import keeps its readable part and reports the
    error. Blocking: run it in an executor.
    """
    with open(path, "rb") as file:  # noqa: PTH123
        head = file.read(READ_CHUNK)
    start = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    if not start and len(head) < READ_CHUNK:
        raise ExportFormatError("the file is empty")
    if start.startswith(b"PK\x03\x04"):
        raise ExportFormatError("it is a zip archive, extract it first")
    if start and not start.startswith(b"["):
        raise ExportFormatError("it does not begin with '['")
    read_segment(path, 0, max_entries=1)


# --- classifying


@dataclass(slots=True, frozen=True)
class ExportPlay:
    """A music play of the export: what the file tells about it."""

    played_at: datetime  # the export's ts: UTC end of the play, like recently-played
    track_id: str
    ms_played: int
    track_name: str | None
    artist_name: str | None
    album_name: str | None


def classify(entry: Any) -> ExportPlay | str:  # noqa: PLR0911 -- one return per reason
    """The play of an export entry, or the reason it is skipped (one of SKIP_REASONS)."""
    if not isinstance(entry, dict):
        return "malformed"
    played_at = parse_time(entry.get("ts"))
    ms_played = entry.get("ms_played")
    if played_at is None or not isinstance(ms_played, int) or isinstance(ms_played, bool):
        return "malformed"
    if ms_played < 0:
        return "malformed"
    if any(entry.get(key) is not None for key in _EPISODE_FIELDS):
        return "podcast"
    if any(entry.get(key) is not None for key in _AUDIOBOOK_FIELDS):
        return "audiobook"
    uri = entry.get("spotify_track_uri")
    if not isinstance(uri, str) or not uri.startswith(TRACK_URI_PREFIX):
        return "no_track_id"  # local files, or nothing to identify the track by
    track_id = uri[len(TRACK_URI_PREFIX) :]
    if SPOTIFY_ID.fullmatch(track_id) is None:
        return "no_track_id"
    if ms_played < MIN_MS_PLAYED:
        return "too_short"
    return ExportPlay(
        played_at=played_at,
        track_id=track_id,
        ms_played=ms_played,
        track_name=_text(entry.get("master_metadata_track_name")),
        artist_name=_text(entry.get("master_metadata_album_artist_name")),
        album_name=_text(entry.get("master_metadata_album_album_name")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class ClassifiedSegment:
    """A segment's music plays, sorted by time, without the file's own duplicates."""

    counts: ImportCounts  # read, skipped by reason, duplicates inside the segment
    plays: list[ExportPlay]


def classify_segment(entries: Sequence[Any]) -> ClassifiedSegment:
    """Classify, sort and de-duplicate a segment's entries (pure CPU work, no I/O).

    Tens of milliseconds for a full segment: ``HistoryImporter`` runs it in an executor,
    off the event loop.
    """
    counts = ImportCounts(read=len(entries))
    plays: list[ExportPlay] = []
    for entry in entries:
        result = classify(entry)
        if isinstance(result, str):
            counts.skipped[result] += 1
        else:
            plays.append(result)
    plays.sort(key=lambda play: play.played_at)

    # The same track within ±30 s inside the file itself is one play. Sorted, so only
    # the last kept play of a track can be that close.
    last_kept: dict[str, datetime] = {}
    unique: list[ExportPlay] = []
    for play in plays:
        previous = last_kept.get(play.track_id)
        if previous is not None and play.played_at - previous <= DUPLICATE_WINDOW:
            counts.duplicates += 1
            continue
        last_kept[play.track_id] = play.played_at
        unique.append(play)
    return ClassifiedSegment(counts, unique)


# --- storing the plays


@dataclass(slots=True)
class ImportCounts:
    """What an import saw; read = imported + duplicates + every skip reason."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))

    def add(self, other: ImportCounts) -> None:
        """Fold another count in."""
        self.read += other.read
        self.imported += other.imported
        self.duplicates += other.duplicates
        for reason, count in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (HA's Store, sensor attributes)."""
        return {
            "read": self.read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ImportCounts:
        """Inverse of ``as_dict`` (tolerates missing keys)."""
        counts = cls()
        if isinstance(data, dict):
            counts.read = int(data.get("read", 0))
            counts.imported = int(data.get("imported", 0))
            counts.duplicates = int(data.get("duplicates", 0))
            skipped = data.get("skipped")
            if isinstance(skipped, dict):
                for reason, count in skipped.items():
                    counts.skipped[str(reason)] = int(count)
        return counts


@dataclass(slots=True)
class SegmentResult:
    """What one segment stored."""

    counts: ImportCounts
    oldest: datetime | None = None  # of the inserted plays
    newest: datetime | None = None


@dataclass(slots=True, frozen=True)
class _TrackInfo:
    album_id: str | None
    artist_ids: tuple[str, ...]


class HistoryImporter:
    """Stores export entries of one account, segment by segment.

    ``prepare`` reads, once per run, which days already hold plays of the account and
    which tracks are stored: a segment then asks MongoDB about stored plays only when some
    of its plays can have one within ±30 s (an occupied day, an earlier segment's range,
    or the last day, where the live loop may be writing right now). A first import into an
    account with only recent live plays needs no range query at all; a re-import one per
    segment.
    """

    def __init__(
        self,
        store: ScrobbleStore,
        owner: ObjectId,
        blacklist: Iterable[str] = (),
        insert_batch: int | None = None,
        run_blocking: RunBlocking | None = None,
    ) -> None:
        """Import into ``store`` for the account ``owner``.

        ``run_blocking(func, entries)`` runs a segment's classification off the event loop
        (Home Assistant's ``async_add_executor_job``); default: the loop's default executor.
        """
        self.store = store
        self._run_blocking = run_blocking
        self.owner = owner
        self.blacklist = set(blacklist)
        self.insert_batch = INSERT_BATCH if insert_batch is None else insert_batch
        self.pending = store.db[PENDING_COLLECTION]
        self.range_queries = 0
        self._occupied_days: set[int] = set()
        self._live_from = datetime.max.replace(tzinfo=UTC)
        self._inserted_ranges: list[tuple[datetime, datetime]] = []
        self._tracks: dict[str, _TrackInfo | None] = {}  # None: stored as a stub only

    async def ensure_indexes(self) -> None:
        """The pending-enrichment collection's index (the play indexes are the store's)."""
        await self.pending.create_index([("owner", ASCENDING), ("id", ASCENDING)], unique=True)

    async def prepare(self, now: datetime) -> None:
        """Read the occupied days and the stored tracks (two scans, small results)."""
        self._live_from = now - RECENT_DAYS
        self._inserted_ranges.clear()
        days: set[int] = set()
        cursor = self.store.infos.find(
            {"owner": self.owner}, {"_id": 0, "played_at": 1}, batch_size=10_000
        )
        async for doc in cursor:
            played_at = doc.get("played_at")
            if isinstance(played_at, datetime):
                days.add(_as_utc(played_at).toordinal())
        self._occupied_days = days
        tracks: dict[str, _TrackInfo | None] = {}
        cursor = self.store.tracks.find(
            {},
            {"_id": 0, "id": 1, "album": 1, "artists": 1, "scrobbler_stub": 1},
            batch_size=10_000,
        )
        async for doc in cursor:
            if isinstance(doc.get("id"), str):
                tracks[doc["id"]] = _info_of(doc)
        self._tracks = tracks

    def _may_be_stored(self, play: ExportPlay) -> bool:
        """Whether a stored play can be within ±30 s of ``play`` (False is certain)."""
        start, end = play.played_at - DUPLICATE_WINDOW, play.played_at + DUPLICATE_WINDOW
        if end >= self._live_from:
            return True
        if start.toordinal() in self._occupied_days or end.toordinal() in self._occupied_days:
            return True
        return any(start <= last and end >= first for first, last in self._inserted_ranges)

    async def import_entries(self, entries: Sequence[Any]) -> SegmentResult:
        """Classify, de-duplicate and store one segment's entries (idempotent)."""
        if self._run_blocking is None:
            loop = asyncio.get_running_loop()
            classified = await loop.run_in_executor(None, classify_segment, entries)
        else:
            classified = await self._run_blocking(classify_segment, entries)
        counts, unique = classified.counts, classified.plays
        if not unique:
            return SegmentResult(counts)

        checked = [play for play in unique if self._may_be_stored(play)]
        stored: dict[str, list[datetime]] = {}
        if checked:
            stored = await self._stored_between(
                checked[0].played_at - DUPLICATE_WINDOW, checked[-1].played_at + DUPLICATE_WINDOW
            )
        new = [play for play in unique if not _has_near(stored, play)]
        counts.duplicates += len(unique) - len(new)
        if not new:
            return SegmentResult(counts)

        infos = await self._write_tracks(new)
        inserted = await self._insert(new, infos)
        counts.imported = len(inserted)
        counts.duplicates += len(new) - len(inserted)
        if not inserted:
            return SegmentResult(counts)
        self._inserted_ranges.append((inserted[0].played_at, inserted[-1].played_at))
        return SegmentResult(counts, inserted[0].played_at, inserted[-1].played_at)

    async def _stored_between(self, start: datetime, end: datetime) -> dict[str, list[datetime]]:
        """Stored plays of the range by track, sorted: the segment's ONE range query."""
        self.range_queries += 1
        stored: dict[str, list[datetime]] = {}
        cursor = self.store.infos.find(
            {"owner": self.owner, "played_at": {"$gte": start, "$lte": end}},
            {"_id": 0, "id": 1, "played_at": 1},
            batch_size=10_000,
        )
        async for doc in cursor:
            track_id, played_at = doc.get("id"), doc.get("played_at")
            if isinstance(track_id, str) and isinstance(played_at, datetime):
                stored.setdefault(track_id, []).append(_as_utc(played_at))
        for times in stored.values():
            times.sort()
        return stored

    async def _write_tracks(self, plays: Sequence[ExportPlay]) -> dict[str, _TrackInfo]:
        """Stub track documents for unknown tracks; album/artist ids of the known ones.

        Tracks already stored in full (scrobbled live, or enriched) give their ids at once;
        the others are queued for the background enrichment.
        """
        names: dict[str, ExportPlay] = {}
        for play in plays:
            names.setdefault(play.track_id, play)
        known = {i: info for i in names if (info := self._tracks.get(i)) is not None}
        missing = [track_id for track_id in names if track_id not in self._tracks]
        if missing:
            await _insert_ignoring_duplicates(
                self.store.tracks, [_stub_track(names[track_id]) for track_id in missing]
            )
            self._tracks.update(dict.fromkeys(missing))
        pending = [track_id for track_id in names if track_id not in known]
        if pending:
            await _insert_ignoring_duplicates(
                self.pending, [{"owner": self.owner, "id": track_id} for track_id in pending]
            )
        return known

    async def _insert(
        self, plays: Sequence[ExportPlay], infos: dict[str, _TrackInfo]
    ) -> list[ExportPlay]:
        """Insert in large unordered batches; a duplicate key means already stored."""
        inserted: list[ExportPlay] = []
        for start in range(0, len(plays), self.insert_batch):
            batch = plays[start : start + self.insert_batch]
            docs = [self._document(play, infos.get(play.track_id)) for play in batch]
            try:
                await self.store.infos.insert_many(docs, ordered=False)
            except BulkWriteError as err:
                rejected = _duplicate_indexes(err)
                inserted.extend(p for i, p in enumerate(batch) if i not in rejected)
            else:
                inserted.extend(batch)
        return inserted

    def _document(self, play: ExportPlay, info: _TrackInfo | None) -> Document:
        # Your Spotify's play document. durationMs is what the export measured (ms_played);
        # ids unknown until enrichment are null.
        doc: Document = {
            "owner": self.owner,
            "id": play.track_id,
            "albumId": info.album_id if info else None,
            "primaryArtistId": info.artist_ids[0] if info else None,
            "artistIds": list(info.artist_ids) if info else [],
            "durationMs": play.ms_played,
            "played_at": play.played_at,
        }
        if info is not None and info.artist_ids[0] in self.blacklist:
            doc["blacklistedBy"] = "artist"
        return doc


def _info_of(doc: Document) -> _TrackInfo | None:
    """Album and artist ids of a stored full track; None for a stub or an incomplete one."""
    artists = tuple(a for a in doc.get("artists") or () if isinstance(a, str))
    if "scrobbler_stub" in doc or not isinstance(doc.get("album"), str) or not artists:
        return None
    return _TrackInfo(doc["album"], artists)


def _has_near(stored: dict[str, list[datetime]], play: ExportPlay) -> bool:
    times = stored.get(play.track_id)
    if not times:
        return False
    index = bisect.bisect_left(times, play.played_at - DUPLICATE_WINDOW)
    return index < len(times) and times[index] <= play.played_at + DUPLICATE_WINDOW


def _stub_track(play: ExportPlay) -> Document:
    """A track document from the export alone; ``scrobbler_stub`` marks it for enrichment."""
    return {
        "id": play.track_id,
        "name": play.track_name or play.track_id,
        "album": None,
        "artists": [],
        "type": "track",
        "uri": f"{TRACK_URI_PREFIX}{play.track_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/track/{play.track_id}"},
        "scrobbler_stub": {"artist_name": play.artist_name, "album_name": play.album_name},
    }


def _duplicate_indexes(err: BulkWriteError) -> set[int]:
    errors = err.details.get("writeErrors", [])
    if any(error.get("code") != DUPLICATE_KEY for error in errors):
        raise err
    return {int(error["index"]) for error in errors}


async def _insert_ignoring_duplicates(collection: Any, docs: Sequence[Document]) -> None:
    for start in range(0, len(docs), INSERT_BATCH):
        try:
            await collection.insert_many(docs[start : start + INSERT_BATCH], ordered=False)
        except BulkWriteError as err:
            _duplicate_indexes(err)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- enrichment


class MetadataEnricher:
    """Fills album and artist ids of imported plays from Spotify, a few requests a minute.

    Work comes from the ``scrobbler_import_pending`` collection (one document per account
    and track), so it survives restarts. Tracks whose full document is already stored cost
    no request. Resolved tracks are written to the plays in batches (``flush``): one pass
    over the account's plays without ids, updated by ``_id``, per ENRICH_FLUSH_TRACKS
    tracks, because FerretDB scans the whole collection for an update by track id.
    """

    def __init__(
        self,
        client: SpotifyClient,
        gate: RequestGate,
        store: ScrobbleStore,
        owner: ObjectId,
        blacklist: Callable[[], Iterable[str]],
        *,
        interval: float | None = None,
        retry_delay: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Enrich the account ``owner``'s imported plays."""
        self.client = client
        self.gate = gate
        self.store = store
        self.owner = owner
        self.pending = store.db[PENDING_COLLECTION]
        self.staging = store.db[STAGING_COLLECTION]
        self._blacklist = blacklist
        self.interval = ENRICH_INTERVAL if interval is None else interval
        self.retry_delay = ENRICH_RETRY_DELAY if retry_delay is None else retry_delay
        self._sleep = sleep
        self._clock = clock
        self._last_request = -float("inf")
        self.requests = 0  # Spotify requests made by this enricher
        self.tracks_done = 0
        self.unknown_tracks = 0  # Spotify does not know them (404): ids stay null
        self.remaining: int | None = None
        self.on_progress: Callable[[], None] = lambda: None
        self._resolved: dict[str, _TrackInfo] = {}  # not yet written to the plays
        self._unknown: set[str] = set()

    async def run(self) -> None:
        """Work until nothing is pending; failures wait and retry.

        Stops when Spotify needs re-authorization; re-raises the MongoDB error after
        ENRICH_MONGO_ATTEMPTS failures in a row (the queue is in MongoDB: the caller starts
        again once MongoDB is back).
        """
        mongo_failures = 0
        while True:
            try:
                if not await self.step():
                    return
                mongo_failures = 0
            except SpotifyAuthError:
                _LOGGER.warning("metadata enrichment stopped: Spotify needs re-authorization")
                return
            except SpotifyRateLimitedError as err:
                await self._sleep(max(err.retry_after, self.gate.paused_for))
            except PyMongoError as err:
                mongo_failures += 1
                if mongo_failures >= ENRICH_MONGO_ATTEMPTS:
                    raise
                _LOGGER.debug("metadata enrichment: MongoDB failed (%s), retrying later", err)
                await self._sleep(self.retry_delay)
            except SpotifyError as err:
                _LOGGER.debug("metadata enrichment failed (%s), retrying later", err)
                await self._sleep(self.retry_delay)

    async def count_pending(self) -> int:
        """Tracks waiting for enrichment."""
        self.remaining = await self.pending.count_documents({"owner": self.owner})
        return self.remaining

    async def step(self) -> bool:
        """Resolve the next pending tracks (flushing when enough are); False when done."""
        await self._finish_staged()  # a flush interrupted by a crash or an unload
        query: Document = {"owner": self.owner}
        if self._resolved or self._unknown:
            query["id"] = {"$nin": [*self._resolved, *self._unknown]}
        cursor = self.pending.find(query, {"_id": 0, "id": 1}).limit(ENRICH_BATCH)
        ids = [doc["id"] async for doc in cursor if isinstance(doc.get("id"), str)]
        if not ids:
            if self._resolved or self._unknown:
                await self.flush()
                return True
            self.remaining = 0
            self.on_progress()
            return False
        self._resolved.update(await self._stored_infos(ids))
        unresolved = [track_id for track_id in ids if track_id not in self._resolved]
        if unresolved:
            fetched = await self._fetch_tracks(unresolved)
            self._resolved.update(fetched)
            self._unknown.update(track_id for track_id in unresolved if track_id not in fetched)
        if len(self._resolved) + len(self._unknown) >= ENRICH_FLUSH_TRACKS:
            await self.flush()
        self.on_progress()
        return True

    async def flush(self) -> None:
        """Write the resolved tracks' ids to their plays, then drop them from the queue.

        FerretDB scans the whole collection for every update, even by _id, so the plays
        are replaced instead: copied (with their ids) to a staging collection, deleted,
        and inserted again from it. A flush interrupted anywhere is completed from the
        staging collection by the next step; nothing is lost.
        """
        blacklist = set(self._blacklist())
        if self._resolved:
            track_ids = list(self._resolved)
            match = {"owner": self.owner, "primaryArtistId": None, "id": {"$in": track_ids}}
            replaced: list[Document] = []
            async for doc in self.store.infos.find(match, batch_size=10_000):
                info = self._resolved.get(doc.get("id"))  # type: ignore[arg-type]
                if info is None:
                    continue
                doc.update(
                    albumId=info.album_id,
                    primaryArtistId=info.artist_ids[0],
                    artistIds=list(info.artist_ids),
                )
                if info.artist_ids[0] in blacklist:
                    doc["blacklistedBy"] = "artist"
                replaced.append(doc)
            if replaced:
                await _insert_ignoring_duplicates(self.staging, replaced)
                await self.store.infos.delete_many(match)
                await self._finish_staged()
        done = [*self._resolved, *self._unknown]
        for start in range(0, len(done), ENRICH_FLUSH_TRACKS):
            chunk = done[start : start + ENRICH_FLUSH_TRACKS]
            await self.pending.delete_many({"owner": self.owner, "id": {"$in": chunk}})
        self.tracks_done += len(self._resolved)
        self.unknown_tracks += len(self._unknown)
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - len(done))
        self._resolved.clear()
        self._unknown.clear()

    async def _finish_staged(self) -> None:
        """Put staged plays (back) into infos; already there = duplicate key, ignored."""
        batch: list[Document] = []
        found = False
        async for doc in self.staging.find({"owner": self.owner}, batch_size=INSERT_BATCH):
            found = True
            batch.append(doc)
            if len(batch) >= INSERT_BATCH:
                await _insert_ignoring_duplicates(self.store.infos, batch)
                batch = []
        if batch:
            await _insert_ignoring_duplicates(self.store.infos, batch)
        if found:
            await self.staging.delete_many({"owner": self.owner})

    async def _stored_infos(self, ids: Sequence[str]) -> dict[str, _TrackInfo]:
        found: dict[str, _TrackInfo] = {}
        cursor = self.store.tracks.find(
            {"id": {"$in": list(ids)}},
            {"_id": 0, "id": 1, "album": 1, "artists": 1, "scrobbler_stub": 1},
        )
        async for doc in cursor:
            if (info := _info_of(doc)) is not None:
                found[doc["id"]] = info
        return found

    async def _turn(self) -> None:
        """Wait out a 429 pause and the budget before a request."""
        while (paused := self.gate.paused_for) > 0:
            await self._sleep(paused)
        wait = self._last_request + self.interval - self._clock()
        if wait > 0:
            await self._sleep(wait)

    async def _lookup(self, kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        await self._turn()
        before = self.client.requests_made
        try:
            return await self.client.lookup(kind, ids)
        finally:
            self._last_request = self._clock()
            self.requests += self.client.requests_made - before

    async def _fetch_artists(
        self, stubs: dict[str, Document]
    ) -> tuple[set[str], dict[str, Document]]:
        """(artists stored in full already, full artists fetched now): one request each."""
        enriched = await self.store.enriched_artist_ids(stubs)
        artists: dict[str, Document] = {}
        for artist_id in stubs:
            if artist_id not in enriched:
                for obj in await self._lookup("artists", [artist_id]):
                    if obj.get("id") == artist_id:
                        artists[artist_id] = artist_document(obj)
        return enriched, artists

    async def _fetch_tracks(self, ids: Sequence[str]) -> dict[str, _TrackInfo]:
        """Full tracks from Spotify, stored with their albums and (enriched) artists.

        One request per track (per 50 with batch endpoints), then one write per collection
        for all of them, with inserts and deletes only (FerretDB scans the collection per update):
        new documents are inserted, stubs (the import's tracks, artists without genres)
        are deleted and inserted in full.
        """
        objects: list[dict[str, Any]] = []
        pending = list(ids)
        while pending:
            # One id per request unless the batch endpoint is known to work: a refused batch
            # call must not turn into a burst of single lookups beyond the budget.
            size = BATCH_TRACKS if self.client.batch_support.allowed else 1
            chunk, pending = pending[:size], pending[size:]
            objects.extend(await self._lookup("tracks", chunk))
        blacklist = set(self._blacklist())
        tracks: list[Document] = []
        albums: list[Document] = []
        stubs: dict[str, Document] = {}
        infos: dict[str, _TrackInfo] = {}
        for obj in objects:
            parsed = parse_item({"track": obj, "played_at": _PLACEHOLDER_PLAYED_AT}, blacklist)
            if parsed is None or parsed.play.track_id not in ids or not parsed.play.artist_ids:
                continue
            tracks.append(parsed.track)
            if parsed.album is not None:
                albums.append(parsed.album)
            for artist in parsed.artists:
                stubs.setdefault(artist["id"], artist)
            infos[parsed.play.track_id] = _TrackInfo(parsed.play.album_id, parsed.play.artist_ids)
        enriched, artists = await self._fetch_artists(stubs)
        await _insert_ignoring_duplicates(self.store.albums, albums)
        if artists:
            await self.store.artists.delete_many(
                {"id": {"$in": list(artists)}, "genres": {"$exists": False}}
            )
        await _insert_ignoring_duplicates(
            self.store.artists,
            list(artists.values())
            + [doc for i, doc in stubs.items() if i not in enriched and i not in artists],
        )
        if tracks:
            await self.store.tracks.delete_many(
                {"id": {"$in": [doc["id"] for doc in tracks]}, "scrobbler_stub": {"$exists": True}}
            )
            await _insert_ignoring_duplicates(self.store.tracks, tracks)
        return infos
