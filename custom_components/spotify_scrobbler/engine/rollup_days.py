"""The day documents of the rollups (``rollups.py``), and rewriting them from ``infos``.

A day document holds a UTC day's counted plays keyed by instant, each as the entry
``[track, primary artist, album, duration ms]`` (an id is None where the play has none).
Nothing here imports Home Assistant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection

from .models import Play, to_unix_ms
from .rollup_parts import day_start

type Document = dict[str, Any]

WRITE_BATCH: Final = 200
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


def day_document(owner: ObjectId, day: datetime, plays: Document) -> ReplaceOne[Document]:
    """Replace (or create) a day with these plays."""
    doc = {"owner": owner, "start": day, "plays": plays}
    return ReplaceOne({"_id": day_id(owner, day)}, doc, upsert=True)


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
