"""What an enrichment flush writes to a play, and how an interrupted flush is completed.

Plain Python and PyMongo (no Home Assistant). ``complete_play`` fills a play in from its
track; ``as_read`` keeps a flush from reverting a blacklisting made while it ran;
``restore_staged`` puts the plays of a flush cut short back into ``infos``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from bson import ObjectId

from .history_import import (
    IMPORTED_FIELD,
    INSERT_BATCH,
    STAGING_COLLECTION,
    TrackInfo,
    insert_ignoring_duplicates,
)
from .rollups import EPOCH
from .store import Document, ScrobbleStore
from .your_spotify import BLACKLISTED_BY

BLACKLIST_FIELD: Final = "blacklistedBy"
ABSENT: Final = object()  # a field the document did not have


def complete_play(doc: Document, info: TrackInfo, blacklist: set[str]) -> tuple[bool, bool]:
    """Fill in a play from its track: (whether it changed, whether what it counts did)."""
    counted = BLACKLIST_FIELD not in doc
    changed = counts_changed = False
    if doc.get("primaryArtistId") is None:
        doc.update(
            albumId=info.album_id,
            primaryArtistId=info.artist_ids[0],
            artistIds=list(info.artist_ids),
        )
        changed = True
        if info.artist_ids[0] in blacklist and counted:
            doc[BLACKLIST_FIELD] = list(BLACKLISTED_BY)
            counts_changed = True
    length = info.duration_ms
    if IMPORTED_FIELD in doc and length is not None and doc.get("durationMs") != length:
        doc["durationMs"] = length  # the play's ms_played stays in IMPORTED_FIELD
        changed = True
        counts_changed = counts_changed or counted
    return changed, counts_changed


def as_read(value: Any) -> Any:
    """A filter matching ``blacklistedBy`` only as it was read (``ABSENT``: no field)."""
    if value is ABSENT:
        return {"$exists": False}
    if value is None:
        return {"$type": "null"}  # plain None would match a missing field too
    return value


def oldest_instant(docs: Iterable[Document]) -> datetime:
    """The earliest ``played_at`` of play documents (the epoch if none has one)."""
    return min(
        (at for doc in docs if isinstance(at := doc.get("played_at"), datetime)), default=EPOCH
    )


async def restore_staged(
    store: ScrobbleStore, owner: ObjectId, *, interrupted: bool = True
) -> None:
    """Put an interrupted flush's staged plays (back) into infos, then clear the staging.

    Already there (same _id, or a play at the same instant) is a duplicate key, ignored.
    Which copies go in is not known here: the rollups are rebuilt from the oldest of an
    interrupted flush's plays (the flush itself sets them when it completes).
    """
    staging = store.db[STAGING_COLLECTION]
    first = None
    if interrupted:
        first = await staging.find_one({"owner": owner}, sort=[("played_at", 1)])
        if first is not None:
            await store.rollups.mark_stale(owner, oldest_instant([first]))
    batch: list[Document] = []
    found = False
    async for doc in staging.find({"owner": owner}, batch_size=INSERT_BATCH):
        found = True
        batch.append(doc)
        if len(batch) >= INSERT_BATCH:
            await insert_ignoring_duplicates(store.infos, batch)
            batch = []
    if batch:
        await insert_ignoring_duplicates(store.infos, batch)
    if found:
        await staging.delete_many({"owner": owner})
    if first is not None:
        # Again once they are in: a rebuild that read infos before must not finish.
        await store.rollups.mark_stale(owner, oldest_instant([first]))
