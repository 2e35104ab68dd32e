"""Background enrichment of imported plays: album and artist ids, and track lengths.

Plain asyncio (no Home Assistant imports), like history_import.py. The export has no album
or artist ids; ``MetadataEnricher`` fetches each track (then each new artist) from Spotify,
a few requests a minute through the shared request gate, and writes the ids to the plays,
and the track's length to ``durationMs`` of the imported ones (history_import's rule).
Imported plays of older versions, which kept ``ms_played`` there, get the track's length
too: ``queue_older_imports`` queues their tracks once per account.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import PyMongoError

from .album_listings import AlbumListings
from .enrichment_writes import (
    ABSENT,
    BLACKLIST_FIELD,
    as_read,
    complete_play,
    oldest_instant,
    restore_staged,
)
from .history_import import (
    IMPORTED_FIELD,
    LISTENED_FIELD,
    PENDING_COLLECTION,
    STAGING_COLLECTION,
    TRACK_PROJECTION,
    TrackInfo,
    as_utc,
    insert_ignoring_duplicates,
    track_info_of,
    track_length,
)
from .payload import EARLIEST_PLAY, artist_document, parse_item
from .spotify import (
    RequestGate,
    SpotifyAuthError,
    SpotifyClient,
    SpotifyError,
    SpotifyRateLimitedError,
)
from .store import Document, ScrobbleStore

_LOGGER = logging.getLogger(__name__)

# Enrichment budget: one Spotify request per ENRICH_INTERVAL at most (20 a minute), on top of
# the gate's spacing, so a live cycle never waits more than one request behind enrichment.
ENRICH_INTERVAL: Final = 3.0
ENRICH_RETRY_DELAY: Final = 60.0  # after a Spotify or MongoDB failure
ENRICH_MONGO_ATTEMPTS: Final = 5  # MongoDB failures in a row before the enrichment stops
ENRICH_BATCH: Final = 50  # pending tracks read per step (about 2.5 min at the budget)
BATCH_TRACKS: Final = 50  # Spotify's /tracks?ids= limit (apps with extended quota)
# Resolved tracks are written to their plays in one pass over the account's plays that
# lack ids (FerretDB scans the collection for any update not by _id).
ENRICH_FLUSH_TRACKS: Final = 500
# ...or after this many Spotify requests (5 min at the budget): the plays of the most
# listened tracks get their ids within minutes, not after 500 tracks (25 min or more).
ENRICH_FLUSH_REQUESTS: Final = 100
DELETE_BATCH: Final = 50_000  # _ids per delete_many (keeps the command far below 16 MB)
# Set on the account's users document once the tracks of plays imported by older versions
# (durationMs = ms_played) are queued for the track's length (queue_older_imports).
OLDER_IMPORTS_QUEUED: Final = "import_durations_queued"  # in its ``scrobbler`` sub-document
# parse_item needs a played_at to read a track object; any instant it accepts will do.
_PLACEHOLDER_PLAYED_AT: Final = EARLIEST_PLAY.isoformat()


class MetadataEnricher:
    """Fills album and artist ids of imported plays from Spotify, a few requests a minute.

    Work comes from the ``scrobbler_import_pending`` collection (one document per account
    and track), so it survives restarts. Tracks whose full document is already stored cost
    no request. Resolved tracks are written to the plays in batches (``flush``): one pass
    over the account's plays without ids, replaced by ``_id``, per ENRICH_FLUSH_TRACKS
    tracks or ENRICH_FLUSH_REQUESTS requests, because FerretDB scans the whole collection
    for an update by track id.
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
        self._last_request = -math.inf
        self.requests = 0  # Spotify requests made by this enricher
        self.tracks_done = 0
        self.unknown_tracks = 0  # Spotify does not know them (404): ids stay null
        self.remaining: int | None = None
        self.on_progress: Callable[[], None] = lambda: None
        # Awaited before a flush changes what counted plays count (blacklists them, or gives
        # them their track's length), with the oldest one's played_at, and after every
        # flush: the statistics must follow (see ``oldest_changed``).
        self.before_changing: Callable[[datetime], Awaitable[None]] | None = None
        self.after_flush: Callable[[], Awaitable[None]] | None = None
        # Oldest played_at whose counted plays or listening time a flush changed, since the
        # consumer last reset it to None.
        self.oldest_changed: datetime | None = None
        self._resolved: dict[str, TrackInfo] = {}  # not yet written to the plays
        self._unknown: set[str] = set()
        self._retry: set[str] = set()  # resolved, but plays changed under the flush
        self._retried: set[str] = set()
        self._skipped: set[str] = set()  # left queued for the next run
        self._requests_at_flush = 0  # self.requests at the last flush
        # One request per album for development-mode apps (no batch endpoints).
        self._albums = AlbumListings(store, self.pending, owner, self._lookup, self._store_tracks)
        self._artists_todo: set[str] = set()  # stored as stubs; full data still to fetch
        self._unknown_artists: set[str] = set()  # Spotify had none: they stay stubs

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
                _LOGGER.warning("Metadata enrichment stopped: Spotify needs re-authorization")
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

    async def queue_older_imports(self) -> int:
        """Queue, once per account, the tracks of imported plays that already have ids.

        Older versions kept ``ms_played`` in ``durationMs`` and never revisited an enriched
        play; their tracks are stored in full, so the queue gives those plays the track's
        length without a Spotify request. One scan of the account's imported plays, then a
        flag on its users document. Returns how many tracks were queued.
        """
        user = await self.store.users.find_one({"_id": self.owner}, {"_id": 0, "scrobbler": 1})
        ours = user.get("scrobbler") if user is not None else None
        if user is None or (isinstance(ours, dict) and ours.get(OLDER_IMPORTS_QUEUED) is True):
            return 0
        match = {
            "owner": self.owner,
            IMPORTED_FIELD: {"$exists": True},
            "primaryArtistId": {"$ne": None},
        }
        cursor = await self.store.infos.aggregate([{"$match": match}, {"$group": {"_id": "$id"}}])
        ids = [row["_id"] async for row in cursor if isinstance(row.get("_id"), str)]
        await insert_ignoring_duplicates(
            self.pending, [{"owner": self.owner, "id": track_id} for track_id in ids]
        )
        await self.store.users.update_one(
            {"_id": self.owner}, {"$set": {f"scrobbler.{OLDER_IMPORTS_QUEUED}": True}}
        )
        return len(ids)

    @property
    def tracks_from_albums(self) -> int:
        """Tracks resolved from an album's listing (no request of their own)."""
        return self._albums.resolved_tracks

    async def count_pending(self) -> int:
        """Tracks waiting for enrichment."""
        self.remaining = await self.pending.count_documents({"owner": self.owner})
        return self.remaining

    async def step(self) -> bool:
        """Resolve the next pending tracks (flushing when enough are); False when done.

        A failed Spotify request propagates (for the caller's backoff) only once what the
        step fetched before it is stored and resolved: nothing is requested twice.
        """
        await restore_staged(self.store, self.owner)  # a flush cut short by a crash or unload
        await self._fetch_artists()  # left over by a failed request
        query: Document = {"owner": self.owner}
        if self._resolved or self._unknown or self._skipped:
            query["id"] = {"$nin": [*self._resolved, *self._unknown, *self._skipped]}
        # The most listened first: an import is useful long before it is fully enriched.
        # Tracks queued without a weight (older versions, re-queued ones) come last.
        cursor = (
            self.pending.find(query, {"_id": 0, "id": 1})
            .sort([(LISTENED_FIELD, DESCENDING), ("id", ASCENDING)])
            .limit(ENRICH_BATCH)
        )
        ids = [doc["id"] async for doc in cursor if isinstance(doc.get("id"), str)]
        if not ids:
            if self._resolved or self._unknown:
                await self.flush()
                return True
            self.remaining = len(self._skipped)
            self.on_progress()
            return False
        stored = await self._stored_infos(ids)
        self._resolved.update(stored)
        # Their artists may be stubs: a failed lookup before a restart left them so.
        await self._want_artists(a for info in stored.values() for a in info.artist_ids)
        unresolved = [track_id for track_id in ids if track_id not in self._resolved]
        stubs: dict[str, dict[str, Any]] = {}
        if unresolved and self.client.batch_support.allowed is not True:
            stubs = await self._albums.stubs_of(unresolved)
            settled = {*self._resolved, *self._unknown, *self._skipped}
            self._resolved.update(await self._albums.by_names(stubs, settled))
            unresolved = [track_id for track_id in unresolved if track_id not in self._resolved]
        if unresolved:
            await self._fetch_tracks(unresolved, stubs)
        await self._fetch_artists()
        # Artists before the flush: once their tracks leave the queue, nothing brings the
        # stubs back here after a restart.
        if (
            len(self._resolved) + len(self._unknown) >= ENRICH_FLUSH_TRACKS
            or self.requests - self._requests_at_flush >= ENRICH_FLUSH_REQUESTS
        ):
            await self.flush()
        self.on_progress()
        return True

    async def flush(self) -> None:
        """Write the resolved tracks' ids to their plays, then drop them from the queue."""
        if self._resolved:
            oldest = await self._write_ids()
            if oldest is not None:
                previous = self.oldest_changed
                self.oldest_changed = oldest if previous is None else min(previous, oldest)
        done = [t for t in (*self._resolved, *self._unknown) if t not in self._retry]
        for start in range(0, len(done), ENRICH_FLUSH_TRACKS):
            chunk = done[start : start + ENRICH_FLUSH_TRACKS]
            await self.pending.delete_many({"owner": self.owner, "id": {"$in": chunk}})
        # Raced a second time in this run: left queued for the next run, skipped till then.
        self._skipped |= self._retry & self._retried
        self._retried |= self._retry
        self.tracks_done += len(self._resolved.keys() - self._retry)
        self.unknown_tracks += len(self._unknown)
        self._requests_at_flush = self.requests
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - len(done))
        self._resolved.clear()
        self._unknown.clear()
        self._retry.clear()
        if self.after_flush is not None:
            await self.after_flush()

    async def _write_ids(self) -> datetime | None:
        """Give the resolved tracks' plays their ids and lengths; the oldest play changed.

        Plays without ids get them (and the blacklist); imported plays (ours) get their
        track's length in ``durationMs``, also those enriched by older versions. Only plays
        that change are rewritten, so a flush repeated over the same plays writes nothing.
        FerretDB scans the whole collection for every update, even by _id, so the plays
        are replaced instead: copied (with their ids) to a staging collection, deleted by
        _id (only those copied: a play stored meanwhile stays), and inserted again from it.
        A flush interrupted anywhere is completed from the staging collection by the next
        step (or before an import); nothing is lost.
        """
        blacklist = set(self._blacklist())
        match = {
            "owner": self.owner,
            "id": {"$in": list(self._resolved)},
            "$or": [{"primaryArtistId": None}, {IMPORTED_FIELD: {"$exists": True}}],
        }
        replaced: list[Document] = []
        # _ids by the blacklistedBy they were read with: a play blacklisted or restored by
        # someone else meanwhile is not deleted, so its copy cannot revert that change.
        by_read: dict[str, tuple[Any, list[Document]]] = {}
        oldest: datetime | None = None
        async for doc in self.store.infos.find(match, batch_size=10_000):
            info = self._resolved.get(doc.get("id"))  # type: ignore[arg-type]
            if info is None:
                continue
            before = doc.get(BLACKLIST_FIELD, ABSENT)
            changed, counts_changed = complete_play(doc, info, blacklist)
            if not changed:
                continue
            unchanged = as_read(before)
            by_read.setdefault(repr(unchanged), (unchanged, []))[1].append(doc)
            replaced.append(doc)
            if counts_changed and isinstance(played_at := doc.get("played_at"), datetime):
                played_at = as_utc(played_at)
                oldest = played_at if oldest is None else min(oldest, played_at)
        if not replaced:
            return None
        if oldest is not None and self.before_changing is not None:
            await self.before_changing(oldest)
        rollups = self.store.rollups
        token = await rollups.begin(self.owner, oldest_instant(replaced))
        try:
            await insert_ignoring_duplicates(self.staging, replaced)
            complete = await self._delete_read(by_read.values())
            await self._finish_staged()
            if complete:
                await rollups.set_documents(self.owner, replaced, closing=token)
            else:
                # Which copies went in is not known here: rebuilt from infos.
                await rollups.mark_stale(self.owner, oldest_instant(replaced))
                await rollups.end(self.owner, token)
        except BaseException:
            rollups.abandon(token)
            raise
        return oldest

    async def _delete_read(self, by_read: Iterable[tuple[Any, list[Document]]]) -> bool:
        """Delete the staged plays still as they were read; whether all of them were."""
        complete = True
        for unchanged, docs in by_read:
            deleted = 0
            for start in range(0, len(docs), DELETE_BATCH):
                chunk = [doc["_id"] for doc in docs[start : start + DELETE_BATCH]]
                result = await self.store.infos.delete_many(
                    {"_id": {"$in": chunk}, BLACKLIST_FIELD: unchanged}
                )
                deleted += result.deleted_count
            if deleted < len(docs):
                # Changed meanwhile: their copies are duplicates and they keep what they
                # had. Their tracks stay queued, for a later flush of this run (once).
                self._retry.update(doc["id"] for doc in docs)
                complete = False
        return complete

    async def _finish_staged(self) -> None:
        """Insert this flush's staged plays again (``restore_staged``)."""
        await restore_staged(self.store, self.owner, interrupted=False)

    async def _stored_infos(self, ids: Sequence[str]) -> dict[str, TrackInfo]:
        found: dict[str, TrackInfo] = {}
        cursor = self.store.tracks.find({"id": {"$in": list(ids)}}, TRACK_PROJECTION)
        async for doc in cursor:
            if (info := track_info_of(doc)) is not None:
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

    async def _want_artists(self, artist_ids: Iterable[str]) -> None:
        """Queue those of ``artist_ids`` not stored in full yet (one request each, later)."""
        wanted = set(artist_ids) - self._artists_todo - self._unknown_artists
        if wanted:
            self._artists_todo |= wanted - await self.store.enriched_artist_ids(wanted)

    async def _fetch_artists(self) -> None:
        """Fetch the queued artists, one request each; what a failure interrupts is kept."""
        fetched: dict[str, Document] = {}
        answered: list[str] = []
        try:
            for artist_id in sorted(self._artists_todo):
                for obj in await self._lookup("artists", [artist_id]):
                    if obj.get("id") == artist_id:
                        fetched[artist_id] = artist_document(obj)
                answered.append(artist_id)
        except SpotifyError:
            await self._keep_artists(fetched, answered)
            raise
        await self._keep_artists(fetched, answered)

    async def _keep_artists(self, fetched: dict[str, Document], answered: list[str]) -> None:
        if fetched:
            await self.store.artists.delete_many(
                {"id": {"$in": list(fetched)}, "genres": {"$exists": False}}
            )
            await insert_ignoring_duplicates(self.store.artists, list(fetched.values()))
        self._artists_todo.difference_update(answered)
        self._unknown_artists.update(i for i in answered if i not in fetched)

    async def _fetch_tracks(self, ids: Sequence[str], stubs: dict[str, dict[str, Any]]) -> None:
        """Full tracks from Spotify, stored with their albums, artists queued.

        One request per track (per 50 with batch endpoints). When a request fails, the
        tracks fetched before it are stored and resolved all the same, then the error
        propagates. Tracks Spotify answered for without an object are unknown to it.
        """
        objects: list[dict[str, Any]] = []
        answered: list[str] = []
        pending = list(ids)
        try:
            while pending:
                # One id per request unless the batch endpoint is known to work: a refused
                # batch call must not turn into a burst of single lookups beyond the budget.
                size = BATCH_TRACKS if self.client.batch_support.allowed else 1
                chunk, pending = pending[:size], pending[size:]
                chunk = [t for t in chunk if t not in self._resolved]  # an album's already
                if not chunk:
                    continue
                found = await self._lookup("tracks", chunk)
                objects.extend(found)
                answered.extend(chunk)
                if size == 1:
                    taken = {*self._resolved, *self._unknown, *self._skipped, *answered}
                    self._resolved.update(await self._albums.mates_of(found, stubs, taken))
        except SpotifyError, PyMongoError:
            await self._keep_tracks(objects, answered)
            raise
        await self._keep_tracks(objects, answered)

    async def _keep_tracks(self, objects: list[dict[str, Any]], answered: list[str]) -> None:
        infos = await self._store_tracks(objects, set(answered))
        self._resolved.update(infos)
        self._unknown.update(track_id for track_id in answered if track_id not in infos)

    async def _store_tracks(
        self, objects: Sequence[dict[str, Any]], ids: set[str]
    ) -> dict[str, TrackInfo]:
        """Store fetched tracks, their albums and stub artists (full ones are queued).

        One write per collection, inserts and deletes only (FerretDB scans the collection
        per update): new documents are inserted, the import's stub tracks are deleted and
        inserted in full.
        """
        blacklist = set(self._blacklist())
        tracks: list[Document] = []
        albums: list[Document] = []
        stubs: dict[str, Document] = {}
        infos: dict[str, TrackInfo] = {}
        for obj in objects:
            parsed = parse_item({"track": obj, "played_at": _PLACEHOLDER_PLAYED_AT}, blacklist)
            if parsed is None or parsed.play.track_id not in ids or not parsed.play.artist_ids:
                continue
            tracks.append(parsed.track)
            if parsed.album is not None:
                albums.append(parsed.album)
            for artist in parsed.artists:
                stubs.setdefault(artist["id"], artist)
            play = parsed.play
            infos[play.track_id] = TrackInfo(
                play.album_id, play.artist_ids, track_length(play.duration_ms)
            )
        if not tracks:
            return infos
        enriched = await self.store.enriched_artist_ids(stubs)
        await insert_ignoring_duplicates(self.store.albums, albums)
        await insert_ignoring_duplicates(
            self.store.artists, [doc for i, doc in stubs.items() if i not in enriched]
        )
        await self.store.tracks.delete_many(
            {"id": {"$in": [doc["id"] for doc in tracks]}, "scrobbler_stub": {"$exists": True}}
        )
        await insert_ignoring_duplicates(self.store.tracks, tracks)
        self._artists_todo.update(i for i in stubs if i not in enriched)
        return infos
