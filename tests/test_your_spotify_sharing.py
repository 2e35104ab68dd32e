"""A database shared with Your Spotify, in both orders (issue 13).

Documents are shaped as Your Spotify's server writes them (schemas, createUser, looper,
migrations: read from its code); the assertions use its own queries.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import CONF_BLACKLISTED_ARTISTS
from custom_components.spotify_scrobbler.engine.your_spotify import MIGRATION_TITLES

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def _your_spotify_user(fake: FakeSpotify) -> dict[str, Any]:
    """A user as Your Spotify 1.20 keeps it after its login: tokens, settings, admin."""
    return {
        "_id": ObjectId(),
        "username": "Name chosen in Your Spotify",
        "admin": True,
        "spotifyId": fake.user_id,
        "expiresIn": 1_800_000_000_000,
        "accessToken": "ys-access",
        "refreshToken": "ys-refresh",
        "lastTimestamp": 0,
        "tracks": [],
        "settings": {
            "historyLine": True,
            "preferredStatsPeriod": "week",
            "nbElements": 25,
            "metricUsed": "duration",
            "darkMode": "dark",
            "blacklistedArtists": ["4tZwfgrHOc3mvqYlEYSvVi"],
            "dateFormat": "default",
        },
        "publicToken": None,
        "firstListenedAt": datetime(2020, 5, 1, tzinfo=UTC),
    }


async def test_fresh_database_is_ready_for_your_spotify_first_start(
    hass: Any,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Its migrations are marked done (spotify-auth would delete our token-less user and
    every play of it), its login prerequisites exist, and our user looks like its own."""
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)
    banned = tracks[0].artist_ids[0]
    await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [banned]})
    play_recently(fake_spotify, catalog, [(0, 6.0), (1, 3.0)])
    await tick(hass)

    (state,) = await mongo_db["migrations"].find({}).to_list()
    assert [m["title"] for m in state["migrations"]] == list(MIGRATION_TITLES)
    assert all(m["timestamp"] for m in state["migrations"])
    assert await mongo_db["globalpreferences"].count_documents({"allowRegistrations": True}) == 1
    (private,) = await mongo_db["privatedatas"].find({}).to_list()
    assert len(private["jwtPrivateKey"]) >= 40

    (user,) = await mongo_db["users"].find({}).to_list()
    assert user["admin"] is True  # the first user, as Your Spotify makes it
    assert user["accessToken"] == user["refreshToken"] == ""  # no token is ever written
    assert user["settings"]["dateFormat"] == "default"
    assert user["settings"]["blacklistedArtists"] == [banned]

    # Your Spotify's blacklist queries work on our plays: $elemMatch and $addToSet.
    docs = await mongo_db["infos"].find({}).sort("played_at", 1).to_list()
    assert [d.get("blacklistedBy") for d in docs] == [["artist"], None]
    unblacklist = await mongo_db["infos"].update_many(
        {"owner": user["_id"], "blacklistedBy": {"$elemMatch": {"$eq": "artist"}}},
        {"$pull": {"blacklistedBy": "artist"}},
    )
    assert unblacklist.modified_count == 1
    again = await mongo_db["infos"].update_many(
        {"owner": user["_id"]}, {"$addToSet": {"blacklistedBy": "artist"}}
    )
    assert again.modified_count == 2

    # A second start leaves all of it alone (one document each, keys unchanged).
    assert await mongo_db["migrations"].count_documents({}) == 1


async def test_database_of_your_spotify_keeps_what_it_wrote(
    hass: Any,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Username, settings (its blacklist), tokens and plays of Your Spotify stay as they
    are; no migration state, preferences or key of ours is added."""
    user = _your_spotify_user(fake_spotify)
    await mongo_db["users"].insert_one(dict(user))
    await mongo_db["migrations"].insert_one(
        {"lastRun": MIGRATION_TITLES[-1], "migrations": [{"title": MIGRATION_TITLES[0]}]}
    )
    track = sorted(catalog.tracks.values(), key=lambda t: t.id)[2]
    theirs = {
        "owner": user["_id"],
        "id": track.id,
        "albumId": track.album_id,
        "primaryArtistId": track.artist_ids[0],
        "artistIds": list(track.artist_ids),
        "durationMs": track.duration_ms,
        "played_at": (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0),
        "blacklistedBy": ["artist"],
    }
    await mongo_db["infos"].insert_one(dict(theirs))

    await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [track.artist_ids[0]]})
    play_recently(fake_spotify, catalog, [(0, 2.0)])
    await tick(hass)
    await hass.config_entries.async_reload(
        hass.config_entries.async_entries("spotify_scrobbler")[0].entry_id
    )
    await hass.async_block_till_done(wait_background_tasks=True)

    stored = await mongo_db["users"].find_one({"_id": user["_id"]})
    assert stored is not None
    for key, value in user.items():
        if key != "lastTimestamp":  # the scrobbling cursor both scrobblers move
            assert stored[key] == value, key
    assert await mongo_db["users"].count_documents({}) == 1
    kept = await mongo_db["infos"].find_one({"played_at": theirs["played_at"]}, {"_id": 0})
    assert kept == theirs
    assert await mongo_db["privatedatas"].count_documents({}) == 0
    assert await mongo_db["globalpreferences"].count_documents({}) == 0
    assert await mongo_db["migrations"].count_documents({}) == 1


async def test_plays_of_an_older_version_get_the_array_blacklist(
    hass: Any,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Version 1 wrote blacklistedBy as the string "artist", which Your Spotify's
    unblacklist never matches: rewritten once, and the user gets the fields it lacked."""
    owner = ObjectId()
    await mongo_db["users"].insert_one(
        {"_id": owner, "spotifyId": fake_spotify.user_id, "username": "x", "lastTimestamp": 0}
    )
    track = min(catalog.tracks.values(), key=lambda t: t.id)
    at = datetime.now(UTC) - timedelta(days=1)
    await mongo_db["infos"].insert_one(
        {"owner": owner, "id": track.id, "played_at": at, "blacklistedBy": "artist"}
    )
    await setup_entry()

    doc = await mongo_db["infos"].find_one({"owner": owner})
    assert doc is not None
    assert doc["blacklistedBy"] == ["artist"]
    user = await mongo_db["users"].find_one({"_id": owner})
    assert user is not None
    assert user["settings"]["dateFormat"] == "default"
    assert user["scrobbler"]["format"] == 2
    assert user["username"] == "x"
