"""Import of Spotify's "Extended streaming history" export.

Plain asyncio (no Home Assistant imports), like scrobbler.py, so the benchmark can run it.

* ``read_segment`` parses a bounded number of entries of one ``Streaming_History_Audio_*.json``
  file from a byte offset, with a bounded buffer (run it in an executor).
* ``HistoryImporter`` stores the music plays of a segment that are not stored yet (the rule
  is import_matching's; plus the unique (owner, played_at) index), asking MongoDB ONE range
  query per segment: FerretDB's SQLite backend full-scans range queries, so a query per play
  or per small batch would take hours on a large history.
* ``import_enrichment.MetadataEnricher`` later fills the album and artist ids the export
  lacks, a few Spotify requests per minute through the shared request gate.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError

from .import_matching import (
    MIN_MS_PLAYED,
    ExportPlay,
    RunRecord,
    StoredPlays,
    select_new,
    window,
)
from .payload import SPOTIFY_ID, parse_time
from .store import DUPLICATE_KEY, Document, ScrobbleStore

READ_CHUNK: Final = 256 * 1024  # bytes read at a time
MAX_ENTRY_CHARS: Final = 1024 * 1024  # one entry is ~600 bytes; more means a broken file
SEGMENT_ENTRIES: Final = 20_000  # entries per segment: bounds memory and sets checkpoints
INSERT_BATCH: Final = 5_000  # plays per insert_many
TRACK_URI_PREFIX: Final = "spotify:track:"
PENDING_COLLECTION: Final = "scrobbler_import_pending"
STAGING_COLLECTION: Final = "scrobbler_import_staging"
# Our field on imported play documents: the export's ms_played. A stored play with it sits
# exactly at its export ts (the import's own rule applies); one without it is a live play.
IMPORTED_FIELD: Final = "scrobbler_ms_played"

# Why an entry was not imported, in the order the checks run.
SKIP_REASONS: Final = ("malformed", "podcast", "audiobook", "no_track_id", "too_short")
_EPISODE_FIELDS: Final = ("episode_name", "episode_show_name", "spotify_episode_uri")
_AUDIOBOOK_FIELDS: Final = (
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)

RECENT_DAYS: Final = timedelta(days=1)  # the live loop may be writing plays this recent


_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


type RunBlocking = Callable[..., Awaitable[Any]]  # (func, *args) -> func(*args), off the loop


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
    """A segment's music plays, sorted by time (the file's own repeats included)."""

    counts: ImportCounts  # read, skipped by reason
    plays: list[ExportPlay]


def classify_segment(entries: Sequence[Any]) -> ClassifiedSegment:
    """Classify and sort a segment's entries (pure CPU work, no I/O).

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
    return ClassifiedSegment(counts, plays)


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
    # First and last music play of the segment, stored or not: a segment retried after a
    # lost reply, or re-run after a crash, finds its own plays stored (duplicates), and the
    # live loop must still learn about them.
    span: tuple[datetime, datetime] | None = None


@dataclass(slots=True, frozen=True)
class TrackInfo:
    """The ids a play document takes from its track."""

    album_id: str | None
    artist_ids: tuple[str, ...]


