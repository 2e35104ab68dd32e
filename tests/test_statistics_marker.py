"""An unreadable statistics marker: the statistics are rebuilt in full, never left guessed."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import DOMAIN

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify
from .test_statistics import assert_statistics_match, generated_plays
from .test_statistics_recovery import add_account, counted, insert_older

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


async def test_an_unreadable_marker_rebuilds_the_whole_history(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    hass_storage: dict[str, Any],
) -> None:
    """A marker whose instant cannot be read (a damaged file) means "stale since when?".

    The answer is not guessed: every hour is rebuilt, including plays stored behind the
    statistics' back long before their last row.
    """
    owner = await add_account(mongo_db, fake_spotify)
    now = dt_util.utcnow()
    await mongo_db["infos"].insert_many(
        counted(generated_plays(catalog, owner, now - timedelta(hours=3), 150, seed=21))
    )
    entry = await setup_entry()
    await assert_statistics_match(hass, entry, mongo_db)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    await insert_older(
        mongo_db, counted(generated_plays(catalog, owner, now - timedelta(days=61), 60, seed=22))
    )
    marker = f"{DOMAIN}.statistics.{entry.entry_id}"
    hass_storage[marker] = {"version": 1, "data": {"stale_since": "the day before yesterday"}}

    assert await hass.config_entries.async_setup(entry.entry_id)
    await assert_statistics_match(hass, entry, mongo_db)
    assert marker not in hass_storage
