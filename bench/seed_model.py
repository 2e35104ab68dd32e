"""A model of the seed's scrobbling loop (Your Spotify's looper.ts + dbTools.ts).

It follows ../shared/seed/your-spotify-scrobbling-analysis.md step by step, with the same
Spotify requests and the same MongoDB round trips, written with PyMongo instead of Mongoose:

* ``recently-played?after=<lastTimestamp - 2 h>`` without ``limit`` (Spotify's default page of
  20), following ``next``; ``lastTimestamp`` becomes the iteration's timestamp (the public
  seed source takes ``Date.now()`` right after fetching; here: the fake's clock). No item: the
  cycle ends without any write.
* getTracksAlbumsArtists on every item of the window: find stored tracks (``id $in``); if some
  are missing, ``GET /tracks?ids=`` (50 a request, duplicates kept as the seed keeps them),
  then find stored albums and artists of those tracks, ``GET /albums?ids=`` (20) and
  ``GET /artists?ids=`` (50) for the missing ones.
* one getCloseTrackId query per item: a play of the same track within +/-30 s (exclusive).
* storeIterationOfLoop: insert new tracks, albums, artists, plays (one insertMany each, only
  when there is something to insert), update ``lastTimestamp``, then ``firstListenedAt`` when
  plays were stored (the seed's two user updates).

Deviations, all in the seed's favour (fewer round trips or no crash):
* Mongoose's ``Model.create([...])`` saves documents one by one, and ``addTrackIdsToUser``
  also ``$push``es the new plays' ids into the user document, and ``storeFirstListenedAtIfLess``
  reads the user before updating it; this model uses one insertMany per collection and
  one conditional update instead.
* Local files (track id null): the seed passes them on (``id.toString()`` on null throws as soon
  as one stored track is found, or ``/tracks?ids=...,null`` is sent), which aborts the cycle
  without writing. The model drops them before anything else (``local_files="skip"``), unless
  ``local_files="crash"``, which aborts the cycle the way the seed does (no write, no
  ``lastTimestamp`` update).
* The dbLoop's per-iteration user reads (countDocuments + find) are done by ``read_user``,
  which the benchmark counts apart from the cycle.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from bson import ObjectId
from pymongo import ASCENDING

from bench.mongo import Database, Document
from tests.spotify_fake import to_unix_ms

LOOKBACK_MS = 2 * 60 * 60 * 1000
CLOSE_SECONDS = 30
TRACKS_MAX, ALBUMS_MAX, ARTISTS_MAX = 50, 20, 50

# The seed's schemas declare these indexes (info.ts, track.ts, album.ts, artist.ts, user.ts).
SEED_INDEXES: dict[str, list[tuple[str, bool]]] = {
    "infos": [
        ("owner", False),
        ("id", False),
        ("albumId", False),
        ("primaryArtistId", False),
        ("played_at", False),
    ],
    "tracks": [("id", True)],
    "albums": [("id", True)],
    "artists": [("id", True)],
    "users": [("spotifyId", True)],
}


class SeedCycleError(Exception):
    """The seed's loop(user) threw (it is caught and logged by dbLoop)."""


@dataclass(slots=True)
class SeedCycle:
    """What one loop(user) did."""

    items: int = 0
    new_plays: int = 0
    new_tracks: int = 0
    new_albums: int = 0
    new_artists: int = 0


