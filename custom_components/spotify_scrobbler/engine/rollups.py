"""Sums of counted plays by day, month and year, so that ``top`` never scans ``infos``.

FerretDB 1.24 reads every document of a collection for any filter but one on ``_id`` (a
ranking over 200 000 plays took 30 to 47 s), so the documents of ``scrobbler_rollups`` are
only ever read by ``_id``:

- ``<owner>:d:<YYYY-MM-DD>``: a UTC day's counted plays keyed by their instant (Unix ms),
  each ``[track, primary artist, album, duration ms]``, packed (``rollup_days``). Set play
  by play: writing a play twice changes nothing, and a partial day at a period's edge is
  filtered by instant.
- ``<owner>:<m|y>:<YYYY[-MM]>:<kind>``: a month's or year's plays and listening time per
  id, packed in one string (one value to decode, not thousands of fields).
- ``<owner>:state``: whether the rest is true. Writers set their plays into their days and
  mark the months ``dirty`` (their sums are recomputed from their days before the next
  ranking). A change that may stop half-way (an import's batch, an enrichment's flush) is
  announced first (``begin``) and closed after its plays are set (``end``): one left open
  by a crash makes the rollups stale, like a change made without them (blacklist, another
  program's plays found by a recount). ``rebuild`` then reads ``infos`` once from the
  oldest play concerned. Until then ``ranking`` answers None and the caller counts in
  MongoDB: exact either way.

A period is cut into whole years, months and days and at most two partial days: about a
hundred small reads whatever the history's size. Sums are merged here, bounded by the
distinct ids of the period. Nothing here imports Home Assistant.
"""

from __future__ import annotations

import asyncio
import heapq
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from bson import ObjectId
from pymongo import ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from .models import Play
from .rollup_days import (
    LAYOUT,
    DayCache,
    changed_days,
    day_id,
    entry_of,
    entry_of_play,
    pack_plays,
    play_key,
    unpack_plays,
    write_days,
)
from .rollup_parts import (
    DAY,
    KIND_FIELDS,
    Piece,
    Sums,
    add_entries,
    day_start,
    empty_sums,
    needs_months,
    next_month,
    pack,
    pieces,
    unpack,
    utc,
)

type Document = dict[str, Any]
type Kind = Literal["tracks", "artists", "albums"]

COLLECTION: Final = "scrobbler_rollups"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
REBUILD_ATTEMPTS: Final = 3


def _sum_id(owner: ObjectId, level: str, start: datetime, kind: str) -> str:
    key = f"{start:%Y}" if level == "y" else f"{start:%Y-%m}"
    return f"{owner}:{level}:{key}:{kind}"


def _state_id(owner: ObjectId) -> str:
    return f"{owner}:state"


