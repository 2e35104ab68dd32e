"""Shared fixtures: custom integrations, one MongoDB database per test, a fake Spotify."""

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.spotify_scrobbler.const import (
    CONF_DATABASE,
    CONF_REQUEST_SPACING,
    CONF_URI,
    DOMAIN,
)
from custom_components.spotify_scrobbler.engine import spotify as spotify_module

from .ferretdb_process import FerretDBProcess, launcher_path
from .mongo_proxy import MongoProxy, proxy_for
from .spotify_fake import Catalog, FakeSpotify

MongoDb = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Pin HA's snapshot extension so both HA pins read the same tests/snapshots folder.

    The two phcc versions otherwise disagree on the folder, and syrupy fails the run on the
    pin that sees the other folder's snapshot as unused.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load custom_components/spotify_scrobbler in every test that starts HA.

    Tests of the engine alone (tests/engine) start no Home Assistant at all.
    """
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


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
) -> AsyncIterator[MongoDb]:
    """A database of its own for one test, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def own_ferretdb(tmp_path: Path, socket_enabled: None) -> AsyncIterator[FerretDBProcess]:
    """A running FerretDB of this test's own, which the test may kill and restart."""
    binary = launcher_path()
    if binary is None:
        pytest.fail("FERRETDB_LAUNCHER is not set: run the tests through scripts/test")
    server = FerretDBProcess(binary, tmp_path / "ferretdb")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture
def catalog() -> Catalog:
    """The standard deterministic catalogue."""
    return Catalog.generate(seed=7)


@pytest.fixture
async def fake_spotify(
    catalog: Catalog, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeSpotify]:
    """Spotify's Web API and token endpoint on 127.0.0.1, wired into the integration."""
    fake = FakeSpotify(catalog, now=dt_util.utcnow())
    await fake.start()
    monkeypatch.setattr("custom_components.spotify_scrobbler.SPOTIFY_API_BASE", fake.api_url)
    monkeypatch.setattr(
        "custom_components.spotify_scrobbler.config_flow.SPOTIFY_API_BASE", fake.api_url
    )
    monkeypatch.setattr(
        "custom_components.spotify_scrobbler.application_credentials.SPOTIFY_TOKEN_URL",
        fake.token_url,
    )
    # Retries back off for seconds in production; keep the tests fast.
    monkeypatch.setattr(spotify_module, "BACKOFF_BASE", 0.01)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def credentials(hass: HomeAssistant) -> None:
    """The user's Spotify app, as entered under Application credentials."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential("client-id", "client-secret"), DOMAIN
    )


def make_entry(
    fake: FakeSpotify,
    mongo_db: MongoDb,
    *,
    unique_id: str | None = None,
    options: dict[str, Any] | None = None,
    expires_in: float = 3600,
    uri: str | None = None,
) -> MockConfigEntry:
    """A config entry as the config flow creates it, pointing at the fake and the test DB."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=fake.display_name,
        unique_id=unique_id or fake.user_id,
        data={
            "auth_implementation": DOMAIN,
            "token": {
                "access_token": fake.access_token,
                "refresh_token": fake.refresh_token,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "expires_at": time.time() + expires_in,
                "scope": "user-read-recently-played",
            },
            CONF_URI: uri or os.environ["MONGODB_URI"],
            CONF_DATABASE: mongo_db.name,
        },
        options={CONF_REQUEST_SPACING: 0, **(options or {})},
    )


@pytest.fixture
def setup_entry(
    hass: HomeAssistant, credentials: None, fake_spotify: FakeSpotify, mongo_db: MongoDb
) -> Callable[..., Awaitable[MockConfigEntry]]:
    """Add an entry and set it up; returns it (its state tells whether setup worked)."""

    async def _setup(**kwargs: Any) -> MockConfigEntry:
        entry = make_entry(fake_spotify, mongo_db, **kwargs)
        entry.add_to_hass(hass)
        await hass.config_entries.async_setup(entry.entry_id)
        # The setup cycle's artist lookups (and other follow-ups) run as background tasks.
        await hass.async_block_till_done(wait_background_tasks=True)
        return entry

    return _setup


def next_poll() -> timedelta:
    """Slightly more than the 120 s polling period."""
    return timedelta(seconds=121)


@pytest.fixture
async def proxy(mongodb_uri: str, socket_enabled: None) -> AsyncIterator[MongoProxy]:
    """The test server behind a wire-protocol proxy that can lose replies or play dead."""
    server = proxy_for(mongodb_uri)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
