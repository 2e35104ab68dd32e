"""The test MongoDB-wire server behaves like MongoDB for what the integration relies on."""

from datetime import UTC, datetime

import pytest
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


async def test_ping(mongo_db: AsyncDatabase[dict[str, object]]) -> None:
    """The server answers a ping through PyMongo's async client."""
    assert (await mongo_db.client.admin.command("ping"))["ok"] == 1


async def test_unique_index_rejects_duplicates(
    mongo_db: AsyncDatabase[dict[str, object]],
) -> None:
    """A unique (owner, played_at) index stores a play once and refuses it the second time."""
    infos = mongo_db["infos"]
    name = await infos.create_index([("owner", ASCENDING), ("played_at", ASCENDING)], unique=True)
    indexes = {index["name"]: index async for index in await infos.list_indexes()}
    assert indexes[name].get("unique") is True

    played_at = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
    await infos.insert_one(
        {"owner": "alice", "played_at": played_at, "id": "4uLU6hMCjMI75M1A2tKUQC"}
    )
    stored = await infos.find_one({"owner": "alice"}, {"_id": 0})
    assert stored == {
        "owner": "alice",
        "played_at": played_at,
        "id": "4uLU6hMCjMI75M1A2tKUQC",
    }

    with pytest.raises(DuplicateKeyError):
        await infos.insert_one({"owner": "alice", "played_at": played_at, "id": "other"})
    # Another account may play at the same instant.
    await infos.insert_one({"owner": "bob", "played_at": played_at, "id": "other"})
    assert await infos.count_documents({}) == 2


async def test_each_test_gets_its_own_database(
    mongo_db: AsyncDatabase[dict[str, object]],
) -> None:
    """The fixture hands out an empty, uniquely named database."""
    assert mongo_db.name.startswith("test_")
    assert await mongo_db.list_collection_names() == []
