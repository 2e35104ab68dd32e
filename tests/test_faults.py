"""Faults around the cycle: crashes between writes, Spotify errors, auth, two accounts."""

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler import SHARED
from custom_components.spotify_scrobbler.const import CONF_REQUEST_SPACING
from custom_components.spotify_scrobbler.engine import spotify as spotify_module

from .conftest import MongoDb, make_entry
from .spotify_fake import Catalog, FakeSpotify, listening_day
from .test_scrobbling import (
    expected,
    play_recently,
    plays_of,
    sensor_state,
    stored_plays,
    tick,
)

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]

# The writes of one cycle, in order: (collection, method).
WRITE_STEPS = [
    ("tracks", "bulk_write"),
    ("albums", "bulk_write"),
    ("artists", "bulk_write"),
    ("infos", "insert_many"),
    ("users", "update_one"),
]


@pytest.mark.parametrize(("collection", "method"), WRITE_STEPS)
async def test_crash_between_writes_loses_and_duplicates_nothing(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
    collection: str,
    method: str,
) -> None:
    """A write that fails mid-cycle: the next cycle stores every play exactly once."""
    first = play_recently(fake_spotify, catalog, [(0, 30.0), (1, 25.0)])
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED

    second = play_recently(fake_spotify, catalog, [(2, 10.0), (3, 5.0), (0, 2.0)])
    original = getattr(AsyncCollection, method)
    failures: list[str] = []

    async def failing(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == collection and not failures:
            failures.append(self.name)
            if collection in {"infos", "users"}:
                await original(self, *args, **kwargs)  # the write lands, the answer is lost
            raise AutoReconnect("connection lost (injected)")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, method, failing)
    await tick(hass)
    assert failures == [collection]
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "3"

    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert await stored_plays(mongo_db) == expected(first + second)
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert user["lastTimestamp"] == int(second[-1].played_at.timestamp() * 1000)


