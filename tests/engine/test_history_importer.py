"""The importer on its own against MongoDB: foreign documents, taken instants, blacklists."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from custom_components.spotify_scrobbler.engine.history_import import HistoryImporter
from custom_components.spotify_scrobbler.engine.store import ScrobbleStore
from tests.conftest import MongoDb
from tests.export_fake import music_entry
from tests.spotify_fake import Catalog

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


async def importer_for(db: MongoDb, owner: ObjectId, blacklist: list[str]) -> HistoryImporter:
    store = ScrobbleStore(db)
    await store.ensure_indexes()
    importer = HistoryImporter(store, owner, blacklist)
    await importer.ensure_indexes()
    await importer.prepare(START + timedelta(days=30))
    return importer


async def test_foreign_documents_do_not_break_the_import(
    mongo_db: MongoDb, catalog: Catalog
) -> None:
    """Plays without an instant or a track id, tracks without an id: ignored, not fatal.

    A well-formed stored play of the same day is still recognised as the entry's play.
    """
    owner = ObjectId()
    first, second = sorted(catalog.tracks)[:2]
    await mongo_db["infos"].insert_many(
        [
            {"owner": owner, "id": first, "played_at": START},  # the live loop's play
            {"owner": owner, "id": second, "played_at": "2024-03-01T09:00:00Z"},
            {"owner": owner, "id": 42, "played_at": START + timedelta(hours=2)},
        ]
    )
    await mongo_db["tracks"].insert_many([{"id": 7, "name": "odd"}, {"name": "no id"}])
    importer = await importer_for(mongo_db, owner, [])

    result = await importer.import_entries(
        [
            music_entry(catalog, first, START + timedelta(seconds=100), 100_000),
            music_entry(catalog, second, START + timedelta(hours=3), 100_000),
        ]
    )
    assert (result.counts.imported, result.counts.duplicates) == (1, 1)
    stored = {
        doc["id"]
        async for doc in mongo_db["infos"].find({"owner": owner, "scrobbler_ms_played": 100_000})
    }
    assert stored == {second}


async def test_an_instant_held_by_another_tracks_play_is_not_stored_twice(
    mongo_db: MongoDb, catalog: Catalog
) -> None:
    """One play per (account, instant), as in Your Spotify: counted as a duplicate, no error."""
    owner = ObjectId()
    first, second = sorted(catalog.tracks)[:2]
    end = START + timedelta(hours=1)
    await mongo_db["infos"].insert_one({"owner": owner, "id": second, "played_at": end})
    importer = await importer_for(mongo_db, owner, [])

    result = await importer.import_entries(
        [
            music_entry(catalog, first, end, 100_000),
            music_entry(catalog, first, end + timedelta(minutes=5), 100_000),
        ]
    )
    assert (result.counts.imported, result.counts.duplicates) == (1, 1)
    assert result.oldest == result.newest == end + timedelta(minutes=5)
    held = await mongo_db["infos"].find_one({"owner": owner, "played_at": end})
    assert held is not None
    assert held["id"] == second


async def test_plays_of_a_blacklisted_artists_known_track_are_stored_blacklisted(
    mongo_db: MongoDb, catalog: Catalog
) -> None:
    """A track stored in full gives its ids at once, and its artist's blacklisting with them."""
    owner = ObjectId()
    track_id = min(catalog.tracks)
    track = catalog.tracks[track_id]
    await mongo_db["tracks"].insert_one(
        {
            "id": track_id,
            "name": track.name,
            "album": track.album_id,
            "artists": list(track.artist_ids),
        }
    )
    importer = await importer_for(mongo_db, owner, [track.artist_ids[0]])

    result = await importer.import_entries(
        [music_entry(catalog, track_id, START + timedelta(hours=1), 100_000)]
    )
    assert result.counts.imported == 1
    doc = await mongo_db["infos"].find_one({"owner": owner})
    assert doc is not None
    assert (doc["albumId"], doc["primaryArtistId"]) == (track.album_id, track.artist_ids[0])
    assert doc["blacklistedBy"] == ["artist"]
    assert await mongo_db["scrobbler_import_pending"].count_documents({}) == 0
