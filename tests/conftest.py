"""Shared fixtures: custom integrations enabled, one MongoDB database per test."""

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load custom_components/spotify_scrobbler in every test."""


@pytest.fixture
def mongodb_uri() -> str:
    """URI of the MongoDB-wire server started by scripts/test (or given by the user)."""
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.fail("MONGODB_URI is not set: run the tests through scripts/test")
    return uri


@pytest.fixture
async def mongo_db(
    mongodb_uri: str,
    socket_enabled: None,  # HA's test plugin blocks sockets; MongoDB is on 127.0.0.1
) -> AsyncIterator[AsyncDatabase[dict[str, object]]]:
    """A database of its own for one test, dropped afterwards."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