async def test_mongodb_unreachable_at_setup_retries_later(
    hass: HomeAssistant, credentials: None, fake_spotify: FakeSpotify, mongo_db: MongoDb
) -> None:
    """A dead MongoDB makes setup fail quickly with 'not ready' (HA retries), no crash."""
    template = make_entry(fake_spotify, mongo_db)
    entry = MockConfigEntry(
        domain=template.domain,
        title=template.title,
        unique_id=template.unique_id,
        data={**template.data, "uri": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200"},
        options=dict(template.options),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "MongoDB" in (entry.reason or "")


async def test_rate_limit_short_retry_after_is_waited_out(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """429 with a short Retry-After: wait, retry, store."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject("/v1/me/player/recently-played", status=429, headers={"Retry-After": "1"})
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    calls = fake_spotify.calls("/v1/me/player/recently-played")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.9
    assert await stored_plays(mongo_db) == expected(plays)


@pytest.mark.parametrize(
    ("retry_after", "paused_s"),
    [("14400", 14400), ("inf", 86400), ("1e400", 86400), ("99999999999", 86400)],
)
async def test_rate_limit_long_retry_after_pauses_polling(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
    retry_after: str,
    paused_s: int,
) -> None:
    """An hours-long Retry-After (spent quota) pauses Spotify requests, shown on the status.

    Cycles during the pause make no request at all; entities stay available. Absurd values
    pause for a day at most.
    """
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    entry = await setup_entry()
    plays += play_recently(fake_spotify, catalog, [(1, 1.0)])
    fake_spotify.inject(
        "/v1/me/player/recently-played",
        status=429,
        headers={"Retry-After": retry_after},
        body={"error": {"status": 429, "message": "Quota exceeded", "reason": "QUOTA_EXCEEDED"}},
    )
    fake_spotify.reset_log()
    await tick(hass)
    assert len(fake_spotify.requests) == 1
    assert sensor_state(hass, fake_spotify, "status") == "rate_limited"
    status = hass.states.get("sensor.scrobbler_test_scrobbler_status")
    assert status is not None
    assert status.attributes["reason"] == "QUOTA_EXCEEDED"
    retry_at = dt_util.parse_datetime(status.attributes["retry_at"])
    assert retry_at is not None
    assert abs((retry_at - dt_util.utcnow()).total_seconds() - paused_s) < 60
    assert sensor_state(hass, fake_spotify, "total_plays") == "1"

    for _ in range(3):
        await tick(hass)
    assert fake_spotify.requests == [fake_spotify.requests[0]]
    assert sensor_state(hass, fake_spotify, "status") == "rate_limited"
    assert await mongo_db["infos"].count_documents({}) == 1
    diagnostics = entry.runtime_data.coordinator.last_error or ""
    assert "QUOTA_EXCEEDED" in diagnostics

    # The pause ends (the gate's monotonic clock moves past it): the waiting play is stored.
    gate = hass.data[SHARED].gate
    monkeypatch.setattr(gate, "_clock", lambda: time.monotonic() + paused_s + 1)
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(mongo_db) == expected(plays)


async def test_server_errors_then_success(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """5xx and a malformed body are retried with backoff; the cycle then succeeds."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject("/v1/me/player/recently-played", status=503)
    fake_spotify.inject("/v1/me/player/recently-played", status=502)
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == 3
    assert await stored_plays(mongo_db) == expected(plays)


async def test_server_errors_give_up_after_bounded_attempts(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A Spotify outage ends the cycle after MAX_ATTEMPTS; the next cycle catches up."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject(
        "/v1/me/player/recently-played", status=500, times=spotify_module.MAX_ATTEMPTS
    )
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "spotify_unavailable"
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == spotify_module.MAX_ATTEMPTS

    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(mongo_db) == expected(plays)


async def test_timeouts_are_retried(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that hangs past the timeout is retried."""
    monkeypatch.setattr(
        spotify_module, "REQUEST_TIMEOUT", spotify_module.aiohttp.ClientTimeout(0.3)
    )
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject("/v1/me/player/recently-played", delay=5.0)
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert await stored_plays(mongo_db) == expected(plays)


async def test_invalid_grant_starts_reauth(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
) -> None:
    """An expired or revoked refresh token (invalid_grant) starts the reauth flow."""
    fake_spotify.token_revoked = True
    entry = await setup_entry(expires_in=-60)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [(f["context"]["source"], f["context"]["entry_id"]) for f in flows] == [
        (SOURCE_REAUTH, entry.entry_id)
    ]
    assert fake_spotify.counts["/api/token"] == 1
    assert fake_spotify.calls("/v1/") == []


async def test_revoked_access_token_mid_cycle_starts_reauth(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A 401 with a token HA believes valid, and the forced refresh refused: reauth, once.

    Polling stops until the user re-authorizes: no request every cycle, no second flow.
    """
    first = play_recently(fake_spotify, catalog, [(0, 20.0)])
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    fake_spotify.expire_access_tokens()
    fake_spotify.token_revoked = True
    play_recently(fake_spotify, catalog, [(1, 5.0)])
    fake_spotify.reset_log()
    await tick(hass)
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    assert [r["grant_type"] for r in fake_spotify.token_requests] == ["refresh_token"]

    fake_spotify.reset_log()
    for _ in range(3):
        await tick(hass)
    assert fake_spotify.requests == []
    assert len(hass.config_entries.flow.async_progress()) == 1
    assert await stored_plays(mongo_db) == expected(first)


def reauth_issues(hass: HomeAssistant) -> list[tuple[str, str]]:
    """Repair issues asking to re-authorize (ours and HA's own)."""
    return [key for key in ir.async_get(hass).issues if "reauth" in key[1]]


async def test_refused_access_token_is_refreshed_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A 401 for a token HA still believes valid (revoked or rotated early): refresh and retry.

    One forced refresh, the cycle stores its plays, and nobody is asked to re-authorize.
    """
    first = play_recently(fake_spotify, catalog, [(0, 20.0)])
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    fake_spotify.expire_access_tokens()
    assert entry.data["token"]["expires_at"] > time.time() + 600  # HA thinks it is valid
    second = play_recently(fake_spotify, catalog, [(1, 5.0)])
    fake_spotify.reset_log()
    await tick(hass)
    assert [r["grant_type"] for r in fake_spotify.token_requests] == ["refresh_token"]
    assert hass.config_entries.flow.async_progress() == []
    assert reauth_issues(hass) == []
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert await stored_plays(mongo_db) == expected(first + second)
    assert entry.data["token"]["access_token"] in fake_spotify.access_tokens

    # The renewed token is kept: the next cycle refreshes nothing.
    fake_spotify.reset_log()
    await tick(hass)
    assert fake_spotify.token_requests == []
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == 1


async def test_401_after_a_forced_refresh_starts_reauth(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The request retried with a freshly refreshed token is refused too: reauth."""
    first = play_recently(fake_spotify, catalog, [(0, 20.0)])
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    play_recently(fake_spotify, catalog, [(1, 5.0)])
    fake_spotify.inject("/v1/me/player/recently-played", status=401, times=2)
    fake_spotify.reset_log()
    await tick(hass)
    assert len(fake_spotify.token_requests) == 1  # never more than one refresh per request
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == 2
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    assert await stored_plays(mongo_db) == expected(first)


async def test_token_refresh_keeps_scrobbling(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """An expired access token is refreshed by HA before the request."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.expire_access_tokens()
    entry = await setup_entry(expires_in=-60)
    assert entry.state is ConfigEntryState.LOADED
    assert fake_spotify.counts["/api/token"] == 1
    assert await stored_plays(mongo_db) == expected(plays)
    assert entry.data["token"]["access_token"] != "fake-access-token"


async def test_two_accounts_share_one_spaced_queue(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Requests of two accounts never overlap and keep the minimum spacing."""
    spacing = 0.25
    start = dt_util.utcnow() - timedelta(minutes=50)
    day = listening_day(catalog, start, plays=12, hours=0.5, seed=5, local_files=0)
    fake_spotify.add_plays(day.plays)
    entries = [make_entry(fake_spotify, mongo_db, unique_id=f"account-{n}") for n in range(2)]
    for entry in entries:
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(entry, options={CONF_REQUEST_SPACING: spacing})
    # Setting up the integration sets up all of its entries.
    await hass.config_entries.async_setup(entries[0].entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)  # the setup's artist lookups
    assert [e.state for e in entries] == [ConfigEntryState.LOADED] * 2

    fake_spotify.reset_log()
    await tick(hass)
    arrivals = [record.at for record in fake_spotify.requests]
    assert len(arrivals) == 2  # one idle window request per account
    assert all(b - a >= spacing * 0.95 for a, b in pairwise(arrivals))

    # Both accounts stored the same plays under their own owner.
    owners = await mongo_db["infos"].distinct("owner")
    assert len(owners) == 2
    for owner in owners:
        count = await mongo_db["infos"].count_documents({"owner": owner})
        assert count == len(expected(list(day.plays)))


@pytest.mark.parametrize("order", [(0.05, 0.4), (0.4, 0.05)])
async def test_request_spacing_is_the_largest_configured(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    order: tuple[float, float],
) -> None:
    """One spacing for the whole integration: the largest of the loaded accounts, any load order.

    Unloading that account lets the remaining one's spacing apply again.
    """
    play_recently(fake_spotify, catalog, [(0, 10.0)])
    entries = []
    for n, spacing in enumerate(order):
        entry = make_entry(
            fake_spotify,
            mongo_db,
            unique_id=f"account-{n}",
            options={CONF_REQUEST_SPACING: spacing},
        )
        entry.add_to_hass(hass)
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
        entries.append(entry)

    fake_spotify.reset_log()
    await tick(hass)
    arrivals = [record.at for record in fake_spotify.requests]
    assert len(arrivals) == 2  # one idle window request per account
    assert arrivals[1] - arrivals[0] >= 0.4 * 0.95
    assert hass.data[SHARED].gate.spacing == 0.4

    slow = entries[order.index(0.4)]
    assert await hass.config_entries.async_unload(slow.entry_id)
    await hass.async_block_till_done()
    assert hass.data[SHARED].gate.spacing == 0.05


async def test_next_link_to_another_host_is_refused(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A `next` URL off Spotify's API host is never followed."""
    now = fake_spotify.now
    assert now is not None
    play = plays_of(catalog, now, [(0, 10.0)])[0]
    page = {
        "href": f"{fake_spotify.api_url}/me/player/recently-played",
        "limit": 50,
        "next": "http://127.0.0.2:9/steal?token=1",
        "cursors": None,
        "total": 1,
        "items": [catalog.play_json(play)],
    }
    fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
    entry = await setup_entry()
    assert sensor_state(hass, fake_spotify, "status") == "spotify_unavailable"
    assert "outside" in (entry.runtime_data.coordinator.last_error or "")
    assert await mongo_db["infos"].count_documents({}) == 0


@pytest.mark.parametrize("after_paging", ["forward", "newest"])
async def test_pagination_is_followed(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    after_paging: Any,
) -> None:
    """`next` is followed until Spotify has nothing more, in both paging styles."""
    fake_spotify.after_paging = after_paging
    fake_spotify.next_on_full_page = True
    start = dt_util.utcnow() - timedelta(hours=1)
    day = listening_day(catalog, start, plays=60, hours=0.9, seed=9, local_files=0)
    fake_spotify.add_plays(day.plays)
    await setup_entry()
    assert await stored_plays(mongo_db) == expected(fake_spotify.reachable_plays())
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == 2


async def test_malformed_json_fails_the_cycle_only(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A body that is not JSON ends the cycle with an error; the next cycle stores the play."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject("/v1/me/player/recently-played", status=200, raw_body=b"{not json")
    entry = await setup_entry()
    assert sensor_state(hass, fake_spotify, "status") == "spotify_unavailable"
    assert "malformed JSON" in (entry.runtime_data.coordinator.last_error or "")
    assert await mongo_db["infos"].count_documents({}) == 0

    await tick(hass)
    assert await stored_plays(mongo_db) == expected(plays)


async def test_unknown_artist_is_stored_as_stub(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """An artist Spotify answers 404 for keeps the name from the play, without genres."""
    now = fake_spotify.now
    assert now is not None
    plays = plays_of(catalog, now, [(0, 10.0)])
    artist_id = catalog.tracks[plays[0].track_id or ""].artist_ids[0]
    fake_spotify.add_plays(plays)
    fake_spotify.inject(f"/v1/artists/{artist_id}", status=404)
    await setup_entry()
    doc = await mongo_db["artists"].find_one({"id": artist_id}, {"_id": 0})
    assert doc is not None
    assert doc["name"] == catalog.artists[artist_id].name
    assert "genres" not in doc
    assert await stored_plays(mongo_db) == expected(plays)


async def test_same_instant_other_track_is_kept_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored play at the very same millisecond wins (unique index), without an error."""
    now = fake_spotify.now
    assert now is not None
    plays = plays_of(catalog, now, [(0, 10.0), (1, 5.0)])
    entry = await setup_entry()
    account = entry.runtime_data.coordinator.account
    assert account is not None
    await mongo_db["infos"].insert_one(
        {"owner": account.owner, "id": "4uLU6hMCjMI75M1A2tKUQC", "played_at": plays[0].played_at}
    )
    fake_spotify.add_plays(plays)
    await tick(hass)
    assert entry.runtime_data.coordinator.last_update_success is True
    assert await stored_plays(mongo_db) == sorted(
        [("4uLU6hMCjMI75M1A2tKUQC", plays[0].played_at), *expected(plays[1:])],
        key=lambda pair: pair[1],
    )

    # The refused play is not attempted again: the next cycle writes nothing.
    inserts: list[str] = []
    original = AsyncCollection.insert_many

    async def counting(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        inserts.append(self.name)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "insert_many", counting)
    await tick(hass)
    assert inserts == []


@pytest.mark.parametrize(
    ("status", "state"), [(500, "loaded"), (429, "loaded"), (400, "setup_error")]
)
async def test_token_refresh_failures(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    status: int,
    state: str,
) -> None:
    """A 5xx or 429 from the token endpoint is transient (next cycle); a 4xx means re-authorize."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    fake_spotify.inject("/api/token", status=status, body={"error": "server_error"})
    entry = await setup_entry(expires_in=-60)
    assert entry.state.value == state
    reauths = [f for f in hass.config_entries.flow.async_progress() if f["context"]["source"]]
    assert bool(reauths) is (status == 400)
    if status != 400:
        assert sensor_state(hass, fake_spotify, "status") == "spotify_unavailable"
        await tick(hass)
        assert sensor_state(hass, fake_spotify, "status") == "ok"
        assert await stored_plays(mongo_db) == expected(plays)
    else:
        assert await stored_plays(mongo_db) == []


async def test_oversized_page_is_refused(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A page with more items than Spotify ever sends changes nothing."""
    play = play_recently(fake_spotify, catalog, [(0, 10.0)])[0]
    page = {
        "href": f"{fake_spotify.api_url}/me/player/recently-played",
        "limit": 50,
        "next": None,
        "cursors": None,
        "total": 5000,
        "items": [catalog.play_json(play)] * 5000,
    }
    fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
    entry = await setup_entry()
    assert sensor_state(hass, fake_spotify, "status") == "spotify_unavailable"
    assert "5000 items" in (entry.runtime_data.coordinator.last_error or "")
    assert await mongo_db["infos"].count_documents({}) == 0


async def test_malformed_documents_in_mongodb_do_not_break_sensors(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Foreign or broken documents are skipped (and logged), the entry keeps working."""
    plays = play_recently(fake_spotify, catalog, [(0, 10.0)])
    entry = await setup_entry()
    account = entry.runtime_data.coordinator.account
    assert account is not None
    newest = plays[0].played_at
    await mongo_db["infos"].insert_many(
        [
            # Newer than the real play, so "last play" looks at it first.
            {"owner": account.owner, "id": 42, "played_at": newest + timedelta(minutes=1)},
            {"owner": account.owner, "played_at": newest + timedelta(minutes=2), "durationMs": "x"},
        ]
    )
    await mongo_db["tracks"].insert_one({"id": None, "name": ["not", "a", "name"]})
    await hass.config_entries.async_reload(entry.entry_id)
    # The outbox file's totals stand at setup; the background check counts the new ones.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED, entry.reason
    coordinator = entry.runtime_data.coordinator
    assert coordinator.data.total_plays == 3
    # The newest documents are unusable: no crash, the last usable play stays shown.
    assert coordinator.data.last_play is not None
    assert coordinator.data.last_play.play.track_id == plays[0].track_id

    more = play_recently(fake_spotify, catalog, [(1, 1.0)])
    await tick(hass)
    assert coordinator.last_update_success is True
    assert coordinator.data.last_play is not None
    assert coordinator.data.last_play.play.track_id == more[0].track_id

    response = await hass.services.async_call(
        "spotify_scrobbler",
        "recent_plays",
        {"config_entry_id": entry.entry_id, "count": 10},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert isinstance(response["plays"], list)
    assert [p["track_id"] for p in response["plays"]] == [more[0].track_id, plays[0].track_id]