class SeedModel:
    """One seed user, polled by the seed's algorithm."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        token: str,
        db: Database,
        clock: Callable[[], datetime],
        *,
        local_files: Literal["skip", "crash"] = "skip",
    ) -> None:
        """Bind the model to the fake's API, a database and the fake's clock."""
        self._session = session
        self._api = api_url.rstrip("/")
        self._token = token
        self.db = db
        self._clock = clock
        self._local_files = local_files
        self.user: Document = {}

    async def setup(self, spotify_id: str) -> None:
        """Indexes, and the user as createUser makes it (lastTimestamp = now - 24 h)."""
        for collection, specs in SEED_INDEXES.items():
            for key, unique in specs:
                await self.db[collection].create_index([(key, ASCENDING)], unique=unique)
        created = self._clock() - timedelta(hours=24)
        await self.db["users"].insert_one(
            {
                "username": spotify_id,
                "spotifyId": spotify_id,
                "lastTimestamp": to_unix_ms(created),
                "settings": {"blacklistedArtists": []},
            }
        )

    async def read_user(self) -> None:
        """dbLoop: getUserCount, then getUser(i) (find().sort(_id).skip(i).limit(1))."""
        await self.db["users"].count_documents({})
        users = await self.db["users"].find().sort("_id", ASCENDING).skip(0).limit(1).to_list()
        self.user = users[0]

    async def _raw(self, url: str) -> Any:
        if not url.startswith("http"):
            url = self._api + url
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self._session.get(url, headers=headers) as resp:
            if resp.status >= 400:
                raise SeedCycleError(f"GET {url} answered {resp.status}")
            return await resp.json()

    async def loop(self) -> SeedCycle:
        """One cycle: the seed's per-user loop function."""
        user = self.user
        next_url: str | None = (
            f"/me/player/recently-played?after={int(user['lastTimestamp']) - LOOKBACK_MS}"
        )
        items: list[Document] = []
        while next_url:
            data = await self._raw(next_url)
            items.extend(data["items"])
            next_url = data["next"]
        last_timestamp = to_unix_ms(self._clock())
        if not items:
            return SeedCycle()
        if any(item["track"].get("id") is None for item in items):
            if self._local_files == "crash":
                raise SeedCycleError("a local file (track id null) in the window")
            items = [item for item in items if item["track"].get("id") is not None]

        tracks, albums, artists = await self._tracks_albums_artists(
            [item["track"] for item in items]
        )
        infos: list[Document] = []
        blacklist = set(user.get("settings", {}).get("blacklistedArtists", []))
        for item in items:
            track = item["track"]
            played_at = _parse_date(item["played_at"])
            if await self._close_track(track["id"], played_at):
                continue
            if not track["artists"]:
                continue
            info: Document = {
                "played_at": played_at,
                "durationMs": track["duration_ms"],
                "albumId": track["album"]["id"],
                "primaryArtistId": track["artists"][0]["id"],
                "artistIds": [artist["id"] for artist in track["artists"]],
                "id": track["id"],
            }
            if track["artists"][0]["id"] in blacklist:
                info["blacklistedBy"] = "artist"
            infos.append(info)
        await self._store_iteration(last_timestamp, tracks, albums, artists, infos)
        return SeedCycle(
            items=len(items),
            new_plays=len(infos),
            new_tracks=len(_uniq(tracks)),
            new_albums=len(_uniq(albums)),
            new_artists=len(_uniq(artists)),
        )

    async def _ids_handling_max(
        self, path: str, ids: list[str], limit: int, key: str
    ) -> list[Document]:
        found: list[Document] = []
        for start in range(0, len(ids), limit):
            data = await self._raw(f"{path}?ids={','.join(ids[start : start + limit])}")
            found.extend(data[key])
        return found

    async def _tracks_albums_artists(
        self, spotify_tracks: list[Document]
    ) -> tuple[list[Document], list[Document], list[Document]]:
        ids = [track["id"] for track in spotify_tracks]
        stored = {doc["id"] for doc in await self.db["tracks"].find({"id": {"$in": ids}}).to_list()}
        missing = [track_id for track_id in ids if track_id not in stored]
        if not missing:
            return [], [], []
        tracks = [
            {
                **track,
                "album": track["album"]["id"],
                "artists": [a["id"] for a in track["artists"]],
            }
            for track in await self._ids_handling_max("/tracks", missing, TRACKS_MAX, "tracks")
        ]
        related_artists = list(dict.fromkeys(a for t in tracks for a in t["artists"]))
        related_albums = list(dict.fromkeys(t["album"] for t in tracks))
        stored_albums = {
            doc["id"]
            for doc in await self.db["albums"].find({"id": {"$in": related_albums}}).to_list()
        }
        missing_albums = [a for a in related_albums if a not in stored_albums]
        stored_artists = {
            doc["id"]
            for doc in await self.db["artists"].find({"id": {"$in": related_artists}}).to_list()
        }
        missing_artists = [a for a in related_artists if a not in stored_artists]
        albums = [
            {**album, "artists": [a["id"] for a in album["artists"]]}
            for album in (
                await self._ids_handling_max("/albums", missing_albums, ALBUMS_MAX, "albums")
                if missing_albums
                else []
            )
        ]
        artists = (
            await self._ids_handling_max("/artists", missing_artists, ARTISTS_MAX, "artists")
            if missing_artists
            else []
        )
        return tracks, albums, artists

    async def _close_track(self, track_id: str, played_at: datetime) -> bool:
        """getCloseTrackId: one query per item."""
        close = timedelta(seconds=CLOSE_SECONDS)
        found = (
            await self.db["infos"]
            .find(
                {
                    "owner": self.user["_id"],
                    "id": track_id,
                    "played_at": {"$gt": played_at - close, "$lt": played_at + close},
                }
            )
            .to_list()
        )
        return bool(found)

    async def _store_iteration(
        self,
        iteration_timestamp: int,
        tracks: list[Document],
        albums: list[Document],
        artists: list[Document],
        infos: list[Document],
    ) -> None:
        for collection, docs in (("tracks", tracks), ("albums", albums), ("artists", artists)):
            unique = _uniq(docs)
            if unique:
                await self.db[collection].insert_many(unique)
        owner: ObjectId = self.user["_id"]
        if infos:
            await self.db["infos"].insert_many([{**info, "owner": owner} for info in infos])
        await self.db["users"].update_one(
            {"_id": owner}, {"$set": {"lastTimestamp": iteration_timestamp}}
        )
        if infos:
            first = min(info["played_at"] for info in infos)
            await self.db["users"].update_one(
                {
                    "_id": owner,
                    "$or": [
                        {"firstListenedAt": {"$exists": False}},
                        {"firstListenedAt": {"$gt": first}},
                    ],
                },
                {"$set": {"firstListenedAt": first}},
            )


def _uniq(docs: Iterable[Document]) -> list[Document]:
    unique: dict[str, Document] = {}
    for doc in docs:
        unique.setdefault(doc["id"], doc)
    return list(unique.values())


def _parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
