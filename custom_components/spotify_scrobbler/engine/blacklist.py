"""The artist blacklist option applied to the plays already stored, as Your Spotify does.

Your Spotify (server 1.20: routes/artist.ts, database/queries/track.ts and user.ts; read,
never copied) blacklists an artist by adding "artist" to ``blacklistedBy`` of its plays
($addToSet) and un-blacklists it by pulling "artist" and unsetting arrays left empty; its
own list is ``users.settings.blacklistedArtists``. Here plays are matched on their indexed
``primaryArtistId`` (the track's first artist, which Your Spotify matches on), and:

* an artist Your Spotify's list still names is never un-blacklisted: that is its
  blacklist, and its own scrobbling goes on blacklisting the artist's new plays;
* only ``blacklistedBy`` is written, and only "artist" in it;
* what was applied is kept in the users document (``scrobbler.appliedBlacklist``), next
  to the plays it describes: another database, or a restored older copy, carries its own
  state, which the config entry could not tell apart. It is written after the plays, so a
  start whose option equals it does nothing, and a start after a crash in the middle
  computes the same change again; each update is idempotent.

Nothing here imports Home Assistant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from .rollups import mark_stale
from .store import Document

APPLIED_FIELD: Final = "scrobbler.appliedBlacklist"
REASON: Final = "artist"  # Your Spotify's only blacklistedBy value


@dataclass(slots=True, frozen=True)
class BlacklistChange:
    """What applying a changed option did to the stored plays."""

    added: tuple[str, ...]  # artists newly blacklisted
    restored: tuple[str, ...]  # artists removed from the option whose plays count again
    kept: tuple[str, ...]  # removed from the option, but Your Spotify's list still names them
    plays_blacklisted: int
    plays_counted_again: int
    oldest: datetime | None  # the oldest play whose counting changed, if any did


async def apply_blacklist(
    db: AsyncDatabase[Document],
    owner: ObjectId,
    blacklist: Sequence[str],
    before_change: Callable[[datetime], Awaitable[None]],
) -> BlacklistChange | None:
    """Bring the account's stored plays in line with ``blacklist``; None if they are.

    ``before_change`` gets the oldest play about to change, before any changes (e.g. to
    note durably that statistics from there on need a rebuild).
    """
    user = await db["users"].find_one({"_id": owner}, {"settings": 1, "scrobbler": 1})
    if user is None:
        return None
    wanted = list(dict.fromkeys(blacklist))
    applied = _strings(_field(user, APPLIED_FIELD))
    if set(applied) == set(wanted):
        return None
    # Your Spotify's own blacklist, less what we seeded it with when we created the user.
    theirs = set(_strings(_field(user, "settings.blacklistedArtists"))) - set(
        _strings(_field(user, "scrobbler.seededBlacklist"))
    )
    added = [artist for artist in wanted if artist not in applied]
    dropped = [artist for artist in applied if artist not in wanted]
    restored = [artist for artist in dropped if artist not in theirs]
    kept = tuple(artist for artist in dropped if artist in theirs)

    infos = db["infos"]
    # A play blacklisted already is left exactly as it is. Arrays only (or no field): the
    # updates cannot apply to another value, and one such document would fail them all.
    to_blacklist = {
        "owner": owner,
        "primaryArtistId": {"$in": added},
        "$or": [
            {"blacklistedBy": {"$exists": False}},
            {"blacklistedBy": {"$type": "array", "$ne": REASON}},
        ],
    }
    to_pull = {
        "owner": owner,
        "primaryArtistId": {"$in": restored},
        "blacklistedBy": {"$elemMatch": {"$eq": REASON}},
    }
    # Also what a crash between the two updates below left behind.
    emptied = {"owner": owner, "primaryArtistId": {"$in": restored}, "blacklistedBy": {"$size": 0}}
    queries = ([to_blacklist] if added else []) + ([to_pull, emptied] if restored else [])
    oldest = min(
        [moment for query in queries if (moment := await _oldest(infos, query)) is not None],
        default=None,
    )
    if oldest is not None:
        await before_change(oldest)
        await mark_stale(db, owner, oldest)

    blacklisted = counted_again = 0
    if added:
        result = await infos.update_many(to_blacklist, {"$addToSet": {"blacklistedBy": REASON}})
        blacklisted = result.modified_count
    if restored:
        await infos.update_many(to_pull, {"$pull": {"blacklistedBy": REASON}})
        result = await infos.update_many(emptied, {"$unset": {"blacklistedBy": ""}})
        counted_again = result.modified_count
    await db["users"].update_one({"_id": owner}, {"$set": {APPLIED_FIELD: wanted}})
    return BlacklistChange(tuple(added), tuple(restored), kept, blacklisted, counted_again, oldest)


async def _oldest(infos: AsyncCollection[Document], query: Document) -> datetime | None:
    doc = await infos.find_one(query, {"_id": 0, "played_at": 1}, sort=[("played_at", ASCENDING)])
    played_at = doc.get("played_at") if doc is not None else None
    return played_at if isinstance(played_at, datetime) else None


def _field(doc: Document, path: str) -> object:
    """A dotted path's value in a document (None where any part is missing)."""
    value: object = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
