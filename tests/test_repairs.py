"""Repair issues: Premium required, re-authorization needed, MongoDB unreachable."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ServerSelectionTimeoutError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import DOMAIN

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify, listening_day
from .test_scrobbling import expected, plays_of, stored_plays, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """The account's issue of this kind, if raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")


async def test_premium_required_issue(
    hass: HomeAssistant, setup_entry: SetupEntry, fake_spotify: FakeSpotify
) -> None:
    """A 403 raises the Premium issue; access coming back clears it."""
    entry = await setup_entry()
    fake_spotify.owner_premium = False
    await tick(hass)
    raised = issue(hass, "premium_required", entry)
    assert raised is not None
    assert raised.translation_placeholders == {"account": entry.title}
    assert raised.severity is ir.IssueSeverity.ERROR

    fake_spotify.owner_premium = True
    await tick(hass)
    assert issue(hass, "premium_required", entry) is None


async def test_reauth_issue(
    hass: HomeAssistant, setup_entry: SetupEntry, fake_spotify: FakeSpotify
) -> None:
    """A refused token that cannot be refreshed raises the issue next to the reauth flow."""
    entry = await setup_entry()
    fake_spotify.expire_access_tokens()
    fake_spotify.token_revoked = True
    await tick(hass)
    assert issue(hass, "reauth_required", entry) is not None
    assert [f["context"]["source"] for f in hass.config_entries.flow.async_progress()] == ["reauth"]


async def test_mongodb_unreachable_issue_after_15_minutes(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One failed cycle is no issue; 15 minutes are, across a restart too; recovery clears it."""
    assert fake_spotify.now is not None
    fake_spotify.add_plays(plays_of(catalog, fake_spotify.now, [(0, 5.0)]))
    entry = await setup_entry()
    original = AsyncCollection.find

    def down(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused (injected)")

    monkeypatch.setattr(AsyncCollection, "find", down)
    coordinator = entry.runtime_data.coordinator
    down_at = dt_util.utcnow()
    await tick(hass)
    assert coordinator.data.status == "mongodb_unavailable"
    assert issue(hass, "mongodb_unreachable", entry) is None

    freezer.tick(timedelta(minutes=14))
    await tick(hass)
    assert issue(hass, "mongodb_unreachable", entry) is None
    freezer.tick(timedelta(minutes=2))
    await tick(hass)
    raised = issue(hass, "mongodb_unreachable", entry)
    assert raised is not None
    assert raised.translation_placeholders == {
        "account": entry.title,
        "since": local_minutes(down_at),  # local time, as the UI shows times
        "minutes": "15",
    }

    # A restart during the outage: HA forgets its (non-persistent) issues, the outbox
    # remembers when the outage began, so the issue is back at once with the same start.
    assert await hass.config_entries.async_unload(entry.entry_id)
    ir.async_delete_issue(hass, DOMAIN, raised.issue_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    raised = issue(hass, "mongodb_unreachable", entry)
    assert raised is not None
    assert raised.translation_placeholders is not None
    assert raised.translation_placeholders["since"] == local_minutes(down_at)

    monkeypatch.setattr(AsyncCollection, "find", original)
    await tick(hass)
    assert entry.runtime_data.coordinator.data.status == "ok"
    assert issue(hass, "mongodb_unreachable", entry) is None
    assert entry.runtime_data.coordinator.mongodb_down_since is None


def local_minutes(moment: datetime) -> str:
    """How the repair shows an instant: local time, to the minute."""
    return dt_util.as_local(moment).strftime("%Y-%m-%d %H:%M")


async def test_gap_when_spotify_window_overflowed(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """More than 50 plays since the last poll: a warning names the range that may be lost."""
    start = dt_util.utcnow() - timedelta(hours=2)
    day = listening_day(catalog, start, plays=80, hours=1.9, seed=13, local_files=0)
    fake_spotify.now = day.plays[9].played_at
    fake_spotify.add_plays(day.plays)
    entry = await setup_entry()
    registry = ir.async_get(hass)
    assert not [i for i in registry.issues if i[1].startswith("plays_may_be_missing")]

    fake_spotify.now = day.plays[-1].played_at  # 70 new plays: 20 fell out of Spotify's window
    await tick(hass)
    (gap,) = [i for (domain, key), i in registry.issues.items() if key.startswith("plays_may")]
    assert gap.severity is ir.IssueSeverity.WARNING
    assert gap.translation_placeholders == {
        "account": entry.title,
        "start": local_minutes(day.plays[9].played_at),
        "end": local_minutes(day.plays[-50].played_at),
        "count": "1",
    }

    # Stored: exactly what Spotify reported (the first 10, then its last 50); nothing doubled.
    assert await stored_plays(mongo_db) == expected(day.plays[:10] + day.plays[-50:])

    fake_spotify.now += timedelta(minutes=5)  # an ordinary cycle raises nothing new
    await tick(hass)
    assert len([k for (_, k) in registry.issues if k.startswith("plays_may")]) == 1
    assert await stored_plays(mongo_db) == expected(day.plays[:10] + day.plays[-50:])

    # A second overflow updates the account's one issue instead of adding another.
    more = listening_day(catalog, fake_spotify.now, plays=60, hours=1.5, seed=14, local_files=0)
    fake_spotify.add_plays(more.plays)
    fake_spotify.now = more.plays[-1].played_at
    await tick(hass)
    (gap,) = [i for (domain, key), i in registry.issues.items() if key.startswith("plays_may")]
    assert gap.translation_placeholders is not None
    assert gap.translation_placeholders["count"] == "2"
    assert gap.translation_placeholders["end"] == local_minutes(more.plays[-50].played_at)
