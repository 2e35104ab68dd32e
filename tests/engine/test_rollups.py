"""Rollups against a brute-force count of what ``infos`` holds, through generated changes.

The oracle reads every play document back from MongoDB and counts in Python, so whatever a
change did to ``infos`` (live writes, late plays, blacklisting, enrichment, another
program's plays, a change cut short), the rollups must rank exactly like it afterwards.
"""

import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect, BulkWriteError

from custom_components.spotify_scrobbler.engine import rollups as rollups_module
from custom_components.spotify_scrobbler.engine.blacklist import apply_blacklist
from custom_components.spotify_scrobbler.engine.enrichment_writes import restore_staged
from custom_components.spotify_scrobbler.engine.history_import import STAGING_COLLECTION
from custom_components.spotify_scrobbler.engine.models import Play
from custom_components.spotify_scrobbler.engine.rollup_parts import (
    KIND_FIELDS,
    needs_months,
    pieces,
)
from custom_components.spotify_scrobbler.engine.rollups import RollupStore
from custom_components.spotify_scrobbler.engine.store import Account, ScrobbleStore
from tests.conftest import MongoDb

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
KEYS = {"tracks": "id", "artists": "primaryArtistId", "albums": "albumId"}
TRACKS = [(f"track{i:02d}", f"album{i % 7}", f"artist{i % 5}") for i in range(30)]


