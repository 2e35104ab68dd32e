"""Podcast episodes and audiobook chapters of an imported export, kept apart from music.

They are never plays in ``infos`` (Your Spotify ignores them, and no count, statistic or
event includes them), but they are the user's history: the import keeps them in a
collection of their own, ``scrobbler_spoken_plays``, and the export writes them again.
A document holds what an export entry needs to be written back: ``ts``, ``ms_played`` and
the episode and audiobook fields, under the export's own names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from .payload import parse_time

SPOKEN_COLLECTION: Final = "scrobbler_spoken_plays"
EPISODE_FIELDS: Final = ("episode_name", "episode_show_name", "spotify_episode_uri")
AUDIOBOOK_FIELDS: Final = (
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)
SPOKEN_FIELDS: Final = EPISODE_FIELDS + AUDIOBOOK_FIELDS

type Document = dict[str, Any]


def spoken_kind(entry: Mapping[str, Any]) -> str | None:
    """'podcast' or 'audiobook' for such an export entry, None for anything else."""
    if any(entry.get(key) is not None for key in EPISODE_FIELDS):
        return "podcast"
    if any(entry.get(key) is not None for key in AUDIOBOOK_FIELDS):
        return "audiobook"
    return None


def spoken_document(entry: Mapping[str, Any]) -> Document | None:
    """What is kept of a well-formed spoken entry (no owner yet); None if it has no time."""
    played_at = parse_time(entry.get("ts"))
    ms_played = entry.get("ms_played")
    if played_at is None or not isinstance(ms_played, int) or isinstance(ms_played, bool):
        return None
    doc: Document = {"ts": played_at, "ms_played": ms_played}
    for key in SPOKEN_FIELDS:
        value = entry.get(key)
        doc[key] = value if isinstance(value, str) else None
    # One document per item and instant: a re-import adds nothing (unique index).
    doc["uri"] = (
        doc["spotify_episode_uri"]
        or doc["audiobook_chapter_uri"]
        or doc["audiobook_uri"]
        # No uri: the names tell two items of one second apart.
        or "name:" + "|".join(doc[key] or "" for key in SPOKEN_FIELDS)
    )
    return doc


class SpokenPlays:
    """The account's spoken plays in MongoDB."""

    def __init__(self, db: AsyncDatabase[Document], owner: ObjectId) -> None:
        """The collection of ``db``, for ``owner``."""
        self.collection = db[SPOKEN_COLLECTION]
        self.owner = owner

    async def ensure_index(self) -> None:
        """Unique per (account, instant, item): imports stay idempotent."""
        await self.collection.create_index(
            [("owner", ASCENDING), ("ts", ASCENDING), ("uri", ASCENDING)], unique=True
        )
        # The export reads them in (ts, _id) order, a batch at a time.
        await self.collection.create_index(
            [("owner", ASCENDING), ("ts", ASCENDING), ("_id", ASCENDING)]
        )

    def documents(self, docs: Sequence[Document]) -> list[Document]:
        """``docs`` as this account's documents."""
        return [{"owner": self.owner, **doc} for doc in docs]

    def query(self, start: datetime | None, end: datetime | None) -> Document:
        """The account's spoken plays in [start, end) (None: open)."""
        query: Document = {"owner": self.owner}
        bounds: Document = {}
        if start is not None:
            bounds["$gte"] = start
        if end is not None:
            bounds["$lt"] = end
        if bounds:
            query["ts"] = bounds
        return query


def spoken_entry_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The episode and audiobook fields of a stored spoken play (export side)."""
    return {key: doc.get(key) if isinstance(doc.get(key), str) else None for key in SPOKEN_FIELDS}
