"""The scrobbling cycle through Home Assistant: coordinator ticks, MongoDB contents, events."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.spotify_scrobbler.const import (
    CONF_BLACKLISTED_ARTISTS,
    DOMAIN,
    EVENT_SCROBBLED,
)

from .conftest import MongoDb, make_entry, next_poll
from .spotify_fake import Catalog, FakeSpotify, LocalFile, Play, listening_day

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def minutes_ago(now: datetime, minutes: float) -> datetime:
    """A millisecond-precision instant before ``now``."""
    moment = now - timedelta(minutes=minutes)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def plays_of(catalog: Catalog, now: datetime, spec: list[tuple[int, float]]) -> list[Play]:
    """Plays of the catalogue's n-th track, ``minutes`` before now."""
    tracks = sorted(catalog.tracks.values(), key=lambda track: track.id)
    return [Play(minutes_ago(now, minutes), tracks[index]) for index, minutes in spec]


def play_recently(fake: FakeSpotify, catalog: Catalog, spec: list[tuple[int, float]]) -> list[Play]:
    """Let the fake report plays of the n-th catalogue track, ``minutes`` before its now."""
    assert fake.now is not None
    plays = plays_of(catalog, fake.now, spec)
    fake.add_plays(plays)
    return plays


async def stored_plays(mongo_db: MongoDb) -> list[tuple[str, datetime]]:
    """(track id, played_at) of every stored play, oldest first."""
    cursor = mongo_db["infos"].find({}, {"_id": 0, "id": 1, "played_at": 1}).sort("played_at", 1)
    return [(doc["id"], doc["played_at"]) async for doc in cursor]


def expected(plays: list[Play]) -> list[tuple[str, datetime]]:
    """What MongoDB must hold for these (non-local, non-duplicate) plays."""
    return sorted(
        ((p.track_id, p.played_at) for p in plays if p.track_id is not None),
        key=lambda pair: pair[1],
    )


async def tick(hass: HomeAssistant) -> None:
    """Let the coordinator's 120 s timer fire once."""
    async_fire_time_changed(hass, dt_util.utcnow() + next_poll())
    # Coordinator refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


def sensor_state(hass: HomeAssistant, fake: FakeSpotify, key: str) -> str:
    """The state of one of the account's sensors (e.g. "status", "pending_plays")."""
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{fake.user_id}_{key}")
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


def capture_events(hass: HomeAssistant) -> list[Event]:
    """Collect spotify_scrobbler_scrobbled events, in the order they were fired."""
    return async_capture_events(hass, EVENT_SCROBBLED)


