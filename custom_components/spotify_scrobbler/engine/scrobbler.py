"""One scrobbling cycle: window → new plays → missing metadata → ordered writes.

Plain asyncio (no Home Assistant imports): the coordinator runs it every 120 s and the
benchmark runs it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from pymongo.errors import PyMongoError

from .known_metadata import KnownMetadata
from .models import (
    DUPLICATE_WINDOW,
    CycleResult,
    CycleSummary,
    PlayDetails,
    from_unix_ms,
    to_unix_ms,
)
from .payload import ParsedItem, artist_document, as_utc, item_timing, parse_item
from .pending import PendingPlays
from .recent_plays import IMPORT_PAUSE_ALLOWANCE, RecentPlays
from .spotify import SpotifyClient, SpotifyError
from .stamp_modes import Neighbours, stamp_modes_among
from .store import Account, Document, ScrobbleStore

_LOGGER = logging.getLogger(__name__)

LOOKBACK: Final = timedelta(hours=2)  # the seed's overlap with the previous cycle
HISTORY_LIMIT: Final = 50  # Spotify keeps no more recently-played items than this
# A window holds at most 50 plays; what the setup cycle may put off stays bounded anyway.
MAX_DEFERRED_ARTISTS: Final = 500


class Scrobbler:
    """Runs cycles for one Spotify account."""

    def __init__(
        self,
        client: SpotifyClient,
        store: ScrobbleStore,
        account: Account,
        known: KnownMetadata | None = None,
        *,
        pending: PendingPlays | None = None,
        recent: RecentPlays | None = None,
    ) -> None:
        """Bind the account to its Spotify client, the store and its outbox content."""
        self.client = client
        self.store = store
        self.account = account
        self.known = known or KnownMetadata.empty()
        self.recent = recent if recent is not None else RecentPlays()
        self.pending = pending if pending is not None else PendingPlays()
        self._attempting: list[ParsedItem] = []  # the plays of the write under way
        # Instant -> length of recent items stored as no play (local files, episodes): they
        # tell how the client stamps the plays around them.
        self._neighbours = Neighbours(2 * HISTORY_LIMIT)
        # Set for the cycle that runs inside the entry's setup: its artist lookups (one
        # request per second per artist for a development-mode app) are put off, stubs are
        # stored meanwhile and enrich_deferred_artists looks them up in the background.
        self.defer_artist_lookups = False
        self._deferred_artists: list[str] = []
        # Set after a move to another database, until a cycle fetched and wrote: only its
        # own cursor says what it lacks (the waiting plays' would skip plays the old
        # database held, which Spotify may still return).
        self.fetch_from_cursor = False

    async def run_cycle(
        self, blacklisted_artists: Iterable[str] = (), *, hold_only: bool = False
    ) -> CycleResult:
        """Fetch the window, store new and waiting plays, and return what was stored.

        Spotify and MongoDB failures do not raise: they come back in the result, and plays
        that could not be written wait in ``pending`` for the next cycle. ``hold_only``
        fetches without writing (MongoDB is known to be unusable).
        """
        try:
            result = await self._cycle(set(blacklisted_artists), hold_only=hold_only)
        except BaseException:
            self.recent.forget()
            raise
        # A failed write keeps the cache: what it knows is still stored; the plays the write
        # tried are marked in the outbox and looked up by their instant next time.
        if result.storage_error is None and self.account.last_timestamp > 0:
            last = from_unix_ms(self.account.last_timestamp)
            self.recent.prune(last - LOOKBACK - DUPLICATE_WINDOW)
            self._neighbours.forget_before(last - LOOKBACK - DUPLICATE_WINDOW)
        if result.storage_error is None and result.fetch_error is None and not hold_only:
            self.fetch_from_cursor = False
        return result

    async def _cycle(self, blacklist: set[str], *, hold_only: bool) -> CycleResult:
        # Waiting plays count as seen: no need to fetch them again, nor to call them a gap.
        last_seen_ms = self.account.last_timestamp
        if not self.fetch_from_cursor:
            last_seen_ms = max(last_seen_ms, self.pending.newest_ms)
        after_ms = max(0, last_seen_ms - int(LOOKBACK.total_seconds() * 1000))
        raw_items: list[Any] = []
        fetch_error: SpotifyError | None = None
        try:
            raw_items = await self.client.recently_played(after_ms)
        except SpotifyError as err:
            fetch_error = err
        parsed = [p for item in raw_items if (p := parse_item(item, blacklist)) is not None]
        plays = {p.play.played_at for p in parsed}
        self._neighbours.note(
            timing
            for item in raw_items
            if (timing := item_timing(item)) is not None and timing[0] not in plays
        )
        summary = CycleSummary(items=len(raw_items), skipped=len(raw_items) - len(parsed))
        gap = None
        if parsed:
            oldest = min(p.play.played_at for p in parsed)
            gap = self._gap(len(raw_items), oldest, last_seen_ms)
        candidates = self.pending.merged_with(parsed)
        if not candidates:
            return CycleResult(summary=summary, fetch_error=fetch_error)
        if hold_only:
            self.pending.hold(c for c in candidates if self._must_wait(c))
            return CycleResult(gap=gap, summary=summary, fetch_error=fetch_error)
        try:
            new_plays, summary = await self._store(candidates, summary)
        except BaseException as err:
            # Nothing fetched may be lost: whatever is not known to be stored waits, and the
            # plays this write tried may be stored after all (a lost reply, or a cancel
            # mid-write by an unload): marked so.
            self.pending.hold(
                (c for c in candidates if self._must_wait(c)), attempted=self._attempting
            )
            if not isinstance(err, PyMongoError):
                raise
            _LOGGER.debug("MongoDB write failed, %s plays wait: %s", len(self.pending), err)
            return CycleResult(gap=gap, summary=summary, fetch_error=fetch_error, storage_error=err)
        self.pending.clear()
        return CycleResult(gap=gap, new_plays=new_plays, summary=summary, fetch_error=fetch_error)

    def _must_wait(self, item: ParsedItem) -> bool:
        """Whether a play stays in the outbox: not known stored, or stored but not announced.

        A play an unacknowledged write stored stays until a cycle announces it, even once
        the cache knows it is stored.
        """
        if self.pending.is_attempted(item):
            return True
        return not self.recent.has_play_near(item.play.track_id, item.play.played_at)

    async def _store(
        self, candidates: Sequence[ParsedItem], summary: CycleSummary
    ) -> tuple[tuple[PlayDetails, ...], CycleSummary]:
        """Write the candidates that are not stored yet; returns the inserted ones."""
        self._attempting = []
        new, recovered = await self._without_duplicates(candidates)
        newest = candidates[-1].play.played_at
        if not new and not recovered and to_unix_ms(newest) <= self.account.last_timestamp:
            # Idle cycle: nothing to write at all.
            return (), replace(summary, duplicates=len(candidates))

        artists, stubs, requests = await self._artist_documents(new)
        tracks = _unique_by_id(p.track for p in new if p.track["id"] not in self.known.tracks)
        albums = _unique_by_id(
            p.album for p in new if p.album is not None and p.album["id"] not in self.known.albums
        )
        self._attempting = new
        result = await self.store.write_cycle(
            self.account,
            tracks=tracks,
            albums=albums,
            artists=artists,
            artist_stubs=stubs,
            plays=[p.play for p in new],
            newest_played_at=newest,
            recovered=[p.play for p in recovered],
        )
        self._attempting = []
        self.known.tracks.add_all(doc["id"] for doc in tracks)
        self.known.albums.add_all(doc["id"] for doc in albums)
        self.known.artists.add_all(doc["id"] for doc in artists)
        # Every attempted play is settled now: stored (by this write or an earlier one), or
        # refused because another track's play holds its instant (logged). Not again.
        self.recent.add_all((p.play.track_id, p.play.played_at) for p in (*new, *recovered))

        inserted = set(result.inserted_plays)
        stored = sorted([*new, *recovered], key=lambda p: p.play.played_at)
        return tuple(p.details for p in stored if p.play in inserted), replace(
            summary,
            duplicates=len(candidates) - len(inserted),
            new_plays=len(inserted),
            new_tracks=result.new_tracks,
            new_albums=result.new_albums,
            new_artists=result.new_artists,
            enrichment_requests=requests,
            recovered=len(recovered) + result.resolved,
            foreign=result.foreign,
        )

    @staticmethod
    def _gap(
        item_count: int, oldest: datetime, last_seen_ms: int
    ) -> tuple[datetime, datetime] | None:
        """A full window that starts after the last play seen: plays may have been missed."""
        if last_seen_ms <= 0 or item_count < HISTORY_LIMIT or to_unix_ms(oldest) <= last_seen_ms:
            return None
        return from_unix_ms(last_seen_ms), oldest

    async def _without_duplicates(
        self, parsed: Sequence[ParsedItem]
    ) -> tuple[list[ParsedItem], list[ParsedItem]]:
        """(plays to write, plays an earlier unacknowledged write stored already).

        Applies the seed's ±30 s same-track rule against stored plays and within the batch.
        Stored plays only exist up to ``lastTimestamp`` (it moves after the plays are
        written) or an import's newest play near it, so MongoDB is asked only about items
        that close to it, and only for the part of the window the cache of recent plays
        does not cover yet: steady-state cycles need no query at all, whatever the size of
        the history. Plays whose write
        failed are looked up wherever they are: a lost reply may hide a stored play.
        """
        recent = self.recent
        last_ms = self.account.stored_until
        attempted = [p for p in parsed if self.pending.is_attempted(p)]
        unknown: list[datetime] = []
        start = end = None
        if last_ms > 0:
            last_stored = from_unix_ms(last_ms)
            unknown = [
                p.play.played_at
                for p in parsed
                if p.play.played_at - DUPLICATE_WINDOW <= last_stored
                and (
                    recent.complete_from is None
                    or p.play.played_at - DUPLICATE_WINDOW < recent.complete_from
                )
            ]
            if unknown:
                start, end = unknown[0] - DUPLICATE_WINDOW, last_stored
        if attempted:
            first, last = attempted[0].play.played_at, attempted[-1].play.played_at
            start = min(start or first, first - DUPLICATE_WINDOW)
            end = max(end or last, last + DUPLICATE_WINDOW)
        found: set[tuple[str, datetime]] = set()
        if start is not None and end is not None:
            stored = await self.store.plays_between(self.account.owner, start, end)
            found = {(track_id, as_utc(at)) for track_id, at, _ in stored}
            _remember(recent, stored)
            if unknown:
                recent.covered_from(unknown[0] - DUPLICATE_WINDOW)
        recovered = [p for p in attempted if (p.play.track_id, p.play.played_at) in found]
        return _select(parsed, recovered, recent, self._neighbours.timings()), recovered

    async def sort_waiting(self) -> tuple[frozenset[datetime], frozenset[datetime]]:
        """(waiting plays MongoDB lacks, waiting plays it holds already), by instant.

        Asked whenever the totals are read from MongoDB, so that the entities count each
        waiting play exactly once: those already held (an unacknowledged write, the history
        import) are in MongoDB's counts. The same rule as the next write, in one query.
        """
        items = self.pending.merged_with(())
        if not items:
            return frozenset(), frozenset()
        longest = max(timedelta(milliseconds=p.play.duration_ms) for p in items)
        start = items[0].play.played_at - DUPLICATE_WINDOW
        # An imported play's ts may lie up to a play (plus pauses) after a start-stamped one.
        end = items[-1].play.played_at + longest + IMPORT_PAUSE_ALLOWANCE + DUPLICATE_WINDOW
        known = RecentPlays()
        found = await self.store.plays_between(self.account.owner, start, end)
        _remember(known, found)
        held = {(track_id, as_utc(at)) for track_id, at, _ in found}
        recovered = [p for p in items if (p.play.track_id, p.play.played_at) in held]
        neighbours = self._neighbours.timings()
        new = {p.play.played_at for p in _select(items, recovered, known, neighbours)}
        return frozenset(new), frozenset(p.play.played_at for p in items) - new

    async def _artist_documents(
        self, new: Sequence[ParsedItem]
    ) -> tuple[list[Document], list[Document], int]:
        """(enriched artists to store, stubs for the rest, Spotify requests made)."""
        stubs = {a["id"]: a for p in new for a in p.artists}
        wanted = [artist_id for artist_id in stubs if artist_id not in self.known.artists]
        if not wanted:
            return [], [], 0
        stored = await self.store.enriched_artist_ids(wanted)
        self.known.artists.add_all(stored)
        missing = [artist_id for artist_id in wanted if artist_id not in stored]
        if not missing:
            return [], [], 0
        if self.defer_artist_lookups:
            room = MAX_DEFERRED_ARTISTS - len(self._deferred_artists)
            self._deferred_artists.extend(missing[: max(room, 0)])
            return [], [stubs[i] for i in missing], 0
        before = self.client.requests_made
        try:
            found = await self.client.lookup("artists", missing)
        except SpotifyError as err:
            # Plays matter more than genres: store stubs now, enrich when the artist recurs.
            _LOGGER.debug("artist enrichment failed (%s); storing stubs", err)
            found = []
        fetched = [
            artist_document(obj)
            for obj in found
            if isinstance(obj.get("id"), str) and obj["id"] in stubs
        ]
        requests = self.client.requests_made - before
        enriched = {doc["id"] for doc in fetched}
        return fetched, [stubs[i] for i in missing if i not in enriched], requests

    async def enrich_deferred_artists(self) -> int:
        """Look up the artists whose lookup the setup cycle put off; returns how many.

        A failure leaves their stubs, which a later cycle enriches when the artist plays again.
        """
        wanted = [i for i in dict.fromkeys(self._deferred_artists) if i not in self.known.artists]
        self._deferred_artists = []
        if not wanted:
            return 0
        try:
            found = await self.client.lookup("artists", wanted)
            docs = [artist_document(obj) for obj in found if obj.get("id") in wanted]
            await self.store.store_artists(docs)
        except (SpotifyError, PyMongoError) as err:
            _LOGGER.debug("Deferred artist lookups failed (%s); stubs stay", err)
            return 0
        self.known.artists.add_all(doc["id"] for doc in docs)
        return len(docs)


def _remember(recent: RecentPlays, stored: Iterable[tuple[str, datetime, int | None]]) -> None:
    """Cache stored plays: live ones as instants, imported ones as the span of their play.

    An imported play is matched to one live play through its span only: a repeat starting
    right after the export's ts is near it, yet another play.
    """
    for track_id, at, ms_played in stored:
        if ms_played is None:
            recent.add_all([(track_id, as_utc(at))])
        else:
            recent.add_imported(track_id, as_utc(at), ms_played)


def _select(
    parsed: Sequence[ParsedItem],
    recovered: Sequence[ParsedItem],
    recent: RecentPlays,
    neighbours: Iterable[tuple[datetime, int]],
) -> list[ParsedItem]:
    """The candidates no stored play, imported play or earlier candidate stands for.

    A candidate stored as a live play is itself and takes no imported play; the others are
    matched to imported plays (one each) before the ±30 s rule within the batch applies.
    """
    skip = {id(p) for p in recovered}
    stored = {id(p) for p in parsed if recent.has_play_near(p.play.track_id, p.play.played_at)}
    # Told by all the window's plays (stored ones and blacklisted ones included) and the
    # items stored as no play.
    modes = stamp_modes_among([(p.play.played_at, p.play.duration_ms) for p in parsed], neighbours)
    open_rows = [row for row, p in enumerate(parsed) if id(p) not in skip and id(p) not in stored]
    open_items = [parsed[row] for row in open_rows]
    imported = recent.match_imported(
        [(p.play.track_id, p.play.played_at) for p in open_items], [modes[row] for row in open_rows]
    )
    imported_ids = {id(open_items[index]) for index in imported}
    batch: dict[str, list[datetime]] = {}
    new: list[ParsedItem] = []
    for item in parsed:
        track_id, played_at = item.play.track_id, item.play.played_at
        if id(item) in skip:
            batch.setdefault(track_id, []).append(played_at)
            continue
        if id(item) in stored or id(item) in imported_ids:
            continue
        if any(abs(t - played_at) < DUPLICATE_WINDOW for t in batch.get(track_id, ())):
            continue
        batch.setdefault(track_id, []).append(played_at)
        new.append(item)
    return new


def _unique_by_id(docs: Iterable[Document | None]) -> list[Document]:
    unique: dict[str, Document] = {}
    for doc in docs:
        if doc is not None:
            unique.setdefault(doc["id"], doc)
    return list(unique.values())
