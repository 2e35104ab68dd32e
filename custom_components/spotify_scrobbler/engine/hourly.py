"""Hourly play counts and listening time of an account, read from MongoDB in constant memory.

FerretDB 1.24 (our test server) has no date or arithmetic expression operators ($subtract,
$mod, $toLong, $dateToString, $dateTrunc, $hour, $divide, $floor... and no $bucket), so the
hour cannot be computed inside an aggregation. Instead one cursor streams the stored plays'
(played_at, durationMs), sorted by played_at, and consecutive plays are folded into hours:
memory stays one hour's totals whatever the history's size. Nothing here imports Home
Assistant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from .store import NOT_BLACKLISTED, Document

BATCH_SIZE: Final = 2000


def hour_of(moment: datetime) -> datetime:
    """The UTC hour an instant falls in (long-term statistics are UTC hours)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True, frozen=True)
class HourTotals:
    """Counted plays that started in [start, start + 1 h) (0 when all were blacklisted)."""

    start: datetime
    plays: int
    listening_ms: int
    # The plays' instants (a handful per hour): lets a live update skip a play already counted.
    instants: frozenset[datetime] = frozenset()


async def totals_before(
    infos: AsyncCollection[Document], owner: ObjectId, moment: datetime
) -> tuple[int, int]:
    """(plays, listening ms) of the counted plays before ``moment``, counted in MongoDB."""
    match = {"owner": owner, "played_at": {"$lt": moment}, **NOT_BLACKLISTED}
    # One accumulator per $group: FerretDB 1.24 computes only the first of several.
    cursor = await infos.aggregate(
        [{"$match": match}, {"$group": {"_id": None, "ms": {"$sum": "$durationMs"}}}]
    )
    rows = await cursor.to_list()
    listening_ms = int(rows[0]["ms"]) if rows else 0
    return await infos.count_documents(match), listening_ms


async def hourly_totals(
    infos: AsyncCollection[Document], owner: ObjectId, since: datetime | None
) -> AsyncIterator[HourTotals]:
    """The hours with stored plays at or after ``since`` (all when None), oldest first.

    Blacklisted plays count 0 but still give their hour a row: a play blacklisted after it
    was counted must turn its hour's row to 0 (rows cannot be deleted one by one).
    """
    match: Document = {"owner": owner}
    if since is not None:
        match["played_at"] = {"$gte": since}
    cursor = (
        infos.find(match, {"_id": 0, "played_at": 1, "durationMs": 1, "blacklistedBy": 1})
        .sort("played_at", 1)
        .batch_size(BATCH_SIZE)
    )
    current: datetime | None = None
    plays = listening_ms = 0
    instants: set[datetime] = set()
    async for doc in cursor:
        played_at = doc.get("played_at")
        if not isinstance(played_at, datetime):
            continue  # a foreign document; the store logs those where it reads plays
        played_at = played_at.astimezone(UTC) if played_at.tzinfo else played_at.replace(tzinfo=UTC)
        hour = hour_of(played_at)
        if hour != current:
            if current is not None:
                yield HourTotals(current, plays, listening_ms, frozenset(instants))
            current, plays, listening_ms, instants = hour, 0, 0, set()
        instants.add(played_at)
        if "blacklistedBy" in doc:  # what NOT_BLACKLISTED ($exists) leaves out
            continue
        duration = doc.get("durationMs")
        plays += 1
        # What MongoDB's $sum would add (totals_before and the sensors use $sum).
        listening_ms += int(duration) if isinstance(duration, int | float) else 0
    if current is not None:
        yield HourTotals(current, plays, listening_ms, frozenset(instants))
