"""MongoDB storage (PyMongo's AsyncMongoClient) in Your Spotify's schema.

Collections: users, infos (plays), tracks, albums, artists. Every write is idempotent:
metadata is upserted, plays are protected by a unique (owner, played_at) index and
``lastTimestamp`` only moves forward, so a cycle interrupted anywhere can be re-run.
No Spotify token is ever written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from .models import WRITER_FIELD, Play, to_unix_ms
from .rollups import RollupStore
from .your_spotify import (
    FORMAT,
    missing_user_fields,
    new_user,
    prepare_for_your_spotify,
    upgrade_plays,
)

_LOGGER = logging.getLogger(__name__)

DUPLICATE_KEY: Final = 11000
NOT_BLACKLISTED: Final = {"blacklistedBy": {"$exists": False}}
# An imported play's own field: the export's ms_played (its played_at is the export's ts).
IMPORTED_MS_FIELD: Final = "scrobbler_ms_played"
# Marks a track document the history import made from the export's names alone.
STUB_FIELD: Final = "scrobbler_stub"

Document = dict[str, Any]

# The seed's indexes plus the ones our queries need; (owner, played_at) unique makes
# play inserts idempotent and serves the window, sensor and "last play" queries.
INDEXES: Final[dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]]] = {
    "infos": [
        ([("owner", ASCENDING), ("played_at", ASCENDING)], {"unique": True}),
        ([("id", ASCENDING)], {}),
        ([("albumId", ASCENDING)], {}),
        ([("primaryArtistId", ASCENDING)], {}),
        ([("played_at", ASCENDING)], {}),
    ],
    "tracks": [([("id", ASCENDING)], {"unique": True})],
    # By name too: the enrichment finds the albums an export's names point to.
    "albums": [([("id", ASCENDING)], {"unique": True}), ([("name", ASCENDING)], {})],
    "artists": [([("id", ASCENDING)], {"unique": True})],
    "users": [([("spotifyId", ASCENDING)], {"unique": True})],
}


@dataclass(slots=True)
class Account:
    """What the store keeps about one Spotify account (the ``users`` document)."""

    owner: ObjectId
    spotify_id: str
    last_timestamp: int  # Unix ms of the newest play seen, 0 before the first cycle
    first_listened_at: datetime | None
    counters: dict[str, int] = field(default_factory=dict)
    # Unix ms of an import's newest play near the live window: the duplicate check looks up
    # to it (moving the cursor instead would skip plays no cycle has read yet).
    imported_until: int = 0

    @property
    def stored_until(self) -> int:
        """Unix ms up to which plays may be stored already."""
        return max(self.last_timestamp, self.imported_until)


@dataclass(slots=True, frozen=True)
class IndexReport:
    """Why the unique (owner, played_at) index of ``infos`` could not be built, if it could not."""

    duplicate_plays: int = 0  # play documents sharing their (owner, played_at) with another
    foreign_index: str | None = None  # another program's non-unique index on those keys

    @property
    def blocked(self) -> bool:
        """Whether the unique index is missing."""
        return bool(self.duplicate_plays) or self.foreign_index is not None


@dataclass(slots=True, frozen=True)
class WriteResult:
    """What one cycle's writes changed."""

    inserted_plays: tuple[Play, ...]  # in MongoDB because of this write or an earlier one
    new_tracks: int
    new_albums: int
    new_artists: int
    # Of them, refused by the unique index yet stored with that track: a retried write, or
    # a write the caller did not know about (a crash after it). Totals must be re-counted.
    resolved: int = 0
    # Of those, the ones another scrobbler wrote (not this store's writer).
    foreign: int = 0


