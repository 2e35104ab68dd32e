"""The packed day documents of the rollups: their format, the days kept between writes,
and the state that says which layout built them (real MongoDB-wire server)."""

import random
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from custom_components.spotify_scrobbler.engine import rollup_days as rollup_days_module
from custom_components.spotify_scrobbler.engine import rollups as rollups_module
from custom_components.spotify_scrobbler.engine.models import Play
from custom_components.spotify_scrobbler.engine.rollup_days import (
    DayCache,
    day_id,
    pack_plays,
    play_key,
    unpack_plays,
)
from custom_components.spotify_scrobbler.engine.rollups import RollupStore
from tests.conftest import MongoDb
from tests.engine.test_rollups import NOW, assert_exact, history

EVERYTHING = {"start": None, "end": None, "limit": 5, "by_time": False}


def test_days_pack_and_unpack_every_entry() -> None:
    """Missing ids stay missing; an id that would break the format (another program's) is
    left out of its kind, as counting skips it anyway; lengths are whole ms."""
    plays = {
        "t1": ["track", "artist", "album", 180_000],
        "t2": [None, "artist", None, 0],
        "t3": ["bad\tid", "line\nbreak", "album", 1.0],
    }
    assert unpack_plays(pack_plays(plays)) == {
        "t1": ["track", "artist", "album", 180_000],
        "t2": [None, "artist", None, 0],
        "t3": [None, None, "album", 1],
    }
    assert unpack_plays(pack_plays({})) == {} == unpack_plays(None)


def test_the_days_kept_are_bounded_and_handed_out_as_copies() -> None:
    """The least recently used day goes first; a caller changing its copy changes nothing."""
    cache = DayCache(limit=2)
    cache.put("a", {"t1": ["x", None, None, 1]})
    cache.put("b", {})
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", {})
    assert cache.get("b") is None
    copy = cache.get("a")
    assert copy is not None
    copy.clear()
    assert cache.get("a") == {"t1": ["x", None, None, 1]}
    cache.forget(["a"])
    assert cache.get("a") is None
    cache.forget()
    assert cache.get("c") is None


async def test_rollups_of_the_earlier_day_layout_are_rebuilt(mongo_db: MongoDb) -> None:
    """Days written one field per play (before 2026-12-08) are never read as packed: the
    state says which layout built them, and any other one means a rebuild."""
    owner = ObjectId()
    await mongo_db["infos"].insert_many(history(owner, random.Random(12), 40))  # noqa: S311
    rollups = RollupStore(mongo_db)
    assert await rollups.rebuild(owner)
    assert await rollups.ranking(owner, "tracks", **EVERYTHING)
    # What the earlier layout left behind: "built": true, and days of fields.
    await rollups.collection.update_one({"_id": f"{owner}:state"}, {"$set": {"built": True}})
    day = await rollups.collection.find_one({"owner": owner, "plays": {"$type": "string"}})
    assert day is not None
    fields = unpack_plays(day["plays"])
    await rollups.collection.update_one({"_id": day["_id"]}, {"$set": {"plays": fields}})

    assert await rollups.ranking(owner, "tracks", **EVERYTHING) is None
    assert await rollups.rebuild(owner)
    await assert_exact(rollups, mongo_db, owner, random.Random(12))  # noqa: S311


async def test_a_day_whose_write_reply_was_lost_is_read_again(
    mongo_db: MongoDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write may have changed the day or not: the next write of that day reads it
    again instead of building on the copy kept from before (which would drop the play)."""
    owner = ObjectId()
    rollups = RollupStore(mongo_db)
    assert await rollups.rebuild(owner)
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    plays = [
        Play(f"track{n}", day + timedelta(hours=n), "album", ("artist",), 1000) for n in range(3)
    ]
    real_write = rollups.collection.bulk_write

    async def reply_lost(*args: object, **kwargs: object) -> object:
        await real_write(*args, **kwargs)  # type: ignore[arg-type]
        raise AutoReconnect("connection closed before the reply")

    async with rollups.lock:
        await rollups.add_plays(owner, plays[:1], await rollups.begin(owner, day))
        monkeypatch.setattr(rollups.collection, "bulk_write", reply_lost)
        with pytest.raises(AutoReconnect):
            await rollups.add_plays(owner, plays[1:2], await rollups.begin(owner, day))
        monkeypatch.undo()
        await rollups.add_plays(owner, plays[2:], await rollups.begin(owner, day))

    stored = await rollups.collection.find_one({"_id": day_id(owner, day)})
    assert stored is not None
    assert sorted(unpack_plays(stored["plays"])) == sorted(play_key(p.played_at) for p in plays)


async def test_a_day_kept_at_setup_holds_what_was_stored(mongo_db: MongoDb) -> None:
    """The day read at setup is the day as stored: the next live write adds to its plays
    (the benchmark counts the read it saves; this checks that nothing is lost by it)."""
    owner = ObjectId()
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    plays = [
        Play(f"track{n}", day + timedelta(hours=n), "album", ("artist",), 1000) for n in range(3)
    ]
    first = RollupStore(mongo_db)
    assert await first.rebuild(owner)
    async with first.lock:
        await first.add_plays(owner, plays[:2], await first.begin(owner, day))

    restarted = RollupStore(mongo_db)
    await restarted.keep_day(owner, day + timedelta(hours=5))
    await restarted.keep_day(owner, day + timedelta(days=1))  # nothing stored there yet
    async with restarted.lock:
        await restarted.add_plays(owner, plays[2:], await restarted.begin(owner, day))

    stored = await restarted.collection.find_one({"_id": day_id(owner, day)})
    assert stored is not None
    assert sorted(unpack_plays(stored["plays"])) == sorted(play_key(p.played_at) for p in plays)
    ranked = await restarted.ranking(owner, "artists", **EVERYTHING)
    assert ranked == [("artist", 3, 3000)]


async def test_a_change_set_during_a_rebuild_makes_it_start_again(
    mongo_db: MongoDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import or enrichment begun outside the lock may read a day before the rebuild
    (which writes days without the lock) replaces it, and write it back short: the rebuild
    must not then call the rollups true; its next attempt sets every day again."""
    owner = ObjectId()
    docs = history(owner, random.Random(13), 60)  # noqa: S311 -- test data
    await mongo_db["infos"].insert_many(docs)
    rollups = RollupStore(mongo_db)
    real_write_days = rollup_days_module.write_days
    attempts: list[int] = []

    async def with_an_import_batch(*args: object) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            await rollups.set_documents(owner, docs[:3])  # an import batch meanwhile
        return await real_write_days(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rollups_module, "write_days", with_an_import_batch)
    assert await rollups.rebuild(owner)
    assert len(attempts) == 2  # the first attempt's result was not trusted
    await assert_exact(rollups, mongo_db, owner, random.Random(13))  # noqa: S311