async def test_first_cycle_stores_reachable_plays(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The first cycle stores what Spotify still has: the last 50 plays, minus local files."""
    now = fake_spotify.now
    assert now is not None
    day = listening_day(catalog, now - timedelta(hours=3), plays=70, hours=2.5, seed=3)
    fake_spotify.add_plays(day.plays)
    events = capture_events(hass)

    entry = await setup_entry()

    assert entry.state is ConfigEntryState.LOADED
    reachable = fake_spotify.reachable_plays()
    assert len(reachable) == 50
    assert await stored_plays(mongo_db) == expected(reachable)
    assert len(events) == len(expected(reachable))
    assert [e.data["played_at"] for e in events] == [
        played_at.isoformat() for _, played_at in expected(reachable)
    ]

    user = await mongo_db["users"].find_one({"spotifyId": fake_spotify.user_id})
    assert user is not None
    newest = max(p.played_at for p in reachable)
    assert user["lastTimestamp"] == int(newest.timestamp() * 1000)
    assert user["firstListenedAt"] == min(p for _, p in expected(reachable))
    # Your Spotify's token fields exist (its login fills them), empty: no token is written.
    assert user["accessToken"] == user["refreshToken"] == ""
    assert fake_spotify.access_token not in str(user)

    # Only the one window request, then one lookup per distinct artist (batch refused).
    assert len(fake_spotify.calls("/v1/me/player/recently-played")) == 1
    artists = {a for p in reachable if p.track_id for a in catalog.tracks[p.track_id].artist_ids}
    assert await mongo_db["artists"].count_documents({"genres": {"$exists": True}}) == len(artists)


async def test_overlapping_cycles_store_each_play_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Later cycles overlap the previous window by 2 h and add only what is new."""
    start = dt_util.utcnow() - timedelta(hours=1)
    day = listening_day(catalog, start, plays=60, hours=0.9, seed=11, local_files=3)
    fake_spotify.now = day.plays[19].played_at
    fake_spotify.add_plays(day.plays)
    await setup_entry()
    assert await stored_plays(mongo_db) == expected(list(day.plays[:20]))

    for upto in (35, 36, 59):
        fake_spotify.now = day.plays[upto].played_at
        fake_spotify.reset_log()
        await tick(hass)
        assert await stored_plays(mongo_db) == expected(list(day.plays[: upto + 1]))
        # The window is asked from lastTimestamp - 2 h, in one request.
        (call,) = fake_spotify.calls("/v1/me/player/recently-played")
        assert call.query["limit"] == "50"

    # An idle cycle: one request, nothing written, no enrichment, and no MongoDB query:
    # the window's stored plays are known from the previous cycles.
    finds: list[str] = []
    original_find = AsyncCollection.find

    def counting_find(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        finds.append(self.name)
        return original_find(self, *args, **kwargs)

    fake_spotify.reset_log()
    with patch.object(AsyncCollection, "find", counting_find):
        await tick(hass)
    assert finds == []
    assert len(fake_spotify.requests) == 1
    assert await stored_plays(mongo_db) == expected(list(day.plays))


async def test_duplicates_within_30_seconds(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Same track ±30 s is one play (in the batch and against MongoDB); minutes apart is two."""
    now = fake_spotify.now
    assert now is not None
    plays = plays_of(
        catalog,
        now,
        [
            (0, 30.0),  # track 0 ...
            (0, 29.75),  # ... again 15 s later: the same play (in-batch duplicate)
            (1, 20.0),  # track 1 ...
            (1, 15.0),  # ... again 5 min later: a second play
        ],
    )
    fake_spotify.add_plays(plays)
    await setup_entry()
    assert await stored_plays(mongo_db) == expected([plays[0], plays[2], plays[3]])

    # Spotify reports track 1 again 20 s after a stored play: still the same play.
    play_recently(fake_spotify, catalog, [(1, 15.0 - 20 / 60)])
    await tick(hass)
    assert await stored_plays(mongo_db) == expected([plays[0], plays[2], plays[3]])

    # Exactly 30 s apart: a 30 s track played twice in a row, two plays.
    repeat = play_recently(fake_spotify, catalog, [(2, 10.0), (2, 9.5)])
    await tick(hass)
    assert await stored_plays(mongo_db) == expected([plays[0], plays[2], plays[3], *repeat])


async def test_local_files_and_episodes_are_skipped(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Local files (null ids), episodes and junk items are not scrobbled; tracks are."""
    now = fake_spotify.now
    assert now is not None
    track_play = plays_of(catalog, now, [(2, 10.0)])[0]
    local = Play(minutes_ago(now, 8), LocalFile("Home Demo", "Me", "Tapes", 120_000))
    fake_spotify.add_plays([track_play, local])
    page: dict[str, Any] = {
        "href": f"{fake_spotify.api_url}/me/player/recently-played",
        "limit": 50,
        "next": None,
        "cursors": None,
        "total": 5,
        "items": [
            {
                "played_at": minutes_ago(now, 5).isoformat().replace("+00:00", "Z"),
                "track": {"type": "episode", "id": "5Xt5DXGzch68nYYamXrNxZ", "name": "A podcast"},
            },
            {"played_at": "yesterday", "track": catalog.track_json(track_play.track_id or "")},
            {"played_at": minutes_ago(now, 4).isoformat(), "track": None},
            "not an item",
        ],
    }
    fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
    await setup_entry()
    assert await stored_plays(mongo_db) == []  # the injected page had no valid track

    await tick(hass)
    assert await stored_plays(mongo_db) == expected([track_play])


async def test_blacklisted_artist_is_stored_but_flagged(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A play whose primary artist is blacklisted is stored with blacklistedBy: artist."""
    now = fake_spotify.now
    assert now is not None
    plays = plays_of(catalog, now, [(3, 10.0), (4, 5.0)])
    banned = catalog.tracks[plays[0].track_id or ""].artist_ids[0]
    assert banned not in catalog.tracks[plays[1].track_id or ""].artist_ids[:1]
    fake_spotify.add_plays(plays)
    events = capture_events(hass)

    await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})

    docs = [doc async for doc in mongo_db["infos"].find({}, {"_id": 0}).sort("played_at", 1)]
    assert [doc.get("blacklistedBy") for doc in docs] == [["artist"], None]
    assert [e.data["blacklisted"] for e in events] == [True, False]


async def test_setup_does_not_wait_for_artist_lookups(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Setup runs the first cycle; its artist lookups (1 s apart) run after it, in the background.

    Here every lookup hangs for an hour: setup finishes anyway, with the plays stored and
    their artists as stubs named from the payload.
    """
    first = play_recently(fake_spotify, catalog, [(i, 60.0 - i) for i in range(10)])
    fake_spotify.inject("/v1/artists", delay=3600, times=100)
    entry = make_entry(fake_spotify, mongo_db)
    entry.add_to_hass(hass)
    async with asyncio.timeout(60):  # a guard against hanging, not a measurement
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    assert await stored_plays(mongo_db) == expected(first)
    artists = {a for p in first for a in catalog.tracks[p.track_id or ""].artist_ids}
    stubs = mongo_db["artists"].find({}, {"_id": 0, "id": 1, "name": 1, "genres": 1})
    docs = {doc["id"]: doc async for doc in stubs}
    assert set(docs) == artists
    assert all("genres" not in doc and doc["name"] for doc in docs.values())
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("batch_allowed", [False, True])
async def test_artist_enrichment_requests(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    batch_allowed: bool,
) -> None:
    """Batch lookups while Spotify allows them, else one per artist; never twice."""
    fake_spotify.batch_allowed = batch_allowed
    first = play_recently(fake_spotify, catalog, [(i, 60.0 - i) for i in range(10)])
    await setup_entry()

    artists = {a for p in first for a in catalog.tracks[p.track_id or ""].artist_ids}
    singles = [c for c in fake_spotify.requests if c.path.startswith("/v1/artists/")]
    batches = fake_spotify.calls("/v1/artists?") + [
        c for c in fake_spotify.requests if c.path == "/v1/artists"
    ]
    if batch_allowed:
        assert singles == []
        assert len(batches) == 1
    else:
        assert len(singles) == len(artists)
        assert len(batches) == 1  # tried once, refused, remembered
    stored = mongo_db["artists"].find({}, {"_id": 0, "id": 1, "genres": 1, "images": 1})
    docs = {doc["id"]: doc async for doc in stored}
    assert set(docs) == artists
    for artist_id, doc in docs.items():
        assert doc["genres"] == list(catalog.artists[artist_id].genres)

    # The same tracks played again later: no enrichment request at all.
    play_recently(fake_spotify, catalog, [(i, 20.0 - i) for i in range(10)])
    fake_spotify.reset_log()
    await tick(hass)
    assert [c.path for c in fake_spotify.requests] == ["/v1/me/player/recently-played"]
    assert await mongo_db["infos"].count_documents({}) == 20


async def test_tracks_and_albums_come_from_the_payload(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Track and album documents are built from recently-played: no /tracks or /albums call."""
    plays = play_recently(fake_spotify, catalog, [(5, 10.0), (6, 6.0)])
    await setup_entry()

    assert not [c for c in fake_spotify.requests if c.path.startswith(("/v1/tracks", "/v1/albums"))]
    for play in plays:
        track = catalog.tracks[play.track_id or ""]
        doc = await mongo_db["tracks"].find_one({"id": track.id})
        assert doc is not None
        assert (doc["name"], doc["album"], doc["artists"], doc["duration_ms"]) == (
            track.name,
            track.album_id,
            list(track.artist_ids),
            track.duration_ms,
        )
        album = await mongo_db["albums"].find_one({"id": track.album_id})
        assert album is not None
        assert album["name"] == catalog.albums[track.album_id].name
        info = await mongo_db["infos"].find_one({"id": track.id})
        assert info is not None
        assert info["albumId"] == track.album_id
        assert info["primaryArtistId"] == track.artist_ids[0]
        assert info["artistIds"] == list(track.artist_ids)
        assert info["durationMs"] == track.duration_ms
        assert info["played_at"] == play.played_at.astimezone(UTC)