class ScrobbleStore:
    """All MongoDB I/O of the integration."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        metadata_lock: asyncio.Lock | None = None,
        writer: str | None = None,
    ) -> None:
        """Use ``db`` (the client's lifetime is managed by the caller).

        Stores that may write the same tracks, albums and artists (accounts of one Home
        Assistant) share ``metadata_lock``: their upserts never race on a new document's
        unique id. FerretDB 1.24 answers the loser of such a race in a way PyMongo cannot
        read (KeyError 'nModified') and, retried at once, can stop answering altogether.
        """
        self.db = db
        self.writer = writer  # written into our plays (WRITER_FIELD)
        self._metadata_lock = metadata_lock or asyncio.Lock()
        self.infos = db["infos"]
        self.tracks = db["tracks"]
        self.albums = db["albums"]
        self.artists = db["artists"]
        self.users = db["users"]
        self.rollups = RollupStore(db)

    async def ensure_indexes(self) -> IndexReport:
        """Create the indexes (a no-op when they exist).

        Two things can keep the unique (owner, played_at) index, which makes writes
        idempotent, from being built: play documents sharing an (owner, played_at), left by
        older importers, or a non-unique index on those keys that another program created
        (never dropped here: it is not ours). Scrobbling goes on without it (the duplicate
        check before each write still applies); the caller tells the user how to clean up.
        """
        report = IndexReport()
        for collection, specs in INDEXES.items():
            for keys, options in specs:
                try:
                    await self.db[collection].create_index(keys, **options)
                except OperationFailure:
                    # MongoDB says 11000 or 85, FerretDB an internal "UNIQUE constraint" error.
                    if not options.get("unique") or collection != "infos":
                        raise
                    report = IndexReport(
                        await self.duplicate_play_count(), await self._foreign_index(keys)
                    )
                    if not report.blocked:
                        raise
        self.rollups.trusted = not report.blocked
        return report

    async def _foreign_index(self, keys: Sequence[tuple[str, int]]) -> str | None:
        """The name of a non-unique ``infos`` index on exactly ``keys``, if one exists."""
        cursor = await self.infos.list_indexes()
        async for index in cursor:
            if list(index["key"].items()) == list(keys) and not index.get("unique"):
                return str(index["name"])
        return None

    async def duplicate_play_count(self) -> int:
        """Play documents whose (owner, played_at) another document has too (counted in MongoDB)."""
        cursor = await self.infos.aggregate(
            [
                {"$group": {"_id": {"o": "$owner", "t": "$played_at"}, "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
                {"$group": {"_id": None, "docs": {"$sum": "$n"}}},
            ],
            allowDiskUse=True,  # a whole-collection $group; MongoDB < 6 caps memory at 100 MB
        )
        rows = await cursor.to_list()
        return int(rows[0]["docs"]) if rows else 0

    async def check_writable(self) -> None:
        """Prove the credentials may write (raises OperationFailure otherwise)."""
        probe = self.db["scrobbler_write_check"]
        await probe.replace_one({"_id": "probe"}, {"_id": "probe"}, upsert=True)
        await probe.drop()

    async def load_account(
        self, spotify_id: str, username: str, blacklisted_artists: Sequence[str]
    ) -> Account:
        """Find or create the ``users`` document of a Spotify account.

        An existing document is Your Spotify's as much as ours: its username, settings and
        tokens are left as they are (``blacklisted_artists`` only seeds a new one).
        """
        doc = await self.users.find_one({"spotifyId": spotify_id})
        if doc is None:
            await prepare_for_your_spotify(self.db)
            first = await self.users.count_documents({}, limit=1) == 0
            with contextlib.suppress(DuplicateKeyError):  # another setup created it
                await self.users.insert_one(
                    new_user(spotify_id, username, blacklisted_artists, admin=first)
                )
            doc = await self.users.find_one({"spotifyId": spotify_id})
        assert doc is not None  # found or just inserted  # noqa: S101
        if doc.get("scrobbler", {}).get("format", 1) < FORMAT:
            await upgrade_plays(self.db, doc["_id"])
            await self.users.update_one(
                {"_id": doc["_id"]},
                {"$set": {**missing_user_fields(doc), "scrobbler.format": FORMAT}},
            )
        await self.rollups.keep_day(doc["_id"], datetime.now(UTC))  # live writes go there
        ours = doc.get("scrobbler", {})
        stored_counters = ours.get("counters", {})
        imported_until = ours.get("importedUntil")
        return Account(
            owner=doc["_id"],
            spotify_id=spotify_id,
            last_timestamp=int(doc.get("lastTimestamp") or 0),
            first_listened_at=doc.get("firstListenedAt"),
            counters={k: int(v) for k, v in stored_counters.items() if isinstance(v, int)},
            imported_until=imported_until if isinstance(imported_until, int) else 0,
        )

    async def plays_between(
        self, owner: ObjectId, start: datetime, end: datetime
    ) -> list[tuple[str, datetime, int | None]]:
        """(track id, played_at, ms played if imported) of the stored plays in [start, end]."""
        cursor = self.infos.find(
            {"owner": owner, "played_at": {"$gte": start, "$lte": end}},
            {"_id": 0, "id": 1, "played_at": 1, IMPORTED_MS_FIELD: 1},
        )
        found: list[tuple[str, datetime, int | None]] = []
        async for doc in cursor:
            track_id, played_at = doc.get("id"), doc.get("played_at")
            if isinstance(track_id, str) and isinstance(played_at, datetime):
                listened = doc.get(IMPORTED_MS_FIELD)
                found.append((track_id, played_at, listened if isinstance(listened, int) else None))
            else:
                _LOGGER.warning("Skipping a malformed play document in MongoDB: %r", doc)
        return found

    async def enriched_artist_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` whose artist document already has Spotify's full data."""
        cursor = self.artists.find(
            {"id": {"$in": list(ids)}, "genres": {"$exists": True}}, {"_id": 0, "id": 1}
        )
        return {doc["id"] async for doc in cursor}

    async def store_artists(self, artists: Sequence[Document]) -> None:
        """Store full artist documents (Spotify's data replaces a stub's)."""
        async with self._metadata_lock:
            await _upsert_by_id(self.artists, [(doc, True) for doc in artists])

    async def write_cycle(
        self,
        account: Account,
        *,
        tracks: Sequence[Document],
        albums: Sequence[Document],
        artists: Sequence[Document],
        artist_stubs: Sequence[Document],
        plays: Sequence[Play],
        newest_played_at: datetime,
        recovered: Sequence[Play] = (),
    ) -> WriteResult:
        """Write one cycle in an order that cannot lose a play.

        Metadata first, then plays, then ``lastTimestamp``/``firstListenedAt``: a crash
        between two steps leaves plays that the next cycle's lookback finds again.
        ``recovered`` are plays an earlier, unacknowledged write stored already: they are
        not inserted again but count as this cycle's (they were never announced).
        """
        async with self._metadata_lock:
            # The import's stub tracks are replaced by the full track the payload carries.
            new_tracks = await _upsert_by_id(
                self.tracks, [(doc, False) for doc in tracks], upgrade_stubs=True
            )
            new_albums = await _upsert_by_id(self.albums, [(doc, False) for doc in albums])
            # Enriched artists replace stubs; stubs (enrichment failed) never replace anything.
            new_artists = await _upsert_by_id(
                self.artists,
                [(doc, True) for doc in artists] + [(doc, False) for doc in artist_stubs],
            )
        # With their rollup: a ranking or a recount sees both or neither; a crash between
        # them leaves the change open (rebuilt).
        async with self.rollups.lock:
            inserted, resolved, foreign, stored = await self._insert_with_rollup(
                account.owner, plays, recovered
            )

        counters = {
            "plays": len(inserted),
            "tracks": new_tracks,
            "albums": new_albums,
            "artists": new_artists,
        }
        update: Document = {
            "$inc": {f"scrobbler.counters.{k}": v for k, v in counters.items()},
            "$max": {"lastTimestamp": to_unix_ms(newest_played_at)},
        }
        if stored:
            update["$min"] = {"firstListenedAt": stored[0].played_at}
        await self.users.update_one({"_id": account.owner}, update)

        account.last_timestamp = max(account.last_timestamp, to_unix_ms(newest_played_at))
        if stored:
            first = stored[0].played_at
            if account.first_listened_at is None or first < account.first_listened_at:
                account.first_listened_at = first
        for key, value in counters.items():
            account.counters[key] = account.counters.get(key, 0) + value
        return WriteResult(tuple(stored), new_tracks, new_albums, new_artists, resolved, foreign)

    async def _insert_with_rollup(
        self, owner: ObjectId, plays: Sequence[Play], recovered: Sequence[Play]
    ) -> tuple[list[Play], int, int, list[Play]]:
        """``_insert_plays`` as a rollup change (lock held); also the stored plays, sorted."""
        if not plays and not recovered:
            return [], 0, 0, []
        token = await self.rollups.begin(owner, min(p.played_at for p in (*plays, *recovered)))
        try:
            inserted, resolved, foreign = await self._insert_plays(owner, plays)
            stored = sorted([*inserted, *recovered], key=lambda play: play.played_at)
            await self.rollups.add_plays(owner, stored, token)
        except BaseException:
            self.rollups.abandon(token)
            raise
        return inserted, resolved, foreign, stored

    async def _insert_plays(
        self, owner: ObjectId, plays: Sequence[Play]
    ) -> tuple[list[Play], int, int]:
        """Insert plays: (those in MongoDB now, refused ones among them, others' among those).

        A play refused by the unique index is ours when the document holding its instant is
        the same track: the duplicate check before the write found none, so it was written
        by this very request (a write retried after its reply was lost), by a write of ours
        before a crash, or by another scrobbler of the account a moment ago (its document
        lacks our writer tag) — in MongoDB now, and the caller re-counts the totals.
        """
        if not plays:
            return [], 0, 0
        docs = [play.to_document(owner, self.writer) for play in plays]
        try:
            await self.infos.insert_many(docs, ordered=False)
        except BulkWriteError as err:
            errors = err.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            rejected = {error["index"] for error in errors}
            present = await self.stored_at(owner, [plays[index].played_at for index in rejected])
            kept = [
                play
                for index, play in enumerate(plays)
                if index not in rejected or (play.track_id, play.played_at) in present
            ]
            if lost := len(plays) - len(kept):
                # Another track's play holds the same millisecond: Your Spotify's schema
                # allows one play per instant, so this one cannot be stored.
                _LOGGER.warning(
                    "%s plays collide with another track's play at the same instant", lost
                )
            foreign = sum(
                1
                for index in rejected
                if (key := (plays[index].track_id, plays[index].played_at)) in present
                and present[key] != self.writer
            )
            return kept, len(kept) - (len(plays) - len(rejected)), foreign
        return list(plays), 0, 0

    async def stored_at(
        self, owner: ObjectId, instants: Sequence[datetime]
    ) -> dict[tuple[str, datetime], str | None]:
        """(track id, played_at) -> writer of the account's plays stored at these instants.

        The writer is None when the document names none (Your Spotify, older versions).
        """
        if not instants:
            return {}
        cursor = self.infos.find(
            {"owner": owner, "played_at": {"$in": list(instants)}},
            {"_id": 0, "id": 1, "played_at": 1, WRITER_FIELD: 1},
        )
        return {
            (doc["id"], _utc(doc["played_at"])): (
                writer if isinstance(writer := doc.get(WRITER_FIELD), str) else None
            )
            async for doc in cursor
            if isinstance(doc.get("id"), str) and isinstance(doc.get("played_at"), datetime)
        }

    async def totals(self, owner: ObjectId) -> int:
        """Counted (not blacklisted) plays of an account; the rollups are checked against it."""
        writes = self.rollups.writes
        counted = await self.infos.count_documents({"owner": owner, **NOT_BLACKLISTED})
        await self.rollups.agrees_with(owner, counted, writes)
        return counted

    async def day_totals(self, owner: ObjectId, start: datetime, end: datetime) -> tuple[int, int]:
        """(plays, listened ms) of counted plays in [start, end)."""
        match = {"owner": owner, "played_at": {"$gte": start, "$lt": end}, **NOT_BLACKLISTED}
        # One accumulator per $group: FerretDB 1.24 computes only the first of several.
        cursor = await self.infos.aggregate(
            [{"$match": match}, {"$group": {"_id": None, "ms": {"$sum": "$durationMs"}}}]
        )
        rows = await cursor.to_list()
        listened_ms = int(rows[0]["ms"]) if rows else 0
        return await self.infos.count_documents(match), listened_ms

    async def recent_plays(self, owner: ObjectId, count: int) -> list[Document]:
        """The newest ``count`` plays of an account, newest first (blacklisted included)."""
        cursor = self.infos.find({"owner": owner}, {"_id": 0}).sort("played_at", DESCENDING)
        return [doc async for doc in cursor.limit(count)]

    async def latest_play(self, owner: ObjectId) -> Document | None:
        """The newest counted play document of an account."""
        return await self.infos.find_one(
            {"owner": owner, **NOT_BLACKLISTED}, sort=[("played_at", DESCENDING)]
        )

    async def artist_ids_by_name(self, names: Sequence[str]) -> dict[str, str]:
        """Spotify ids of stored artists by case-folded name (first match per name)."""
        query = {"$or": [{"name": {"$regex": f"^{re.escape(n)}$", "$options": "i"}} for n in names]}
        found: dict[str, str] = {}
        async for doc in self.artists.find(query, {"_id": 0, "id": 1, "name": 1}).limit(100):
            found.setdefault(str(doc["name"]).casefold(), doc["id"])
        return found

    async def metadata(
        self, track_ids: Iterable[str], album_ids: Iterable[str], artist_ids: Iterable[str]
    ) -> tuple[dict[str, Document], dict[str, Document], dict[str, Document]]:
        """Track, album and artist documents by id (for a handful of plays)."""
        found: list[dict[str, Document]] = []
        for collection, ids in (
            (self.tracks, track_ids),
            (self.albums, album_ids),
            (self.artists, artist_ids),
        ):
            wanted = list(dict.fromkeys(ids))
            docs = collection.find({"id": {"$in": wanted}}, {"_id": 0})
            by_id = {doc["id"]: doc async for doc in docs if isinstance(doc.get("id"), str)}
            found.append(by_id if wanted else {})
        return found[0], found[1], found[2]


async def _upsert_by_id(
    collection: AsyncCollection[Document],
    docs: Sequence[tuple[Document, bool]],
    *,
    upgrade_stubs: bool = False,
) -> int:
    """Upsert (document, overwrite) pairs keyed by Spotify id; returns how many were new.

    Overwriting sets the fields; otherwise an existing document is left untouched, except
    that ``upgrade_stubs`` replaces the history import's stub documents (one round trip).
    """
    if not docs:
        return 0
    requests: list[UpdateOne] = []
    for doc, overwrite in docs:
        fields = _without_id(doc)
        if upgrade_stubs:
            requests.append(
                UpdateOne(
                    {"id": doc["id"], STUB_FIELD: {"$exists": True}},
                    {"$set": fields, "$unset": {STUB_FIELD: ""}},
                )
            )
        requests.append(
            UpdateOne(
                {"id": doc["id"]}, {"$set" if overwrite else "$setOnInsert": fields}, upsert=True
            )
        )
    try:
        result = await collection.bulk_write(requests, ordered=False)
    except BulkWriteError as err:  # pragma: no cover -- no test server answers this way
        # Another program upserting the same new track at once: one insert loses the race
        # on the unique id index. The document exists then, so the retry just matches it.
        # MongoDB >= 4.2 retries such an upsert itself (SERVER-37124); older ones report it.
        errors = err.details.get("writeErrors", [])
        if not errors or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        retry = [requests[error["index"]] for error in errors]
        await collection.bulk_write(retry, ordered=False)
        return int(err.details.get("nUpserted", 0))
    return int(result.upserted_count)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _without_id(doc: Mapping[str, Any]) -> Document:
    return {key: value for key, value in doc.items() if key not in {"_id", "id"}}