def play_document(owner: ObjectId, rng: random.Random, played_at: datetime) -> dict[str, Any]:
    """An ``infos`` document in Your Spotify's schema; some without album, some blacklisted."""
    track, album, artist = rng.choice(TRACKS)
    doc: dict[str, Any] = {
        "owner": owner,
        "id": track,
        "albumId": None if rng.random() < 0.05 else album,
        "primaryArtistId": artist,
        "artistIds": [artist],
        "durationMs": rng.choice((120_000, 180_000, 240_000)),
        "played_at": played_at.replace(microsecond=played_at.microsecond // 1000 * 1000),
    }
    if rng.random() < 0.05:
        doc["blacklistedBy"] = ["artist"]
    return doc


def history(owner: ObjectId, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Plays over 2.5 years (three new years, month and day ends crossed), denser lately."""
    moments = [NOW - timedelta(days=rng.uniform(0, 900)) for _ in range(count // 2)]
    moments += [NOW - timedelta(hours=rng.uniform(0, 24 * 60)) for _ in range(count // 2)]
    docs = {doc["played_at"]: doc for doc in (play_document(owner, rng, m) for m in moments)}
    return list(docs.values())


async def brute_force(
    mongo_db: MongoDb,
    owner: ObjectId,
    kind: str,
    start: datetime | None,
    end: datetime | None,
    *,
    by_time: bool,
    limit: int,
) -> list[tuple[str, int, int]]:
    """(id, plays, ms) ranked from every stored document, counted in Python."""
    counts: dict[str, list[int]] = {}
    async for doc in mongo_db["infos"].find({"owner": owner}):
        key, at = doc.get(KEYS[kind]), doc["played_at"]
        if "blacklistedBy" in doc or not isinstance(key, str):
            continue
        if (start is not None and at < start) or (end is not None and at >= end):
            continue
        row = counts.setdefault(key, [0, 0])
        row[0] += 1
        row[1] += doc["durationMs"]
    value = 1 if by_time else 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1][value], item[0]))
    return [(key, row[0], row[1]) for key, row in ranked[:limit]]


def periods(rng: random.Random) -> list[tuple[datetime | None, datetime | None]]:
    """All time, calendar edges in UTC and elsewhere, and random spans of any length."""
    edges = [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
        datetime(2026, 12, 6, 23, tzinfo=UTC),  # midnight in Berlin
    ]
    spans: list[tuple[datetime | None, datetime | None]] = [(None, None), (None, edges[1])]
    spans += [(edge, None) for edge in edges]
    for _ in range(12):
        start = NOW - timedelta(days=rng.uniform(0, 950))
        spans.append((start, start + timedelta(days=rng.choice((0.02, 1.5, 20, 200, 700)))))
    return spans


async def assert_exact(
    rollups: RollupStore,
    mongo_db: MongoDb,
    owner: ObjectId,
    rng: random.Random,
    steps_done: tuple[str, ...] = (),
) -> None:
    """Every kind, order and generated period ranks as the brute-force count does."""
    for start, end in periods(rng):
        for kind in KIND_FIELDS:
            by_time = rng.random() < 0.5
            got = await rollups.ranking(owner, kind, start=start, end=end, limit=8, by_time=by_time)
            expected = await brute_force(
                mongo_db, owner, kind, start, end, by_time=by_time, limit=8
            )
            assert got == expected, (kind, start, end, by_time, steps_done)


async def built(mongo_db: MongoDb, count: int, seed: int) -> tuple[RollupStore, ObjectId]:
    owner = ObjectId()
    rng = random.Random(seed)  # noqa: S311 -- test data
    await mongo_db["infos"].insert_many(history(owner, rng, count))
    await mongo_db["infos"].insert_many(history(ObjectId(), rng, 40))
    rollups = RollupStore(mongo_db)
    everything = {"start": None, "end": None, "limit": 5, "by_time": False}
    assert await rollups.ranking(owner, "tracks", **everything) is None  # not built yet
    assert await rollups.rebuild(owner)
    return rollups, owner


def test_periods_are_cut_into_whole_years_months_and_days() -> None:
    """The fewest whole pieces, and partial days only at the edges."""
    cut = pieces(datetime(2024, 12, 30, 10, tzinfo=UTC), datetime(2026, 3, 2, 5, tzinfo=UTC))
    assert [(p.level, f"{p.start:%Y-%m-%d}") for p in cut] == [
        ("part", "2024-12-30"),
        ("d", "2024-12-31"),
        ("y", "2025-01-01"),
        ("m", "2026-01-01"),
        ("m", "2026-02-01"),
        ("d", "2026-03-01"),
        ("part", "2026-03-02"),
    ]
    inside = pieces(datetime(2026, 5, 1, 1, tzinfo=UTC), datetime(2026, 5, 1, 2, tzinfo=UTC))
    assert [p.level for p in inside] == ["part"]


def test_only_sums_a_cut_reads_wait_for_their_dirty_months() -> None:
    """A dirty month matters to a cut that reads its sums or its year's, not to its days."""
    cut = pieces(datetime(2024, 12, 30, 10, tzinfo=UTC), datetime(2026, 3, 2, 5, tzinfo=UTC))
    assert needs_months(cut, ["2025-07"])  # inside the whole year 2025
    assert needs_months(cut, ["2026-02"])  # a whole month
    assert not needs_months(cut, ["2026-03", "2024-12", "2027-01"])  # read as days only
    assert not needs_months(cut, [])
    assert not needs_months(cut, None)


@pytest.mark.parametrize("seed", [1, 2])
async def test_rebuilt_rollups_rank_like_a_brute_force_count(mongo_db: MongoDb, seed: int) -> None:
    """Built from infos: every period, kind and order exact (another owner's plays apart)."""
    rollups, owner = await built(mongo_db, 500, seed)
    await assert_exact(rollups, mongo_db, owner, random.Random(seed))  # noqa: S311


@dataclass(slots=True)
class Changes:
    """The changes to plays the integration makes (and one it does not), generated."""

    mongo_db: MongoDb
    store: ScrobbleStore
    account: Account
    rng: random.Random

    @property
    def owner(self) -> ObjectId:
        """The account's owner id."""
        return self.account.owner

    async def live(self) -> None:
        """A live write: a new play, or one shown late (up to 3 days back)."""
        rng = self.rng
        late = rng.random() < 0.4
        delta = timedelta(minutes=rng.uniform(1, 600))
        if late:
            delta = -timedelta(days=rng.uniform(0, 3))
        track, album, artist = rng.choice(TRACKS)
        play = Play(track, (NOW + delta).replace(microsecond=0), album, (artist,), 200_000)
        await self.store.write_cycle(
            self.account,
            tracks=[],
            albums=[],
            artists=[],
            artist_stubs=[],
            plays=[play],
            newest_played_at=play.played_at,
        )

    async def blacklist(self) -> None:
        """The blacklist option changes (artists added, or dropped and counted again)."""
        artists = self.rng.sample([a for _, _, a in TRACKS], self.rng.randint(0, 2))
        await apply_blacklist(self.mongo_db, self.owner, artists, _no_change)

    async def enrich(self) -> None:
        """What an enrichment flush does: announce, change documents, set them, close."""
        infos, rollups = self.mongo_db["infos"], self.store.rollups
        docs = await infos.find({"owner": self.owner, "albumId": None}).to_list()
        if not docs:
            return
        token = await rollups.begin(self.owner, min(doc["played_at"] for doc in docs))
        for doc in docs:
            doc["albumId"] = "album-found"
            await infos.replace_one({"_id": doc["_id"]}, doc)
        await rollups.set_documents(self.owner, docs)
        await rollups.end(self.owner, token)

    async def cut_short(self) -> None:
        """A change announced, made, and never closed (a crash)."""
        rollups = self.store.rollups
        token = await rollups.begin(self.owner, NOW - timedelta(days=self.rng.uniform(0, 800)))
        await self.mongo_db["infos"].delete_one({"owner": self.owner, "played_at": {"$lt": NOW}})
        rollups.abandon(token)  # what a failed change does (a crash: another process)

    async def foreign(self) -> None:
        """Another program's plays, found by a recount."""
        with contextlib.suppress(BulkWriteError):  # an instant already taken
            await self.mongo_db["infos"].insert_many(
                history(self.owner, self.rng, 6), ordered=False
            )
        counted = await self.mongo_db["infos"].count_documents(
            {"owner": self.owner, "blacklistedBy": {"$exists": False}}
        )
        rollups = self.store.rollups
        assert not await rollups.agrees_with(self.owner, counted, rollups.writes)


@pytest.mark.parametrize("seed", [3, 4, 5])
async def test_rollups_stay_exact_through_generated_changes(mongo_db: MongoDb, seed: int) -> None:
    """Live and late writes, blacklisting and its undoing, enrichment, another program's
    plays, a change cut short: in a generated order, each checked against the oracle."""
    store = ScrobbleStore(mongo_db)
    await store.ensure_indexes()  # one play per instant, as in every set-up database
    account = await store.load_account("someone", "Someone", [])
    await mongo_db["infos"].insert_many(history(account.owner, random.Random(seed), 300))  # noqa: S311
    assert await store.rollups.rebuild(account.owner)
    rng = random.Random(seed)  # noqa: S311 -- test data
    changes = Changes(mongo_db, store, account, rng)
    steps = [changes.live, changes.live, changes.blacklist, changes.enrich]
    steps += [changes.cut_short, changes.foreign]
    done: list[str] = []
    for _ in range(8):
        step = rng.choice(steps)
        done.append(step.__name__)
        await step()
        ranked = await store.rollups.ranking(
            account.owner, "tracks", start=None, end=None, limit=1, by_time=False
        )
        if ranked is None:
            assert await store.rollups.rebuild(account.owner)
        await assert_exact(store.rollups, mongo_db, account.owner, rng, tuple(done))


async def _no_change(_oldest: datetime) -> None:
    return None


async def test_a_month_whose_changed_plays_all_vanish_is_summed_again(mongo_db: MongoDb) -> None:
    """A rebuild from mid-month that finds no play left there still redoes that month."""
    owner = ObjectId()
    kept, dropped = (
        {"owner": owner, "id": t, "primaryArtistId": a, "albumId": None, "durationMs": 1000}
        for t, a in (("track-a", "artist-a"), ("track-b", "artist-b"))
    )
    await mongo_db["infos"].insert_many(
        [
            kept | {"played_at": datetime(2026, 11, 10, tzinfo=UTC)},
            dropped | {"played_at": datetime(2026, 11, 20, tzinfo=UTC)},
            kept | {"played_at": datetime(2026, 12, 5, tzinfo=UTC)},  # November is whole
        ]
    )
    await mongo_db["users"].insert_one({"_id": owner, "spotifyId": "someone"})
    rollups = RollupStore(mongo_db)
    assert await rollups.rebuild(owner)
    assert await apply_blacklist(mongo_db, owner, ["artist-b"], _no_change)
    assert await rollups.rebuild(owner)
    november = {
        "start": datetime(2026, 11, 1, tzinfo=UTC),
        "end": datetime(2026, 12, 1, tzinfo=UTC),
    }
    ranked = await rollups.ranking(owner, "artists", limit=5, by_time=False, **november)
    assert ranked == [("artist-a", 1, 1000)]


async def test_plays_put_back_after_a_rebuild_make_the_rollups_stale(mongo_db: MongoDb) -> None:
    """A flush cut short after its delete; a rebuild reads infos without its plays; putting
    them back (at the next step or import) must not leave the rollups short of them."""
    store = ScrobbleStore(mongo_db)
    owner = ObjectId()
    docs = history(owner, random.Random(9), 30)  # noqa: S311 -- test data
    await mongo_db["infos"].insert_many(docs)
    assert await store.rollups.rebuild(owner)
    staged = docs[:4]
    token = await store.rollups.begin(owner, min(doc["played_at"] for doc in staged))
    await mongo_db[STAGING_COLLECTION].insert_many(staged)
    await mongo_db["infos"].delete_many({"_id": {"$in": [doc["_id"] for doc in staged]}})
    store.rollups.abandon(token)
    assert await store.rollups.rebuild(owner)

    await restore_staged(store, owner)

    everything = {"start": None, "end": None, "limit": 5, "by_time": False}
    assert await store.rollups.ranking(owner, "tracks", **everything) is None
    assert await store.rollups.rebuild(owner)
    await assert_exact(store.rollups, mongo_db, owner, random.Random(9))  # noqa: S311


async def test_no_ranking_from_rollups_while_a_change_is_open_or_a_rebuild_was_cut(
    mongo_db: MongoDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild neither clears a change still under way nor leaves deleted days trusted
    when it stops half-way (a cancel at unload, a MongoDB failure)."""
    store = ScrobbleStore(mongo_db)
    owner = ObjectId()
    await mongo_db["infos"].insert_many(history(owner, random.Random(11), 40))  # noqa: S311
    rollups = store.rollups
    assert await rollups.rebuild(owner)
    everything = {"start": None, "end": None, "limit": 5, "by_time": False}

    token = await rollups.begin(owner, NOW - timedelta(days=30))
    await rollups.mark_stale(owner, NOW - timedelta(days=60))
    assert not await rollups.rebuild(owner)  # rebuilt, but the open change keeps it stale
    assert await rollups.ranking(owner, "tracks", **everything) is None
    await rollups.end(owner, token)
    assert await rollups.ranking(owner, "tracks", **everything) is not None

    async def cut(*_: object) -> list[datetime]:
        raise AutoReconnect("gone mid-rebuild")

    await rollups.mark_stale(owner, NOW - timedelta(days=2))
    monkeypatch.setattr(rollups_module, "write_days", cut)
    with pytest.raises(AutoReconnect):
        await rollups.rebuild(owner)
    assert await rollups.ranking(owner, "tracks", **everything) is None
    monkeypatch.undo()
    assert await rollups.rebuild(owner)
    await assert_exact(rollups, mongo_db, owner, random.Random(11))  # noqa: S311
