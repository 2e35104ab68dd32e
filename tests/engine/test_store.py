"""The store on its own against MongoDB: what it refuses, and documents it cannot use."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from custom_components.spotify_scrobbler.engine.models import Play
from custom_components.spotify_scrobbler.engine.store import Account, IndexReport, ScrobbleStore
from tests.conftest import MongoDb

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_duplicate_play_instants_are_reported_not_raised(mongo_db: MongoDb) -> None:
    """Older importers' duplicates: counted for the repair issue, scrobbling goes on."""
    owner = ObjectId()
    await mongo_db["infos"].insert_many(
        [{"owner": owner, "id": "t", "played_at": AT} for _ in range(3)]
    )
    assert await ScrobbleStore(mongo_db).ensure_indexes() == IndexReport(duplicate_plays=3)


async def test_another_programs_non_unique_play_index_is_reported_and_kept(
    mongo_db: MongoDb,
) -> None:
    """A non-unique (owner, played_at) index made by another program: named, never dropped."""
    await mongo_db["infos"].create_index([("owner", 1), ("played_at", 1)], name="theirs")
    store = ScrobbleStore(mongo_db)
    assert await store.ensure_indexes() == IndexReport(foreign_index="theirs")
    indexes = await (await mongo_db["infos"].list_indexes()).to_list()
    assert {index["name"] for index in indexes} >= {"theirs", "id_1", "played_at_1"}
    # The rest of the indexes were built after it.
    assert {
        index["name"] for index in await (await mongo_db["artists"].list_indexes()).to_list()
    } == {
        "_id_",
        "id_1",
    }


async def test_duplicate_metadata_documents_fail_the_indexes(mongo_db: MongoDb) -> None:
    """Two documents of one track are not a known situation to work around: it is an error."""
    await mongo_db["tracks"].insert_many([{"id": "same"}, {"id": "same"}])
    with pytest.raises(OperationFailure):
        await ScrobbleStore(mongo_db).ensure_indexes()


async def test_malformed_play_documents_are_skipped_when_reading_a_window(
    mongo_db: MongoDb, caplog: pytest.LogCaptureFixture
) -> None:
    """A foreign document without a track id or instant does not break the duplicate check."""
    owner = ObjectId()
    await mongo_db["infos"].insert_many(
        [
            {"owner": owner, "id": "good", "played_at": AT},
            {
                "owner": owner,
                "id": "imported",
                "played_at": AT + timedelta(minutes=1),
                "scrobbler_ms_played": 61_000,
            },
            {"owner": owner, "id": 42, "played_at": AT + timedelta(minutes=2)},
            {"owner": owner, "played_at": AT + timedelta(minutes=3)},
        ]
    )
    found = await ScrobbleStore(mongo_db).plays_between(owner, AT, AT + timedelta(hours=1))
    assert sorted(found) == [
        ("good", AT, None),
        ("imported", AT + timedelta(minutes=1), 61_000),
    ]
    assert caplog.text.count("Skipping a malformed play document") == 2


async def test_accounts_racing_to_store_the_same_new_tracks_all_succeed(mongo_db: MongoDb) -> None:
    """Accounts that scrobble the same new tracks at once (one store each): all writes succeed.

    Racing upserts of a new document made FerretDB answer in a way PyMongo cannot read
    (KeyError 'nModified': 7 of 8 such cycles failed); the stores share a lock instead.
    """
    lock = asyncio.Lock()
    stores = [ScrobbleStore(mongo_db, lock) for _ in range(8)]
    await stores[0].ensure_indexes()
    accounts = [
        (store, await store.load_account(f"user{n}", f"User {n}", []))
        for n, store in enumerate(stores)
    ]

    async def cycle(store: ScrobbleStore, account: Account, round_: int) -> None:
        ids = [f"r{round_}t{n}" for n in range(20)]
        await store.write_cycle(
            account,
            tracks=[{"id": track_id, "name": track_id} for track_id in ids],
            albums=[{"id": f"r{round_}album", "name": "A"}],
            artists=[{"id": f"r{round_}artist", "name": "B"}],
            artist_stubs=[],
            plays=[Play(ids[0], AT + timedelta(minutes=round_), None, (), 200_000)],
            newest_played_at=AT + timedelta(minutes=round_),
        )

    for round_ in range(10):
        await asyncio.gather(*(cycle(store, account, round_) for store, account in accounts))

    assert await mongo_db["tracks"].count_documents({}) == 200
    assert await mongo_db["albums"].count_documents({}) == 10
    assert await mongo_db["infos"].count_documents({}) == 80
