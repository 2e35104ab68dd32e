"""Real-world orderings that used to lose, duplicate or miscount plays (issue 11).

Lost write replies come from a wire-protocol proxy in front of FerretDB (the write is
executed, its acknowledgement never arrives); reconfiguring uses the config flow; day
boundaries use Home Assistant's clock and time zone. Every scenario ends comparing
MongoDB's contents, the sensors and the events with what really happened.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.spotify_scrobbler import import_manager
from custom_components.spotify_scrobbler.const import CONF_DATABASE, CONF_URI, DOMAIN
from custom_components.spotify_scrobbler.engine import mongo_client
from custom_components.spotify_scrobbler.engine.scrobbler import Scrobbler
from custom_components.spotify_scrobbler.statistics import async_refresh_statistics

from .conftest import MongoDb
from .export_fake import music_entry, write_export
from .mongo_proxy import MongoProxy
from .spotify_fake import Catalog, FakeSpotify, Play, truncate_ms
from .test_scrobbling import (
    capture_events,
    expected,
    play_recently,
    sensor_state,
    stored_plays,
    tick,
)
from .test_statistics import assert_statistics_match

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture(autouse=True)
def short_mongodb_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost connection fails an operation after 1 s instead of 5 s."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 1000)


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Prepare the recorder's database before ``hass`` (phcc's required fixture order)."""


async def day_counts(mongo_db: MongoDb) -> tuple[int, int, int]:
    """(total, today, listened ms today) of counted plays, counted by MongoDB itself."""
    start = dt_util.start_of_local_day()
    end = dt_util.start_of_local_day(dt_util.as_local(start).date() + timedelta(days=1))
    counted: dict[str, Any] = {"blacklistedBy": {"$exists": False}}
    today = {**counted, "played_at": {"$gte": start, "$lt": end}}
    listened = 0
    async for doc in mongo_db["infos"].find(today):
        listened += doc["durationMs"]
    return (
        await mongo_db["infos"].count_documents(counted),
        await mongo_db["infos"].count_documents(today),
        listened,
    )


@pytest.mark.parametrize(
    ("fault", "command", "collection"),
    [
        ("lose_reply", "insert", "infos"),  # the plays were stored, the reply was lost
        ("lose_reply", "update", "users"),  # the plays and the cursor were stored
        ("send_twice", "insert", "infos"),  # a driver's retry: duplicate keys come back
    ],
)
async def test_write_whose_reply_was_lost(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    fault: str,
    command: str,
    collection: str,
) -> None:
    """Plays a write stored without telling are counted, announced once and shown."""
    first = play_recently(fake_spotify, catalog, [(0, 40.0), (1, 35.0)])
    entry = await setup_entry(uri=proxy.uri)
    await hass.async_block_till_done(wait_background_tasks=True)
    events = capture_events(hass)
    later = play_recently(fake_spotify, catalog, [(2, 20.0), (3, 15.0), (4, 10.0)])

    getattr(proxy, fault)(command, collection)
    await tick(hass)
    assert proxy.applied == [(fault, command, collection)]
    assert await stored_plays(mongo_db) == expected(first + later)
    # Shown at once: stored or waiting, the five plays are counted once.
    assert sensor_state(hass, fake_spotify, "total_plays") == "5"

    await tick(hass)
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert await stored_plays(mongo_db) == expected(first + later)
    total, today, listened = await day_counts(mongo_db)
    assert sensor_state(hass, fake_spotify, "total_plays") == str(total) == "5"
    assert sensor_state(hass, fake_spotify, "plays_today") == str(today)
    minutes = float(sensor_state(hass, fake_spotify, "listening_time_today"))
    assert minutes == pytest.approx(listened / 60_000, abs=0.01)
    assert [e.data["track_id"] for e in events] == [p.track_id for p in later]
    last = hass.states.get("sensor.scrobbler_test_last_scrobbled_track")
    assert last is not None
    assert last.attributes["track_id"] == later[-1].track_id
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert user["lastTimestamp"] == int(later[-1].played_at.timestamp() * 1000)

    await tick(hass)  # nothing more is announced later
    assert len(events) == len(later)
    await assert_statistics_match(hass, entry, mongo_db)
    # Our own write found stored is never taken for another scrobbler's.
    assert not [i for i in ir.async_get(hass).issues if i[1].startswith("other_scrobbler")]


