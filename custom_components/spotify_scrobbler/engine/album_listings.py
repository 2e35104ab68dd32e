"""Enrichment an album at a time: one ``GET /albums/{id}`` resolves its queued tracks.

Plain asyncio and PyMongo (no Home Assistant). Development-mode apps get one object per
request; an album's listing names up to 50 of its tracks with their ids, artists and
lengths. Two ways to an album worth asking for:

- by the export's names: a queued track's stub names an album and artist, and exactly the
  albums stored under that name with an artist of that name are candidates (no request
  to find them);
- by a fetched track: its album, when another queued track's stub names the same album.

Either way only the listing's track ids resolve a track (``album_mates``): a name that
matches the wrong album resolves nothing, and that track gets its own request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from .album_mates import STUB_FIELD, album_of, export_names, listed_tracks
from .history_import import TrackInfo
from .store import Document, ScrobbleStore

type Lookup = Callable[[str, Sequence[str]], Awaitable[list[dict[str, Any]]]]
type StoreTracks = Callable[[Sequence[dict[str, Any]], set[str]], Awaitable[dict[str, TrackInfo]]]


class AlbumListings:
    """The album requests of one enrichment run, and what they resolved."""

    def __init__(
        self,
        store: ScrobbleStore,
        pending: AsyncCollection[Document],
        owner: ObjectId,
        lookup: Lookup,
        store_tracks: StoreTracks,
    ) -> None:
        """Use the enricher's request (``lookup``) and track writes (``store_tracks``)."""
        self._store = store
        self._pending = pending
        self._owner = owner
        self._lookup = lookup
        self._store_tracks = store_tracks
        self._asked: set[str] = set()  # albums whose listing was requested in this run
        self.resolved_tracks = 0  # tracks resolved from a listing

    async def stubs_of(self, track_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The export's names of these queued tracks, where their documents are stubs."""
        return {
            doc["id"]: doc[STUB_FIELD]
            async for doc in self._store.tracks.find(
                {"id": {"$in": list(track_ids)}, STUB_FIELD: {"$exists": True}},
                {"_id": 0, "id": 1, STUB_FIELD: 1},
            )
            if isinstance(doc.get(STUB_FIELD), dict)
        }

    async def by_names(
        self, stubs: Mapping[str, Mapping[str, Any]], resolved: Collection[str]
    ) -> dict[str, TrackInfo]:
        """Resolve what the stored albums the export's names point to list, one request each."""
        names = {s.get("album_name") for s in stubs.values()} - {None}
        if not names:
            return {}
        albums = [
            doc
            async for doc in self._store.albums.find(
                {"name": {"$in": list(names)}}, {"_id": 0, "id": 1, "name": 1, "artists": 1}
            )
        ]
        artist_ids = {a for album in albums for a in _strings(album.get("artists"))}
        artist_names = {
            doc["id"]: doc.get("name")
            async for doc in self._store.artists.find(
                {"id": {"$in": list(artist_ids)}}, {"_id": 0, "id": 1, "name": 1}
            )
        }
        found: dict[str, TrackInfo] = {}
        for track_id, stub in stubs.items():
            for album in albums:
                if track_id in resolved or track_id in found:
                    break
                artists = {artist_names.get(a) for a in _strings(album.get("artists"))}
                if album.get("name") == stub.get("album_name") and stub.get("artist_name") in (
                    artists
                ):
                    found |= await self._listing(album["id"], {*resolved, *found})
        return found

    async def mates_of(
        self,
        tracks: Iterable[dict[str, Any]],
        stubs: Mapping[str, Mapping[str, Any]],
        resolved: Collection[str],
    ) -> dict[str, TrackInfo]:
        """Resolve the queued tracks listed on these fetched tracks' albums.

        Asked only when another track of ``stubs`` (the step's) names the same album and
        artist; tracks further down the queue find the album by their names in their step.
        """
        found: dict[str, TrackInfo] = {}
        for track in tracks:
            album, names = album_of(track), export_names(track)
            if album is None or names is None:
                continue
            album_name, artist_names = names
            if any(
                other != track.get("id")
                and other not in resolved
                and other not in found
                and stub.get("album_name") == album_name
                and stub.get("artist_name") in artist_names
                for other, stub in stubs.items()
            ):
                found |= await self._listing(album["id"], {*resolved, *found})
        return found

    async def _listing(self, album_id: str, resolved: Collection[str]) -> dict[str, TrackInfo]:
        """Request the album once; resolve its listed tracks that are queued."""
        if album_id in self._asked:
            return {}
        listed = [t for obj in await self._lookup("albums", [album_id]) for t in listed_tracks(obj)]
        self._asked.add(album_id)  # answered: a failed request may be made again
        wanted = [t["id"] for t in listed if t["id"] not in resolved]
        cursor = self._pending.find({"owner": self._owner, "id": {"$in": wanted}}, {"id": 1})
        queued = {doc["id"] async for doc in cursor}
        infos = await self._store_tracks(listed, queued)
        self.resolved_tracks += len(infos)
        return infos


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
