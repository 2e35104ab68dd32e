"""The day documents of the rollups (``rollups.py``), and rewriting them from ``infos``.

A day document holds a UTC day's counted plays keyed by instant, each as the entry
``[track, primary artist, album, duration ms]`` (an id is None where the play has none),
packed in one string: FerretDB decodes one value, not hundreds of fields (reading a day of
480 plays took 30 ms as fields, 4 ms packed, measured 2026-12-08). Writers change a day
read-modify-write under the store's lock, from a few days kept here between writes.
Nothing here imports Home Assistant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection

from .models import Play, to_unix_ms
from .rollup_parts import day_start

type Document = dict[str, Any]

WRITE_BATCH: Final = 200
DAYS_KEPT: Final = 4  # today, yesterday and a late play's day or two
# The day layout the rollups were built with (the state's "built"): another means rebuild.
LAYOUT: Final = 2
# The infos fields an entry needs (blacklisted plays are left out).
PLAY_FIELDS: Final = {
    "_id": 0,
    "id": 1,
    "primaryArtistId": 1,
    "albumId": 1,
    "durationMs": 1,
    "played_at": 1,
    "blacklistedBy": 1,
}


def day_id(owner: ObjectId, day: datetime) -> str:
    """The ``_id`` of an account's day document."""
    return f"{owner}:d:{day:%Y-%m-%d}"


def play_key(played_at: datetime) -> str:
    """A play's field in its day: its Unix ms, behind a letter (a name, not an index)."""
    return f"t{to_unix_ms(played_at)}"


def entry_of_play(play: Play) -> list[Any] | None:
    """A live play's entry (None when it is blacklisted: not counted)."""
    if play.blacklisted:
        return None
    return [play.track_id, play.primary_artist_id, play.album_id, play.duration_ms]


def entry_of(doc: Document) -> list[Any] | None:
    """A counted play's entry from its ``infos`` document (None when blacklisted)."""
    if "blacklistedBy" in doc:
        return None
    duration = doc.get("durationMs")
    return [
        *(value if isinstance(value := doc.get(f), str) else None for f in _ID_FIELDS),
        int(duration) if isinstance(duration, int | float) else 0,
    ]


_ID_FIELDS: Final = ("id", "primaryArtistId", "albumId")


def pack_plays(plays: Mapping[str, list[Any]]) -> str:
    r"""``key\ttrack\tartist\talbum\tms`` lines, one per play.

    An id that is None, or that could break a line (another program's), is left empty: not
    counted for its kind, as counting a day's entries already skipped it.
    """
    return "\n".join(
        "\t".join([key, *(_packable(value) for value in entry[:3]), str(int(entry[3]))])
        for key, entry in plays.items()
    )


def unpack_plays(packed: object) -> dict[str, list[Any]]:
    """A day's plays by key, as ``pack_plays`` wrote them."""
    if not isinstance(packed, str) or not packed:
        return {}
    plays: dict[str, list[Any]] = {}
    for line in packed.split("\n"):
        key, track, artist, album, ms = line.split("\t")
        plays[key] = [track or None, artist or None, album or None, int(ms)]
    return plays


def _packable(value: object) -> str:
    if not isinstance(value, str) or "\t" in value or "\n" in value:
        return ""
    return value


def day_document(owner: ObjectId, day: datetime, plays: Document) -> ReplaceOne[Document]:
    """Replace (or create) a day with these plays."""
    doc = {"owner": owner, "start": day, "plays": pack_plays(plays)}
    return ReplaceOne({"_id": day_id(owner, day)}, doc, upsert=True)


class DayCache:
    """The plays of the days written last, by day ``_id``: a live write reads no day.

    True while this process is the only writer of its accounts' rollups (a recount that
    disagrees marks them stale otherwise); dropped wherever a write's outcome is unknown.
    """

    def __init__(self, limit: int = DAYS_KEPT) -> None:
        """Keep at most ``limit`` days."""
        self._limit = limit
        self._days: OrderedDict[str, dict[str, list[Any]]] = OrderedDict()

    def get(self, key: str) -> dict[str, list[Any]] | None:
        """A copy of a kept day's plays, or None when it is not kept."""
        plays = self._days.get(key)
        if plays is None:
            return None
        self._days.move_to_end(key)
        return dict(plays)

    def put(self, key: str, plays: dict[str, list[Any]]) -> None:
        """Keep a day as just written."""
        self._days[key] = plays
        self._days.move_to_end(key)
        while len(self._days) > self._limit:
            self._days.popitem(last=False)

    def forget(self, keys: Iterable[str] | None = None) -> None:
        """Drop these days (all when None)."""
        if keys is None:
            self._days.clear()
            return
        for key in keys:
            self._days.pop(key, None)


async def write_days(
    rollups: AsyncCollection[Document],
    infos: AsyncCollection[Document],
    owner: ObjectId,
    first: datetime | None,
) -> list[datetime]:
    """Day documents from ``infos`` from ``first`` on (one sorted read); the days, in order."""
    query: Document = {"owner": owner}
    if first is not None:
        query["played_at"] = {"$gte": first}
    batch: list[ReplaceOne[Document]] = []
    days: list[datetime] = []
    plays: Document = {}
    async for doc in infos.find(query, PLAY_FIELDS).sort("played_at", 1):
        played_at, entry = doc.get("played_at"), entry_of(doc)
        if entry is None or not isinstance(played_at, datetime):
            continue
        if not days or day_start(played_at) != days[-1]:
            if days:
                batch.append(day_document(owner, days[-1], plays))
            days.append(day_start(played_at))
            plays = {}
        plays[play_key(played_at)] = entry
        if len(batch) >= WRITE_BATCH:
            await rollups.bulk_write(batch, ordered=False)
            batch = []
    if days:
        batch.append(day_document(owner, days[-1], plays))
    if batch:
        await rollups.bulk_write(batch, ordered=False)
    return days


async def changed_days(
    cache: DayCache,
    read: Callable[[Sequence[str]], Awaitable[list[Document]]],
    owner: ObjectId,
    changes: dict[datetime, dict[str, list[Any] | None]],
    after: datetime | None,
) -> dict[datetime, dict[str, list[Any]]]:
    """Each changed day's plays after the changes (None removes a play).

    From the days kept, else empty beyond ``after`` (the newest day with a document),
    else read (``read``: documents by ``_id``).
    """
    kept = {
        day: {} if after is not None and day > after else cache.get(day_id(owner, day))
        for day in changes
    }
    missing = [day_id(owner, day) for day, plays in kept.items() if plays is None]
    stored = {doc["_id"]: unpack_plays(doc.get("plays")) for doc in await read(missing)}
    days: dict[datetime, dict[str, list[Any]]] = {}
    for day, day_changes in changes.items():
        plays = kept[day]
        if plays is None:
            plays = stored.get(day_id(owner, day), {})
        for key, entry in day_changes.items():
            if entry is None:
                plays.pop(key, None)
            else:
                plays[key] = entry
        days[day] = plays
    return days
