"""The rollups of a loaded entry against a brute-force count over what ``infos`` holds."""

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.conftest import MongoDb
from tests.engine.test_rollups import brute_force

KINDS = ("tracks", "artists", "albums")


async def assert_rollups_exact(
    hass: HomeAssistant, entry: MockConfigEntry, db: MongoDb, *, kept_true: bool | None
) -> None:
    """The rollups rank like the oracle: as the writes left them (``kept_true``), or after
    the rebuild a change that could not keep them true asks for (None: either)."""
    upkeep = entry.runtime_data.rollups
    account = entry.runtime_data.coordinator.account
    await hass.async_block_till_done(wait_background_tasks=True)
    everything = {"start": None, "end": None, "limit": 1, "by_time": False}
    fresh = await upkeep.rollups.ranking(account.owner, "tracks", **everything) is not None
    assert kept_true is None or fresh == kept_true
    if not fresh:
        upkeep.schedule()
        await hass.async_block_till_done(wait_background_tasks=True)
    for kind in KINDS:
        for by_time in (False, True):
            got = await upkeep.rollups.ranking(
                account.owner, kind, start=None, end=None, limit=50, by_time=by_time
            )
            expected = await brute_force(
                db, account.owner, kind, None, None, by_time=by_time, limit=50
            )
            assert got == expected, (kind, by_time)