async def _reconfigure(hass: HomeAssistant, entry: MockConfigEntry, uri: str, name: str) -> None:
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: uri, CONF_DATABASE: name}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("restored", [False, True], ids=["empty", "restored_copy"])
async def test_reconfigure_to_another_database_stores_what_it_lacks(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    mongodb_uri: str,
    restored: bool,
) -> None:
    """No cache of the old database suppresses a write to the new one."""
    early = play_recently(fake_spotify, catalog, [(0, 90.0), (1, 80.0), (2, 70.0)])
    entry = await setup_entry()
    late = play_recently(fake_spotify, catalog, [(3, 30.0), (4, 20.0)])
    await tick(hass)
    assert await stored_plays(mongo_db) == expected(early + late)

    other = mongo_db.client[f"{mongo_db.name}_b"]
    try:
        if restored:
            # A backup taken after the early plays: the late ones are missing from it.
            user = await mongo_db["users"].find_one({})
            assert user is not None
            user["lastTimestamp"] = int(early[-1].played_at.timestamp() * 1000)
            await other["users"].insert_one(user)
            async for doc in mongo_db["infos"].find({"played_at": {"$lte": early[-1].played_at}}):
                await other["infos"].insert_one(doc)
        await _reconfigure(hass, entry, mongodb_uri, other.name)
        assert await stored_plays(other) == expected(early + late)
        assert sensor_state(hass, fake_spotify, "total_plays") == "5"
        await tick(hass)
        assert await stored_plays(other) == expected(early + late)
    finally:
        await mongo_db.client.drop_database(other.name)


def _moved_back_a_day(hass_storage: dict[str, Any], entry: MockConfigEntry) -> None:
    """Make the outbox snapshot look like it was written the day before."""
    totals = hass_storage[f"{DOMAIN}.outbox.{entry.entry_id}"]["data"]["totals"]
    day_start = datetime.fromisoformat(totals["day_start"])
    totals["day_start"] = dt_util.start_of_local_day(
        dt_util.as_local(day_start).date() - timedelta(days=1)
    ).isoformat()


