"""History import edges seen from Home Assistant: an export with nothing to import, an
enrichment that Spotify's authorization stops, a failed import followed by another one."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.spotify_scrobbler import import_manager
from custom_components.spotify_scrobbler.const import DOMAIN
from custom_components.spotify_scrobbler.engine import import_enrichment

from .conftest import MongoDb
from .export_fake import music_entry, podcast_entry, write_export
from .spotify_fake import Catalog, FakeSpotify

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
SENSOR = "sensor.scrobbler_test_history_import"


@pytest.fixture(autouse=True)
def fast_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """No enrichment budget wait, quick retries."""
    monkeypatch.setattr(import_enrichment, "ENRICH_INTERVAL", 0.0)
    monkeypatch.setattr(import_enrichment, "ENRICH_RETRY_DELAY", 0.01)
    monkeypatch.setattr(import_manager, "MONGO_RETRY_DELAY", 0.01)


@pytest.fixture
def export_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read."""
    folder = tmp_path / "my_spotify_data"
    folder.mkdir()
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return folder


async def run_import(hass: HomeAssistant, entry: MockConfigEntry, path: Path) -> None:
    """Call the action and wait until the import and its enrichment are done."""
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(path)},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)


def attributes(hass: HomeAssistant) -> dict[str, Any]:
    state = hass.states.get(SENSOR)
    assert state is not None
    return dict(state.attributes)


async def notification(hass: HomeAssistant, ws: WebSocketGenerator, entry_id: str) -> str:
    client = await ws(hass)
    await client.send_json_auto_id({"type": "persistent_notification/get"})
    answer = await client.receive_json()
    found = {n["notification_id"]: n for n in answer["result"]}
    return str(found[f"{DOMAIN}_import_{entry_id}"]["message"])


async def test_an_export_without_music_plays_imports_nothing_and_rebuilds_nothing(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    hass_storage: dict[str, Any],
) -> None:
    """Podcasts and skips only: finished, counted by reason, no statistics rebuild asked."""
    assert await async_setup_component(hass, "persistent_notification", {})
    track_id = next(iter(catalog.tracks))
    entries = [podcast_entry(START + timedelta(hours=n)) for n in range(3)] + [
        music_entry(catalog, track_id, START + timedelta(hours=5, minutes=n), 10_000)
        for n in range(2)
    ]
    write_export(export_dir, entries, per_file=10)
    entry = await setup_entry()

    await run_import(hass, entry, export_dir)

    attrs = attributes(hass)
    assert attrs["status"] == "finished"
    assert (attrs["read"], attrs["imported"], attrs["skipped_total"]) == (5, 0, 5)
    assert await mongo_db["infos"].count_documents({}) == 0
    assert f"{DOMAIN}.statistics.{entry.entry_id}" not in hass_storage
    message = await notification(hass, hass_ws_client, entry.entry_id)
    assert message.startswith("**0** plays imported")
    assert "fetched from Spotify in the background" not in message


async def test_enrichment_stopped_by_a_refused_token_resumes_after_reauthorization(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    export_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The import needs no Spotify; its enrichment stops at a refused token, queue kept.

    Once the user re-authorized (the entry is set up again), the queue is worked off.
    """
    tracks = sorted(catalog.tracks)[:3]
    entries = [
        music_entry(catalog, track_id, START + timedelta(minutes=5 * i), 100_000)
        for i, track_id in enumerate(tracks)
    ]
    write_export(export_dir, entries, per_file=10)
    entry = await setup_entry()
    fake_spotify.expire_access_tokens()
    fake_spotify.token_revoked = True

    await run_import(hass, entry, export_dir)

    assert "Metadata enrichment stopped: Spotify needs re-authorization" in caplog.text
    assert attributes(hass)["status"] == "finished"
    assert attributes(hass)["tracks_to_enrich"] == len(tracks)
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == len(tracks)
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == len(tracks)

    fake_spotify.token_revoked = False
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert attributes(hass)["tracks_to_enrich"] == 0
    assert await mongo_db["infos"].count_documents({"primaryArtistId": None}) == 0
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == 0


async def test_a_failed_import_of_another_path_is_completed_by_the_next_import(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Import A stored its plays, then MongoDB failed before the account learnt of them.

    The user imports another folder B next: the account still learns of A's plays (its
    first listening moves back to A's oldest play), not only of B's.
    """
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    tracks = sorted(catalog.tracks)[:2]
    older, newer = START - timedelta(days=400), START
    folders = {}
    for name, start in (("a", older), ("b", newer)):
        folders[name] = tmp_path / name
        entries = [
            music_entry(catalog, track_id, start + timedelta(minutes=5 * i), 100_000)
            for i, track_id in enumerate(tracks)
        ]
        write_export(folders[name], entries, per_file=10)
    entry = await setup_entry()

    async def mongodb_fails(*args: Any) -> None:
        raise AutoReconnect("MongoDB went away")

    with monkeypatch.context() as patch:
        patch.setattr(import_manager.HistoryImportManager, "_after_insert", mongodb_fails)
        await run_import(hass, entry, folders["a"])
    assert attributes(hass)["status"] == "failed"
    assert await mongo_db["infos"].count_documents({}) == 2  # stored, unannounced

    await run_import(hass, entry, folders["b"])
    assert attributes(hass)["status"] == "finished"
    assert await mongo_db["infos"].count_documents({}) == 4
    user = await mongo_db["users"].find_one({})
    assert user is not None
    first = user["firstListenedAt"].replace(tzinfo=UTC)
    assert first == older
