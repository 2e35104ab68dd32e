"""Top tracks, artists and albums of a period, ranked in MongoDB (the ``top`` action).

Ranking happens in one aggregation per kind ($match → $group → $sort → $limit); only the
top ids then get their second measure and their names, so the cost in Python is bounded by
``limit`` whatever the history's size. Nothing here imports Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from .rollups import RollupStore
from .store import NOT_BLACKLISTED, Document

type Kind = Literal["tracks", "artists", "albums"]
type Order = Literal["plays", "listening_time"]

KINDS: Final[tuple[Kind, ...]] = ("tracks", "artists", "albums")
ORDERS: Final[tuple[Order, ...]] = ("plays", "listening_time")
MAX_LIMIT: Final = 50

# The play field a kind is grouped on; artists count by primary artist, as Your Spotify does.
GROUP_FIELD: Final[dict[Kind, str]] = {
    "tracks": "id",
    "artists": "primaryArtistId",
    "albums": "albumId",
}
_PLAYS: Final = 1
_MILLISECONDS: Final = "$durationMs"


@dataclass(slots=True, frozen=True)
class TopEntry:
    """One ranked track, artist or album."""

    id: str
    name: str
    plays: int
    listening_ms: int
    image_url: str | None
    spotify_url: str | None
    artist_names: tuple[str, ...] | None  # tracks and albums only

    def as_response(self) -> dict[str, Any]:
        """The entry in the action's response."""
        response: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "plays": self.plays,
            "listening_ms": self.listening_ms,
            "listening_minutes": round(self.listening_ms / 60_000, 1),
            "image_url": self.image_url,
            "spotify_url": self.spotify_url,
        }
        if self.artist_names is not None:
            response["artist_names"] = list(self.artist_names)
        return response


async def top_entries(
    db: AsyncDatabase[Document],
    owner: ObjectId,
    kind: Kind,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    order: Order,
    rollups: RollupStore | None = None,
    on_stale: Callable[[], None] | None = None,
) -> list[TopEntry]:
    """The ``limit`` most played (or listened) of ``kind`` in [start, end), counted plays only.

    Ties are broken by id (ascending), so equal data always gives the same list. From the
    ``rollups`` when they are true; else counted in MongoDB, and ``on_stale`` is called
    (to have them rebuilt).
    """
    if rollups is not None:
        ranked_rows = await rollups.ranking(
            owner, kind, start=start, end=end, limit=limit, by_time=order == "listening_time"
        )
        if ranked_rows is not None:
            names = await _Names.load(db, kind, [row[0] for row in ranked_rows])
            return [
                names.entry(item_id, plays=plays, listening_ms=listened)
                for item_id, plays, listened in ranked_rows
            ]
        if on_stale is not None:
            on_stale()
    key = GROUP_FIELD[kind]
    match: Document = {"owner": owner, **NOT_BLACKLISTED, key: {"$ne": None}}
    if start is not None or end is not None:
        match["played_at"] = {
            **({"$gte": start} if start is not None else {}),
            **({"$lt": end} if end is not None else {}),
        }
    ranked_by, other = (_PLAYS, _MILLISECONDS) if order == "plays" else (_MILLISECONDS, _PLAYS)
    ranked = await _sums(db, match, key, ranked_by, sort=True, limit=limit)
    ids = [item_id for item_id, _ in ranked]
    if not ids:
        return []
    # FerretDB 1.24 computes only the first accumulator of a $group: the second measure is
    # a second aggregation, restricted to the winners.
    others = dict(await _sums(db, match | {key: {"$in": ids}}, key, other))
    names = await _Names.load(db, kind, ids)
    entries = []
    for item_id, value in ranked:
        plays, listened = value, others.get(item_id, 0)
        if order == "listening_time":
            plays, listened = listened, value
        entries.append(names.entry(item_id, plays=plays, listening_ms=listened))
    return entries


async def _sums(
    db: AsyncDatabase[Document],
    match: Document,
    key: str,
    value: int | str,
    *,
    sort: bool = False,
    limit: int | None = None,
) -> list[tuple[str, int]]:
    pipeline: list[Document] = [
        {"$match": match},
        {"$group": {"_id": f"${key}", "value": {"$sum": value}}},
    ]
    if sort:
        pipeline.append({"$sort": {"value": -1, "_id": 1}})
    if limit is not None:
        pipeline.append({"$limit": limit})
    cursor = await db["infos"].aggregate(pipeline)
    return [
        (row["_id"], int(row["value"]))
        async for row in cursor
        if isinstance(row.get("_id"), str) and isinstance(row.get("value"), int | float)
    ]


@dataclass(slots=True)
class _Names:
    """Documents of the top ids and of what their names and covers need (≤ 3 finds)."""

    kind: Kind
    docs: dict[str, Document]
    albums: dict[str, Document]
    artists: dict[str, Document]

    @classmethod
    async def load(cls, db: AsyncDatabase[Document], kind: Kind, ids: Sequence[str]) -> _Names:
        docs = await _by_id(db, kind, ids)
        albums: dict[str, Document] = {}
        artists: dict[str, Document] = docs if kind == "artists" else {}
        if kind == "tracks":
            albums = await _by_id(db, "albums", [_str(doc.get("album")) for doc in docs.values()])
        if kind != "artists":
            artists = await _by_id(
                db, "artists", [a for doc in docs.values() for a in _strings(doc.get("artists"))]
            )
        return cls(kind, docs, albums, artists)

    def entry(self, item_id: str, *, plays: int, listening_ms: int) -> TopEntry:
        doc = self.docs.get(item_id, {})
        name = doc.get("name")
        cover = self.albums.get(_str(doc.get("album"))) if self.kind == "tracks" else doc
        return TopEntry(
            id=item_id,
            name=name if isinstance(name, str) else item_id,
            plays=plays,
            listening_ms=listening_ms,
            image_url=_first_image(cover),
            spotify_url=_spotify_url(doc),
            artist_names=None
            if self.kind == "artists"
            else tuple(
                str(self.artists.get(a, {}).get("name", a)) for a in _strings(doc.get("artists"))
            ),
        )


async def _by_id(
    db: AsyncDatabase[Document], collection: str, ids: Iterable[str]
) -> dict[str, Document]:
    wanted = [i for i in dict.fromkeys(ids) if i]
    if not wanted:
        return {}
    projection = dict.fromkeys(("id", "name", "images", "external_urls", "album", "artists"), 1)
    projection["_id"] = 0
    cursor = db[collection].find({"id": {"$in": wanted}}, projection)
    return {doc["id"]: doc async for doc in cursor if isinstance(doc.get("id"), str)}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _first_image(doc: Document | None) -> str | None:
    images = doc.get("images") if doc else None
    if isinstance(images, list) and images and isinstance(images[0], dict):
        url = images[0].get("url")
        return url if isinstance(url, str) else None
    return None


def _spotify_url(doc: Document) -> str | None:
    urls = doc.get("external_urls")
    url = urls.get("spotify") if isinstance(urls, dict) else None
    return url if isinstance(url, str) else None