class RollupStore:
    """The rollups of the accounts of one database (one store, one lock, per entry)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        """Use ``db``'s ``scrobbler_rollups`` collection."""
        self.collection = db[COLLECTION]
        self.infos = db["infos"]
        # Held by writes of days and sums and by live writes of plays with their rollup:
        # a ranking or a total check never sees one without the other.
        self.lock = asyncio.Lock()
        # False without the unique (owner, played_at) index: plays sharing an instant would
        # be one entry of a day.
        self.trusted = True
        self.writes = 0  # days written (a recount that spans one is inconclusive)
        self._open: set[str] = set()  # changes begun in this process and not ended yet
        self._rebuilding: dict[ObjectId, list[tuple[datetime, list[Any] | None]]] = {}
        self._rebuild_lock = asyncio.Lock()
        self._days = DayCache()
        # Per open change: the newest day with plays as its ``begin`` read it. A live write
        # holds the lock from ``begin`` on, so a later day has no document yet: it reads none.
        self._last_day: dict[str, datetime] = {}

    # ------------------------------------------------------------------ writes

    async def add_plays(self, owner: ObjectId, plays: Sequence[Play], token: str) -> None:
        """A live write's plays, stored in ``infos`` just now, closing its ``begin``.

        The caller holds ``lock``.
        """
        entries = [(play.played_at, entry_of_play(play)) for play in plays]
        last_day = self._last_day.pop(token, None)
        if owner in self._rebuilding:  # days may appear beyond it meanwhile
            last_day = None
        await self._set(owner, entries, closing=token, after=last_day)

    async def set_documents(
        self, owner: ObjectId, docs: Iterable[Document], closing: str | None = None
    ) -> None:
        """Plays as their ``infos`` documents are now (inserted or changed).

        ``closing`` ends a ``begin`` in the same write.
        """
        entries = [
            (utc(doc["played_at"]), entry_of(doc))
            for doc in docs
            if isinstance(doc.get("played_at"), datetime)
        ]
        async with self.lock:
            # Begun without this lock: it may have read a day a running rebuild (which writes
            # days without the lock) replaces, and would write that day back short.
            await self._set(owner, entries, closing, unlocked_change=True)

    async def _set(
        self,
        owner: ObjectId,
        plays: Sequence[tuple[datetime, list[Any] | None]],
        closing: str | None = None,
        after: datetime | None = None,
        *,
        unlocked_change: bool = False,
    ) -> None:
        """Set each play's entry into its day (None: not counted); ``lock`` held.

        The months are marked dirty before their days change (a crash in between leaves
        them recomputed, never trusted stale). During a rebuild the plays are also kept and
        set again after it (it may rewrite their day from an older read of ``infos``).
        ``closing`` ends a ``begin`` in the same write. Days later than ``after`` are known
        to have no document yet. An ``unlocked_change`` during a rebuild makes that rebuild
        start again (its generation moves on), which sets every day from ``infos`` anew.
        """
        changes: dict[datetime, dict[str, list[Any] | None]] = {}
        for played_at, entry in plays:
            changes.setdefault(day_start(played_at), {})[play_key(played_at)] = entry
        days = await changed_days(self._days, self._read, owner, changes, after)
        state: Document = {"$set": {"owner": owner}}
        if days:
            state["$addToSet"] = {"dirty": {"$each": sorted({f"{d:%Y-%m}" for d in days})}}
            state["$min"] = {"first_day": min(days)}
            state["$max"] = {"last_day": max(days)}
        if closing is not None:
            state["$unset"] = {f"pending.{closing}": ""}
        if unlocked_change and owner in self._rebuilding:
            state["$inc"] = {"generation": 1}
        requests: list[UpdateOne] = [UpdateOne({"_id": _state_id(owner)}, state, upsert=True)]
        for day, day_plays in days.items():
            update = {"$set": {"owner": owner, "start": day, "plays": pack_plays(day_plays)}}
            requests.append(UpdateOne({"_id": day_id(owner, day)}, update, upsert=True))
        if owner in self._rebuilding:
            self._rebuilding[owner].extend(plays)
        self.writes += 1
        ids = [day_id(owner, day) for day in days]
        try:
            await self.collection.bulk_write(requests, ordered=True)
        except BaseException:
            self._days.forget(ids)  # written or not: read them again
            raise
        for key, day_plays in zip(ids, days.values(), strict=True):
            self._days.put(key, day_plays)
        if closing is not None:
            self._open.discard(closing)
            self._last_day.pop(closing, None)

    async def keep_day(self, owner: ObjectId, moment: datetime) -> None:
        """Read ``moment``'s day once now (at setup): the live writes to it read nothing."""
        key = day_id(owner, day_start(moment))
        async with self.lock:
            if self._days.get(key) is None:
                found = await self._read([key])
                self._days.put(key, unpack_plays(found[0].get("plays")) if found else {})

    async def begin(self, owner: ObjectId, since: datetime) -> str:
        """Plays from ``since`` on are about to change; returns the token for ``end``."""
        token = uuid.uuid4().hex
        self._open.add(token)
        state = await self.collection.find_one_and_update(
            {"_id": _state_id(owner)},
            {
                "$set": {"owner": owner, f"pending.{token}": day_start(since)},
                "$inc": {"generation": 1},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        last_day = (state or {}).get("last_day")
        self._last_day[token] = day_start(last_day) if isinstance(last_day, datetime) else EPOCH
        return token

    async def end(self, owner: ObjectId, token: str) -> None:
        """The change ``begin`` announced is complete and its plays are set."""
        self._last_day.pop(token, None)
        await self.collection.update_one(
            {"_id": _state_id(owner)}, {"$unset": {f"pending.{token}": ""}}
        )
        self._open.discard(token)

    def abandon(self, token: str) -> None:
        """A change that failed: its mark stays in MongoDB, for a rebuild to clear."""
        self._open.discard(token)
        self._last_day.pop(token, None)

    async def mark_stale(self, owner: ObjectId, since: datetime | None) -> None:
        """Plays from ``since`` on (all when None) change other than by a live write."""
        await mark_stale(self.collection.database, owner, since)

    async def rebuild(self, owner: ObjectId) -> bool:
        """Make stale or missing rollups true again from ``infos``; whether they are now.

        Waits for nothing: False when changes begun here are still open (they set their
        plays when they end), or when the rollups keep being marked stale meanwhile.
        """
        if not self.trusted:
            return False
        async with self._rebuild_lock:
            for _ in range(REBUILD_ATTEMPTS):
                state = await self._state(owner)
                if _fresh(state):
                    return True
                pending = (state or {}).get("pending") or {}
                closed = [token for token in pending if token not in self._open]
                built = state is not None and state.get("built") == LAYOUT
                if built and "stale_from" not in (state or {}) and not closed:
                    return False  # only open changes: they set their plays when they end
                since = _stale_since(state, closed)
                generation = (state or {}).get("generation", 0)
                # Stale, durably, until this attempt is done: a crash or a cancel mid-way
                # leaves deleted days behind a mark, never behind a "true".
                await self.collection.update_one(
                    {"_id": _state_id(owner)},
                    {"$min": {"stale_from": since or EPOCH}, "$set": {"owner": owner}},
                    upsert=True,
                )
                self._rebuilding[owner] = []
                try:
                    await self._rebuild_from(owner, since)
                finally:
                    live = self._rebuilding.pop(owner)
                async with self.lock:
                    self._days.forget()  # the days were rewritten from infos
                    await self._set(owner, live)
                    await self._refresh(owner)
                    # Nothing marked since this attempt read the state (0: never marked).
                    unmarked = {"$in": [generation, None]} if generation == 0 else generation
                    cleared = {"stale_from": "", **{f"pending.{t}": "" for t in closed}}
                    done = await self.collection.update_one(
                        {"_id": _state_id(owner), "generation": unmarked},
                        {"$unset": cleared, "$set": {"built": LAYOUT}},
                    )
                if done.matched_count:
                    return _fresh(await self._state(owner))
            return False

    async def _rebuild_from(self, owner: ObjectId, first: datetime | None) -> None:
        """Rewrite the days from ``first`` on (all when None) from ``infos``."""
        # The month of ``first`` keeps its earlier days: its sums (and year) are redone too.
        if first is not None:
            await self.collection.update_one(
                {"_id": _state_id(owner)}, {"$addToSet": {"dirty": f"{first:%Y-%m}"}}
            )
        async with self.lock:  # a ranking reads all its documents, or none of these gone
            self._days.forget()
            if first is None:
                await self.collection.delete_many(
                    {"owner": owner, "_id": {"$ne": _state_id(owner)}}
                )
            else:
                await self.collection.delete_many({"owner": owner, "start": {"$gte": first}})
        days = await write_days(self.collection, self.infos, owner, first)
        update: Document = {"$set": {"owner": owner}}
        # The first month again: a refresh running meanwhile may have pulled the mark above.
        months = {f"{d:%Y-%m}" for d in days} | ({f"{first:%Y-%m}"} if first is not None else set())
        if months:
            update["$addToSet"] = {"dirty": {"$each": sorted(months)}}
        if first is not None:
            if days:
                update["$min"] = {"first_day": days[0]}
                update["$max"] = {"last_day": days[-1]}
        elif days:
            update["$set"] |= {"first_day": days[0], "last_day": days[-1]}
        else:
            update["$unset"] = {"first_day": "", "last_day": ""}
        await self.collection.update_one({"_id": _state_id(owner)}, update, upsert=True)

    async def _refresh(self, owner: ObjectId) -> None:
        """Recompute the dirty months from their days, and their years (``lock`` held)."""
        state = await self._state(owner)
        dirty = [m for m in (state or {}).get("dirty", []) if isinstance(m, str)]
        if not dirty:
            return
        years: set[int] = set()
        for month in dirty:
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
            days = []
            day = start
            while day < next_month(start):
                days.append(day_id(owner, day))
                day += DAY
            sums, entries = empty_sums(), 0
            for doc in await self._read(days):
                day_plays = unpack_plays(doc.get("plays"))
                entries += len(day_plays)
                add_entries(day_plays.values(), sums)
            await self._write_sums(owner, "m", start, sums, entries)
            years.add(start.year)
        for year in sorted(years):
            start = datetime(year, 1, 1, tzinfo=UTC)
            sums, entries = empty_sums(), 0
            moment = start
            ids: list[str] = []
            while moment.year == year:
                ids.extend(_sum_id(owner, "m", moment, kind) for kind in KIND_FIELDS)
                moment = next_month(moment)
            for doc in await self._read(ids):
                unpack(doc.get("sums"), sums[doc["kind"]])
                entries += int(doc.get("entries", 0)) if doc["kind"] == "tracks" else 0
            await self._write_sums(owner, "y", start, sums, entries)
        await self.collection.update_one({"_id": _state_id(owner)}, {"$pullAll": {"dirty": dirty}})

    async def _write_sums(
        self, owner: ObjectId, level: str, start: datetime, sums: dict[str, Sums], entries: int
    ) -> None:
        """A month's or year's sums per kind, and how many counted plays it holds."""
        requests: list[ReplaceOne[Document]] = []
        for kind, by_id in sums.items():
            doc = {"owner": owner, "start": start, "kind": kind, "entries": entries}
            if by_id:
                doc["sums"] = pack(by_id)
            requests.append(
                ReplaceOne({"_id": _sum_id(owner, level, start, kind)}, doc, upsert=True)
            )
        await self.collection.bulk_write(requests, ordered=False)

    # ------------------------------------------------------------------ reads

    async def _state(self, owner: ObjectId) -> Document | None:
        return await self.collection.find_one({"_id": _state_id(owner)})

    async def _read(self, ids: Sequence[str]) -> list[Document]:
        """Documents by ``_id`` (one ``find_one`` each: the only lookup FerretDB indexes)."""
        found = await asyncio.gather(*(self.collection.find_one({"_id": i}) for i in ids))
        return [doc for doc in found if doc is not None]

    async def ranking(
        self,
        owner: ObjectId,
        kind: Kind,
        *,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        by_time: bool,
    ) -> list[tuple[str, int, int]] | None:
        """(id, plays, listening ms) of the top ``limit`` in [start, end), or None if stale.

        Ranked by plays or listening time, descending, ties by id ascending.
        """
        if not self.trusted:
            return None
        async with self.lock:
            state = await self._state(owner)
            if state is None or not _fresh(state):
                return None
            first, last = state.get("first_day"), state.get("last_day")
            if not isinstance(first, datetime) or not isinstance(last, datetime):
                return []
            # No play lies outside these days. Whole years before the first read fewer
            # documents; ending after the newest day leaves the month and year being
            # written (dirty after each live write) as days: no sums to redo first.
            first = day_start(first).replace(month=1, day=1)
            last = day_start(last) + DAY
            low = max(start, first) if start is not None else first
            high = min(end, last) if end is not None else last
            if low >= high:
                return []
            cut = pieces(low, high)
            if needs_months(cut, state.get("dirty")):
                await self._refresh(owner)
            sums = await self._sums(owner, kind, cut)
        value = 1 if by_time else 0
        best = heapq.nsmallest(limit, sums.items(), key=lambda item: (-item[1][value], item[0]))
        return [(key, row[0], row[1]) for key, row in best]

    async def _sums(self, owner: ObjectId, kind: Kind, cut: Sequence[Piece]) -> Sums:
        ids = [
            day_id(owner, piece.start)
            if piece.level in ("d", "part")
            else _sum_id(owner, piece.level, piece.start, kind)
            for piece in cut
        ]
        docs = {doc["_id"]: doc for doc in await self._read(ids)}
        sums: Sums = {}
        index = KIND_FIELDS[kind]
        for piece, doc_id in zip(cut, ids, strict=True):
            doc = docs.get(doc_id)
            if doc is None:
                continue
            if piece.level in ("y", "m"):
                unpack(doc.get("sums"), sums)
                continue
            for instant, entry in unpack_plays(doc.get("plays")).items():
                if piece.level == "part" and not piece.low_ms <= int(instant[1:]) < piece.high_ms:
                    continue
                key = entry[index]
                if isinstance(key, str):
                    row = sums.setdefault(key, [0, 0])
                    row[0] += 1
                    row[1] += int(entry[3])
        return sums

    async def agrees_with(self, owner: ObjectId, counted: int, writes_before: int) -> bool:
        """Whether true rollups hold ``counted`` plays (a recount's); marks them stale if not.

        Catches what no write of ours told them: another program's plays, a crash between
        a play's write and its rollup's. Stale or missing rollups agree (a rebuild is due),
        and so does a count during which days were written (``writes`` moved on).
        """
        async with self.lock:
            state = await self._state(owner)
            if state is None or not _fresh(state) or self.writes != writes_before:
                return True
            await self._refresh(owner)
            first, last = state.get("first_day"), state.get("last_day")
            total = 0
            if isinstance(first, datetime) and isinstance(last, datetime):
                years = range(first.year, last.year + 1)
                ids = [_sum_id(owner, "y", datetime(y, 1, 1, tzinfo=UTC), "tracks") for y in years]
                total = sum(int(doc.get("entries", 0)) for doc in await self._read(ids))
            if total == counted:
                return True
        await self.mark_stale(owner, None)
        return False


async def mark_stale(db: AsyncDatabase[Document], owner: ObjectId, since: datetime | None) -> None:
    """Plays of ``owner`` from ``since`` on (all when None) are about to change.

    Called before the change: a crash after it still leaves the mark.
    """
    await db[COLLECTION].update_one(
        {"_id": _state_id(owner)},
        {
            "$min": {"stale_from": day_start(since) if since is not None else EPOCH},
            "$inc": {"generation": 1},
            "$set": {"owner": owner},
        },
        upsert=True,
    )


def _fresh(state: Document | None) -> bool:
    return (
        state is not None
        and state.get("built") == LAYOUT
        and "stale_from" not in state
        and not state.get("pending")
    )


def _stale_since(state: Document | None, closed: Sequence[str]) -> datetime | None:
    """Where a rebuild starts: the oldest stale or closed pending day (None: everything)."""
    if state is None or state.get("built") != LAYOUT:
        return None
    pending = state.get("pending") or {}
    marks = [state.get("stale_from"), *(pending.get(token) for token in closed)]
    days = [mark for mark in marks if isinstance(mark, datetime)]
    oldest = min(days, default=None)
    return None if oldest is None or oldest <= EPOCH else oldest