async def test_day_totals_restart_at_midnight_while_mongodb_is_down(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """Plays today drops to 0 at local midnight itself, MongoDB down or not."""
    play_recently(fake_spotify, catalog, [(0, 1.0), (1, 0.5)])
    await setup_entry(uri=proxy.uri)
    assert sensor_state(hass, fake_spotify, "plays_today") == "2"
    await proxy.stop()  # MongoDB unreachable from here on

    tomorrow = dt_util.start_of_local_day(dt_util.now().date() + timedelta(days=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dt_util, "now", lambda *_args, **_kwargs: tomorrow)
        patch.setattr(dt_util, "start_of_local_day", _start_of_day_at(tomorrow))
        async_fire_time_changed(hass, dt_util.as_utc(tomorrow))
        await hass.async_block_till_done()
        assert sensor_state(hass, fake_spotify, "plays_today") == "0"
        assert sensor_state(hass, fake_spotify, "listening_time_today") == "0.0"
        assert sensor_state(hass, fake_spotify, "total_plays") == "2"


def _start_of_day_at(now: datetime) -> Callable[..., datetime]:
    original = dt_util.start_of_local_day

    def start_of_local_day(day: Any = None) -> datetime:
        return original(now.date() if day is None else day)

    return start_of_local_day


async def test_restart_from_the_outbox_after_midnight(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    hass_storage: dict[str, Any],
) -> None:
    """A start from yesterday's snapshot (MongoDB down) does not show yesterday's day totals."""
    play_recently(fake_spotify, catalog, [(0, 1.0), (1, 0.5)])
    entry = await setup_entry(uri=proxy.uri)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await proxy.stop()
    _moved_back_a_day(hass_storage, entry)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    assert sensor_state(hass, fake_spotify, "plays_today") == "0"


async def test_day_totals_on_the_day_clocks_go_back(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    freezer: FrozenDateTimeFactory,
) -> None:
    """25 October 2026 in Berlin has 25 hours: a play in its last hour is today's."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    now = datetime(2026, 10, 25, 22, 40, tzinfo=UTC)  # 23:40 CET, the day's 25th hour
    freezer.move_to(now)
    fake_spotify.now = now
    play_recently(fake_spotify, catalog, [(0, 10.0), (1, 2 * 60.0)])  # 23:30 and 21:40 local
    entry = await setup_entry()
    assert sensor_state(hass, fake_spotify, "plays_today") == "2"

    assert await hass.config_entries.async_reload(entry.entry_id)  # totals read from MongoDB
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor_state(hass, fake_spotify, "plays_today") == "2"


async def test_duplicate_plays_in_the_database_give_a_repair_not_an_outage(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Documents sharing (owner, played_at) block the unique index: scrobbling goes on."""
    owner, moment = ObjectId(), datetime(2021, 3, 1, 12, 0, tzinfo=UTC)
    old = [{"owner": owner, "id": track, "played_at": moment} for track in ("a", "a", "b")]
    await mongo_db["infos"].insert_many(old)
    plays = play_recently(fake_spotify, catalog, [(0, 5.0), (1, 3.0)])

    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"duplicate_plays_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {"account": entry.title, "count": "3"}
    mine = [p for p in await stored_plays(mongo_db) if p[1] != moment]
    assert mine == expected(plays)
    await tick(hass)  # the duplicate check still holds without the index
    assert [p for p in await stored_plays(mongo_db) if p[1] != moment] == expected(plays)

    # The README's clean-up: exact duplicates removed, the other track moved by 1 ms.
    doomed = await mongo_db["infos"].find_one({"owner": owner, "id": "a"})
    assert doomed is not None
    await mongo_db["infos"].delete_one({"_id": doomed["_id"]})
    await mongo_db["infos"].update_one(
        {"owner": owner, "id": "b"}, {"$set": {"played_at": moment + timedelta(milliseconds=1)}}
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"duplicate_plays_{entry.entry_id}") is None
    indexes = await mongo_db["infos"].index_information()
    assert any(spec.get("unique") for spec in indexes.values())


async def test_another_programs_play_index_gives_a_repair_not_an_outage(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A non-unique (owner, played_at) index of another program: a repair, scrobbling goes on."""
    await mongo_db["infos"].create_index([("owner", 1), ("played_at", 1)], name="their_index")
    plays = play_recently(fake_spotify, catalog, [(0, 5.0), (1, 3.0)])

    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "ok"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"foreign_play_index_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {"account": entry.title, "index": "their_index"}
    assert await stored_plays(mongo_db) == expected(plays)
    await tick(hass)
    assert await stored_plays(mongo_db) == expected(plays)
    assert "their_index" in await mongo_db["infos"].index_information()

    # The README's replacement: their index dropped, ours is built at the next start.
    await mongo_db["infos"].drop_index("their_index")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"foreign_play_index_{entry.entry_id}") is None
    )
    indexes = await mongo_db["infos"].index_information()
    assert any(spec.get("unique") for spec in indexes.values())


async def test_live_loop_upgrades_the_import_stub_tracks(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """A live play of a track the import knows only by name stores the full track."""
    entry = await setup_entry()
    plays = play_recently(fake_spotify, catalog, [(0, 3.0)])
    track_id = plays[0].track_id
    assert track_id is not None
    # The history import's stub, as it writes it.
    await mongo_db["tracks"].insert_one(
        {
            "id": track_id,
            "name": "From the export",
            "album": None,
            "artists": [],
            "type": "track",
            "uri": f"spotify:track:{track_id}",
            "scrobbler_stub": {"artist_name": "Somebody", "album_name": "Something"},
        }
    )
    fake_spotify.reset_log()
    await tick(hass)

    track = await mongo_db["tracks"].find_one({"id": track_id})
    assert track is not None
    assert "scrobbler_stub" not in track
    assert track["album"] == catalog.tracks[track_id].album_id
    assert track["artists"] == list(catalog.tracks[track_id].artist_ids)
    assert await mongo_db["tracks"].count_documents({"id": track_id}) == 1
    assert not fake_spotify.calls(f"/v1/tracks/{track_id}")
    assert entry.state is ConfigEntryState.LOADED


async def test_lost_reply_then_restart_counts_the_play_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """Found by the model-based test: a restart between a lost reply and its recovery.

    The restart reads the totals from MongoDB, which hold the play already; the recovering
    cycle then must not count it a second time (total plays was 2 for 1 play).
    """
    entry = await setup_entry(uri=proxy.uri)
    events = capture_events(hass)
    plays = play_recently(fake_spotify, catalog, [(0, 3.0)])
    proxy.lose_reply("insert", "infos")
    await tick(hass)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert await stored_plays(mongo_db) == expected(plays)
    assert sensor_state(hass, fake_spotify, "total_plays") == "1"
    assert [e.data["track_id"] for e in events] == [plays[0].track_id]


RECORDED = Path(__file__).parent / "fixtures" / "spotify-web-api"


@pytest.mark.parametrize("lost_reply", [False, True])
async def test_recorded_real_window_is_stored_exactly(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    lost_reply: bool,
) -> None:
    """Spotify's own recently-played answer (48 items, one track 7 times) is stored as is.

    With a lost insert reply on the way, the next cycle still stores and announces each play
    exactly once.
    """
    page = json.loads((RECORDED / "recently_played_tracks.json").read_text())
    page["next"] = page["next"].replace("https://api.spotify.com/v1", fake_spotify.api_url)
    fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
    if lost_reply:
        proxy.lose_reply("insert", "infos")
    events = capture_events(hass)
    await setup_entry(uri=proxy.uri)
    if lost_reply:
        fake_spotify.inject("/v1/me/player/recently-played", status=200, body=page)
        await tick(hass)

    want = sorted(
        (item["track"]["id"], datetime.fromisoformat(item["played_at"])) for item in page["items"]
    )
    assert await stored_plays(mongo_db) == sorted(want, key=lambda pair: pair[1])
    assert (
        sorted((e.data["track_id"], datetime.fromisoformat(e.data["played_at"])) for e in events)
        == want
    )
    assert sensor_state(hass, fake_spotify, "total_plays") == "48"
    repeated = await mongo_db["infos"].count_documents({"id": "4lPgN2pFIg6J0jnVdoursc"})
    assert repeated == 7


async def test_restart_during_an_outage_keeps_counting_the_waiting_plays(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """Found by the model-based test: total plays fell from 4 to 0 after such a restart."""
    entry = await setup_entry(uri=proxy.uri)
    proxy.set_down()
    plays = play_recently(fake_spotify, catalog, [(0, 9.0), (1, 6.0), (2, 3.0), (3, 1.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "4"
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"

    proxy.set_down(down=False)
    await tick(hass)
    assert await stored_plays(mongo_db) == expected(plays)
    assert sensor_state(hass, fake_spotify, "total_plays") == "4"


async def test_recovery_whose_own_reply_is_lost_again(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
) -> None:
    """Found by the model-based test (seed 4404): the cycle that finds the stored plays loses
    its `users` reply too; the plays then counted for nothing and were never announced."""
    await setup_entry(uri=proxy.uri)
    events = capture_events(hass)
    plays = play_recently(fake_spotify, catalog, [(0, 5.0), (1, 2.0)])
    proxy.lose_reply("update", "users", times=2)
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    await tick(hass)  # finds them stored; its own update's reply is lost again
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    await tick(hass)
    assert await stored_plays(mongo_db) == expected(plays)
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert sorted(e.data["track_id"] for e in events) == sorted(p.track_id for p in plays)


async def test_reconfigure_rebuilds_the_statistics_from_the_new_database(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    mongodb_uri: str,
) -> None:
    """The long-term statistics describe the database in use, not the one before."""
    play_recently(fake_spotify, catalog, [(0, 600.0), (1, 300.0), (2, 5.0)])
    entry = await setup_entry()
    await hass.async_block_till_done(wait_background_tasks=True)
    await assert_statistics_match(hass, entry, mongo_db)

    other = mongo_db.client[f"{mongo_db.name}_c"]
    try:
        # Another database that holds only one old play of this account (and later the
        # plays Spotify still returns).
        user = await mongo_db["users"].find_one({})
        assert user is not None
        await other["users"].insert_one({**user, "lastTimestamp": 0})
        old = await mongo_db["infos"].find_one({}, sort=[("played_at", 1)])
        assert old is not None
        await other["infos"].insert_one({**old, "played_at": old["played_at"] - timedelta(days=3)})
        await _reconfigure(hass, entry, mongodb_uri, other.name)
        await hass.async_block_till_done(wait_background_tasks=True)
        await assert_statistics_match(hass, entry, other)
    finally:
        await mongo_db.client.drop_database(other.name)


async def test_play_written_just_before_a_crash_is_counted_once(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Found in review: a crash after the insert, before the outbox was saved.

    The next start counts the play from MongoDB; the cycle's insert is refused by the unique
    index with the same track at that instant and must not count it a second time.
    """
    entry = await setup_entry()
    plays = play_recently(fake_spotify, catalog, [(0, 4.0), (1, 2.0)])
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    user = await mongo_db["users"].find_one({})
    assert user is not None
    # What the crashed run wrote: the plays, but not the cursor.
    await mongo_db["infos"].insert_many(
        [
            {
                "owner": user["_id"],
                "id": play.track_id,
                "albumId": catalog.tracks[play.track_id or ""].album_id,
                "primaryArtistId": catalog.tracks[play.track_id or ""].artist_ids[0],
                "artistIds": list(catalog.tracks[play.track_id or ""].artist_ids),
                "durationMs": catalog.tracks[play.track_id or ""].duration_ms,
                "played_at": play.played_at,
            }
            for play in plays
        ]
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await stored_plays(mongo_db) == expected(plays)
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"


async def test_import_with_a_lost_reply_is_seen_by_the_live_loop(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the model-based test: the import's insert reply is lost, its retry sees its
    own plays as duplicates, and the live loop then stored one of them a second time."""
    monkeypatch.setattr(import_manager, "MONGO_RETRY_DELAY", 0.01)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    first = play_recently(fake_spotify, catalog, [(0, 20.0)])
    await setup_entry(uri=proxy.uri)
    assert fake_spotify.now is not None
    track = catalog.tracks[sorted(catalog.tracks)[1]]
    late = Play(truncate_ms(fake_spotify.now - timedelta(minutes=1)), track)  # not shown yet
    write_export(
        tmp_path / "export",
        [music_entry(catalog, track.id, late.played_at, track.duration_ms)],
        per_file=10,
    )
    proxy.lose_reply("insert", "infos")
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": _entry_id(hass), "path": str(tmp_path / "export")},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert proxy.applied == [("lose_reply", "insert", "infos")]

    fake_spotify.add_plays([late])  # Spotify shows the play now, end-stamped to the ms
    await tick(hass)
    stored = await stored_plays(mongo_db)
    assert [track_id for track_id, _ in stored] == [first[0].track_id, track.id]


def _entry_id(hass: HomeAssistant) -> str:
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    return entry.entry_id


async def test_live_play_after_its_import_is_not_stored_again(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    tmp_path: Path,
) -> None:
    """Found by the model-based test: an export imported before the live loop saw its plays.

    Spotify then reports them start-stamped, minutes before the export's ts: they were
    stored twice. And the totals count the imported plays as soon as the import is done.
    """
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = await setup_entry()
    assert fake_spotify.now is not None
    tracks = [catalog.tracks[track_id] for track_id in sorted(catalog.tracks)[:2]]
    start = truncate_ms(fake_spotify.now - timedelta(minutes=20))
    plays, entries = [], []
    for track in (tracks[0], tracks[1], tracks[0]):  # a repeat too
        end = start + timedelta(milliseconds=track.duration_ms)
        plays.append(Play(start, track))  # start-stamped, as some clients do
        entries.append(music_entry(catalog, track.id, end, track.duration_ms))
        start = end
    write_export(tmp_path / "export", entries, per_file=10)
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(tmp_path / "export")},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await mongo_db["infos"].count_documents({}) == 3
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"

    fake_spotify.add_plays(plays)
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == 3
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"


async def test_midnight_during_a_cycle_restarts_the_day(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found in review: midnight passing while a cycle runs; the cycle's end kept yesterday."""
    play_recently(fake_spotify, catalog, [(0, 2.0), (1, 1.0)])
    await setup_entry()
    assert sensor_state(hass, fake_spotify, "plays_today") == "2"
    tomorrow = dt_util.start_of_local_day(dt_util.now().date() + timedelta(days=1))
    original = Scrobbler.run_cycle

    async def across_midnight(self: Scrobbler, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(dt_util, "now", lambda *_args, **_kwargs: tomorrow)
        monkeypatch.setattr(dt_util, "start_of_local_day", _start_of_day_at(tomorrow))
        async_fire_time_changed(hass, dt_util.as_utc(tomorrow))  # the midnight timer
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Scrobbler, "run_cycle", across_midnight)
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "plays_today") == "0"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"


async def test_statistics_reset_survives_a_failed_start_after_reconfigure(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    mongodb_uri: str,
) -> None:
    """Found in review: the first start on the new database fails (Spotify refuses the
    token) before the statistics run; the next start must still replace the old rows."""
    play_recently(fake_spotify, catalog, [(0, 600.0), (1, 300.0)])
    entry = await setup_entry()
    old = await mongo_db["infos"].find_one({})
    assert old is not None  # a play only the old database has: its hour must go
    await mongo_db["infos"].insert_one(
        {**old, "_id": ObjectId(), "played_at": old["played_at"] - timedelta(days=3)}
    )
    await async_refresh_statistics(hass, entry, None)
    await hass.async_block_till_done(wait_background_tasks=True)
    await assert_statistics_match(hass, entry, mongo_db)
    other = mongo_db.client[f"{mongo_db.name}_d"]
    try:
        fake_spotify.expire_access_tokens()
        fake_spotify.token_revoked = True
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: mongodb_uri, CONF_DATABASE: other.name}
        )
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is not ConfigEntryState.LOADED

        fake_spotify.token_revoked = False
        await other["infos"].delete_many({})  # the new database holds no play of ours yet
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
        await assert_statistics_match(hass, entry, other)
    finally:
        await mongo_db.client.drop_database(other.name)


async def test_waiting_plays_stay_counted_when_an_import_stores_newer_ones(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    proxy: MongoProxy,
    tmp_path: Path,
) -> None:
    """Found by the model-based test (soak seeds 101, 102, 104): plays waiting for MongoDB
    stopped counting once an import stored a newer play; total plays fell from 2 to 1."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = await setup_entry(uri=proxy.uri)
    proxy.set_down()
    waiting = play_recently(fake_spotify, catalog, [(0, 12.0), (1, 8.0)])
    await tick(hass)
    assert sensor_state(hass, fake_spotify, "pending_plays") == "2"
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"

    proxy.set_down(down=False)
    assert fake_spotify.now is not None
    track = catalog.tracks[sorted(catalog.tracks)[2]]
    later = Play(truncate_ms(fake_spotify.now - timedelta(minutes=1)), track)  # not shown yet
    first = waiting[0]
    write_export(  # the first waiting play (end-stamped in the export) and a newer one
        tmp_path / "export",
        [
            music_entry(
                catalog,
                first.track_id,
                first.played_at + timedelta(milliseconds=first.track.duration_ms),
                first.track.duration_ms,
            ),
            music_entry(catalog, track.id, later.played_at, track.duration_ms),
        ],
        per_file=10,
    )
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(tmp_path / "export")},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await mongo_db["infos"].count_documents({}) == 2
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"

    fake_spotify.add_plays([later])
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == 3
    assert sensor_state(hass, fake_spotify, "pending_plays") == "0"
    assert sensor_state(hass, fake_spotify, "total_plays") == "3"


async def test_repeat_right_after_an_imported_play_is_stored(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    tmp_path: Path,
) -> None:
    """Found by the model-based test (soak seed 101): a track played twice in a row,
    start-stamped, its first play imported before the live loop saw it. The repeat starts
    a quarter of a second after the export's ts and was taken for the imported play: lost."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = await setup_entry()
    assert fake_spotify.now is not None
    track = catalog.tracks[min(catalog.tracks)]
    length = timedelta(milliseconds=track.duration_ms)
    first = truncate_ms(fake_spotify.now - 2 * length - timedelta(minutes=1))
    repeat = first + length + timedelta(milliseconds=250)
    write_export(
        tmp_path / "export",
        [music_entry(catalog, track.id, first + length, track.duration_ms)],
        per_file=10,
    )
    await hass.services.async_call(
        DOMAIN,
        "import_history",
        {"config_entry_id": entry.entry_id, "path": str(tmp_path / "export")},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await mongo_db["infos"].count_documents({}) == 1

    fake_spotify.add_plays([Play(first, track), Play(repeat, track)])  # start-stamped
    await tick(hass)
    await tick(hass)
    assert await mongo_db["infos"].count_documents({}) == 2
    assert sensor_state(hass, fake_spotify, "total_plays") == "2"
