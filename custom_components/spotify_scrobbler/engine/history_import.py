"""Import of Spotify's "Extended streaming history" export.

Plain asyncio (no Home Assistant imports), like scrobbler.py, so the benchmark can run it.

* ``export_reader.read_segment`` parses a bounded segment of one export file and
  ``export_entries.classify_segment`` sorts its music plays from what is skipped.
* ``HistoryImporter`` stores the music plays of a segment that are not stored yet (the rule
  is import_matching's; plus the unique (owner, played_at) index), asking MongoDB ONE range
  query per segment: FerretDB's SQLite backend full-scans range queries, so a query per play
  or per small batch would take hours on a large history.
* ``import_enrichment.MetadataEnricher`` later fills the album and artist ids the export
  lacks, a few Spotify requests per minute through the shared request gate.

``durationMs`` of an imported play is what Your Spotify's own importer stores there: the
track's length (``duration_ms``), the same measure as a live play's. Until the track is known
(a stub, or a stored track without a length) it holds the export's ``ms_played``, so that
every sum of ``durationMs`` (Your Spotify's listening time, our totals, statistics and
``top``) counts the play with the best length known; the enrichment replaces it with the
track's length, and it stays ``ms_played`` for tracks Spotify does not know. ``ms_played``
itself is always kept in ``scrobbler_ms_played``, which the duplicate matching reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

from .export_entries import TRACK_URI_PREFIX, ImportCounts, classify_segment
from .import_matching import (
    ExportPlay,
    RunRecord,
    StoredPlays,
    select_new,
    window,
)
from .spoken_plays import SpokenPlays
from .store import DUPLICATE_KEY, Document, ScrobbleStore
from .your_spotify import BLACKLISTED_BY

INSERT_BATCH: Final = 5_000  # plays per insert_many
PENDING_COLLECTION: Final = "scrobbler_import_pending"
# A queued track's listening (ms) in the export: the enrichment takes the most listened first.
LISTENED_FIELD: Final = "listened_ms"
STAGING_COLLECTION: Final = "scrobbler_import_staging"
# Our field on imported play documents: the export's ms_played, never changed. A stored play
# with it sits exactly at its export ts (the import's own rule applies); one without it is a
# live play.
IMPORTED_FIELD: Final = "scrobbler_ms_played"
# What track_info_of reads from a track document.
TRACK_PROJECTION: Final = {
    "_id": 0,
    "id": 1,
    "album": 1,
    "artists": 1,
    "duration_ms": 1,
    "scrobbler_stub": 1,
}
RECENT_DAYS: Final = timedelta(days=1)  # the live loop may be writing plays this recent

type RunBlocking = Callable[..., Awaitable[Any]]  # (func, *args) -> func(*args), off the loop


# --- storing the plays


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
    """What a play document takes from its track: ids, and its length when known."""

    album_id: str | None
    artist_ids: tuple[str, ...]
    duration_ms: int | None = None  # None: unknown (the play keeps its ms_played)


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
        self.spoken = SpokenPlays(store.db, owner)
        self.range_queries = 0
        self._occupied_days: set[int] = set()
        self._live_from = datetime.max.replace(tzinfo=UTC)
        self._inserted_ranges: list[tuple[datetime, datetime]] = []
        self._tracks: dict[str, TrackInfo | None] = {}  # None: stored as a stub only
        self._record = RunRecord()  # live plays absorbed by this run's earlier segments

    async def ensure_indexes(self) -> None:
        """The pending-enrichment and spoken-play indexes (the play indexes are the store's)."""
        await self.pending.create_index([("owner", ASCENDING), ("id", ASCENDING)], unique=True)
        await self.pending.create_index(
            [("owner", ASCENDING), (LISTENED_FIELD, DESCENDING), ("id", ASCENDING)]
        )
        await self.spoken.ensure_index()

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
            TRACK_PROJECTION,
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
        if classified.spoken:  # kept apart from the plays, never counted as music
            await insert_ignoring_duplicates(
                self.spoken.collection, self.spoken.documents(classified.spoken)
            )
        if not plays:
            return SegmentResult(counts)

        # Tens of ms each for a full segment: off the event loop, like the classification.
        span = await self._off_loop(self._span_to_query, plays)
        stored = StoredPlays() if span is None else await self._stored_between(*span)
        matching = await self._off_loop(select_new, plays, stored, self._record)
        new = matching.new
        counts.duplicates += matching.duplicates
        inserted: list[ExportPlay] = []
        infos: dict[str, TrackInfo] = {}
        if new:
            infos = await self._write_tracks(new)
            inserted = await self._insert(new, infos)
        # Only now: a segment retried after a MongoDB failure must match the same way.
        self._record.commit(matching)
        counts.imported = len(inserted)
        counts.blacklisted = sum(
            1 for play in inserted if self._blacklisted(infos.get(play.track_id))
        )
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
        listened: dict[str, int] = {}
        for play in plays:
            names.setdefault(play.track_id, play)
            listened[play.track_id] = listened.get(play.track_id, 0) + play.ms_played
        known = {i: info for i in names if (info := self._tracks.get(i)) is not None}
        missing = [track_id for track_id in names if track_id not in self._tracks]
        if missing:
            await insert_ignoring_duplicates(
                self.store.tracks, [_stub_track(names[track_id]) for track_id in missing]
            )
            self._tracks.update(dict.fromkeys(missing))
        pending = [track_id for track_id in names if track_id not in known]
        if pending:
            # Weighed by their listening in the first segment that queues them: enough to
            # enrich the tracks that matter most first, without an update per later segment.
            await insert_ignoring_duplicates(
                self.pending,
                [
                    {"owner": self.owner, "id": track_id, LISTENED_FIELD: listened[track_id]}
                    for track_id in pending
                ],
            )
        return known

    async def _insert(
        self, plays: Sequence[ExportPlay], infos: dict[str, TrackInfo]
    ) -> list[ExportPlay]:
        """Insert in large unordered batches; a duplicate key means already stored."""
        inserted: list[ExportPlay] = []
        rollups = self.store.rollups
        for start in range(0, len(plays), self.insert_batch):
            batch = plays[start : start + self.insert_batch]
            docs = [self._document(play, infos.get(play.track_id)) for play in batch]
            token = await rollups.begin(self.owner, min(play.played_at for play in batch))
            rejected: set[int] = set()
            try:
                try:
                    await self.store.infos.insert_many(docs, ordered=False)
                except BulkWriteError as err:
                    rejected = _duplicate_indexes(err)
                stored = [doc for i, doc in enumerate(docs) if i not in rejected]
                await rollups.set_documents(self.owner, stored, closing=token)
            except BaseException:
                rollups.abandon(token)
                raise
            inserted.extend(p for i, p in enumerate(batch) if i not in rejected)
        return inserted

    def _document(self, play: ExportPlay, info: TrackInfo | None) -> Document:
        # Your Spotify's play document: durationMs the track's length, ms_played until it is
        # known (see the module's docstring); ids unknown until enrichment are null.
        # IMPORTED_FIELD (ours) marks an imported play and keeps ms_played.
        length = info.duration_ms if info else None
        doc: Document = {
            "owner": self.owner,
            "id": play.track_id,
            "albumId": info.album_id if info else None,
            "primaryArtistId": info.artist_ids[0] if info else None,
            "artistIds": list(info.artist_ids) if info else [],
            "durationMs": play.ms_played if length is None else length,
            "played_at": play.played_at,
            IMPORTED_FIELD: play.ms_played,
        }
        if self._blacklisted(info):
            doc["blacklistedBy"] = list(BLACKLISTED_BY)
        return doc

    def _blacklisted(self, info: TrackInfo | None) -> bool:
        """Whether the primary artist of a stored track is blacklisted (unknown: no)."""
        return info is not None and info.artist_ids[0] in self.blacklist


def track_info_of(doc: Document) -> TrackInfo | None:
    """Ids and length of a stored full track; None for a stub or an incomplete one."""
    artists = tuple(a for a in doc.get("artists") or () if isinstance(a, str))
    if "scrobbler_stub" in doc or not isinstance(doc.get("album"), str) or not artists:
        return None
    return TrackInfo(doc["album"], artists, track_length(doc.get("duration_ms")))


def track_length(value: object) -> int | None:
    """A track's ``duration_ms`` if it is one (a positive integer), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


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