class HistoryImporter:
    """Stores export entries of one account, segment by segment.

    ``prepare`` reads, once per run, which days already hold plays of the account and
    which tracks are stored: a segment then asks MongoDB about stored plays only when some
    of its plays' windows (``import_matching.window``) reach an occupied day, an earlier
    segment's range, or the last day, where the live loop may be writing right now. A
    first import into an account with only recent live plays needs no range query at all;
    a re-import one per segment.
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

        ``run_blocking(func, *args)`` runs a segment's CPU work (classification, matching)
        off the event loop (Home Assistant's ``async_add_executor_job``); default: the
        loop's default executor.
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
        self._tracks: dict[str, TrackInfo | None] = {}  # None: stored as a stub only
        self._record = RunRecord()  # live plays absorbed by this run's earlier segments

    async def ensure_indexes(self) -> None:
        """The pending-enrichment collection's index (the play indexes are the store's)."""
        await self.pending.create_index([("owner", ASCENDING), ("id", ASCENDING)], unique=True)

    async def prepare(self, now: datetime) -> None:
        """Read the occupied days and the stored tracks (two scans, small results)."""
        self._live_from = now - RECENT_DAYS
        self._inserted_ranges.clear()
        self._record = RunRecord()
        days: set[int] = set()
        cursor = self.store.infos.find(
            {"owner": self.owner}, {"_id": 0, "played_at": 1}, batch_size=10_000
        )
        async for doc in cursor:
            played_at = doc.get("played_at")
            if isinstance(played_at, datetime):
                days.add(as_utc(played_at).toordinal())
        self._occupied_days = days
        tracks: dict[str, TrackInfo | None] = {}
        cursor = self.store.tracks.find(
            {},
            {"_id": 0, "id": 1, "album": 1, "artists": 1, "scrobbler_stub": 1},
            batch_size=10_000,
        )
        async for doc in cursor:
            if isinstance(doc.get("id"), str):
                tracks[doc["id"]] = track_info_of(doc)
        self._tracks = tracks

    def _may_be_stored(self, play: ExportPlay) -> bool:
        """Whether a stored play can be in ``play``'s window (False is certain)."""
        start, end = window(play)
        if end >= self._live_from:
            return True
        days = range(start.toordinal(), end.toordinal() + 1)
        if any(day in self._occupied_days for day in days):
            return True
        return any(start <= last and end >= first for first, last in self._inserted_ranges)

    async def import_entries(self, entries: Sequence[Any]) -> SegmentResult:
        """Classify, de-duplicate and store one segment's entries (idempotent)."""
        classified = await self._off_loop(classify_segment, entries)
        counts, plays = classified.counts, classified.plays
        if not plays:
            return SegmentResult(counts)

        # Tens of ms each for a full segment: off the event loop, like the classification.
        span = await self._off_loop(self._span_to_query, plays)
        stored = StoredPlays() if span is None else await self._stored_between(*span)
        matching = await self._off_loop(select_new, plays, stored, self._record)
        new = matching.new
        counts.duplicates += matching.duplicates
        inserted: list[ExportPlay] = []
        if new:
            infos = await self._write_tracks(new)
            inserted = await self._insert(new, infos)
        # Only now: a segment retried after a MongoDB failure must match the same way.
        self._record.commit(matching)
        counts.imported = len(inserted)
        counts.duplicates += len(new) - len(inserted)
        span = (plays[0].played_at, plays[-1].played_at)
        if not inserted:
            return SegmentResult(counts, span=span)
        self._inserted_ranges.append((inserted[0].played_at, inserted[-1].played_at))
        return SegmentResult(counts, inserted[0].played_at, inserted[-1].played_at, span)

    async def _off_loop[*Ts, T](self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        if self._run_blocking is None:
            return await asyncio.get_running_loop().run_in_executor(None, func, *args)
        result: T = await self._run_blocking(func, *args)
        return result

    def _span_to_query(self, plays: Sequence[ExportPlay]) -> tuple[datetime, datetime] | None:
        """The span of the windows that can hold stored plays; None: no query needed."""
        checked = [window(play) for play in plays if self._may_be_stored(play)]
        if not checked:
            return None
        return min(start for start, _ in checked), max(end for _, end in checked)

    async def _stored_between(self, start: datetime, end: datetime) -> StoredPlays:
        """Stored plays of the range, live and imported: the segment's ONE range query."""
        self.range_queries += 1
        stored = StoredPlays()
        cursor = self.store.infos.find(
            {"owner": self.owner, "played_at": {"$gte": start, "$lte": end}},
            {"_id": 0, "id": 1, "played_at": 1, IMPORTED_FIELD: 1},
            batch_size=10_000,
        )
        async for doc in cursor:
            track_id, played_at = doc.get("id"), doc.get("played_at")
            if isinstance(track_id, str) and isinstance(played_at, datetime):
                imported = IMPORTED_FIELD in doc
                stored.add(track_id, as_utc(played_at), imported=imported)
        return stored

    async def _write_tracks(self, plays: Sequence[ExportPlay]) -> dict[str, TrackInfo]:
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
            await insert_ignoring_duplicates(
                self.store.tracks, [_stub_track(names[track_id]) for track_id in missing]
            )
            self._tracks.update(dict.fromkeys(missing))
        pending = [track_id for track_id in names if track_id not in known]
        if pending:
            await insert_ignoring_duplicates(
                self.pending, [{"owner": self.owner, "id": track_id} for track_id in pending]
            )
        return known

    async def _insert(
        self, plays: Sequence[ExportPlay], infos: dict[str, TrackInfo]
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

    def _document(self, play: ExportPlay, info: TrackInfo | None) -> Document:
        # Your Spotify's play document. durationMs is what the export measured (ms_played);
        # ids unknown until enrichment are null. IMPORTED_FIELD (ours) marks an imported play.
        doc: Document = {
            "owner": self.owner,
            "id": play.track_id,
            "albumId": info.album_id if info else None,
            "primaryArtistId": info.artist_ids[0] if info else None,
            "artistIds": list(info.artist_ids) if info else [],
            "durationMs": play.ms_played,
            "played_at": play.played_at,
            IMPORTED_FIELD: play.ms_played,
        }
        if info is not None and info.artist_ids[0] in self.blacklist:
            doc["blacklistedBy"] = "artist"
        return doc


def track_info_of(doc: Document) -> TrackInfo | None:
    """Album and artist ids of a stored full track; None for a stub or an incomplete one."""
    artists = tuple(a for a in doc.get("artists") or () if isinstance(a, str))
    if "scrobbler_stub" in doc or not isinstance(doc.get("album"), str) or not artists:
        return None
    return TrackInfo(doc["album"], artists)


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


async def insert_ignoring_duplicates(collection: Any, docs: Sequence[Document]) -> None:
    """Insert in unordered batches; documents already stored (duplicate key) are skipped."""
    for start in range(0, len(docs), INSERT_BATCH):
        try:
            await collection.insert_many(docs[start : start + INSERT_BATCH], ordered=False)
        except BulkWriteError as err:
            _duplicate_indexes(err)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
