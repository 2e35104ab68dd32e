"""Album requests are made only where names give a reason (stored albums, queued mates)."""

from collections.abc import Sequence
from typing import Any

from bson import ObjectId

from custom_components.spotify_scrobbler.engine.album_listings import AlbumListings
from custom_components.spotify_scrobbler.engine.history_import import TrackInfo
from custom_components.spotify_scrobbler.engine.store import ScrobbleStore
from tests.conftest import MongoDb


async def test_no_names_no_album_request(mongo_db: MongoDb) -> None:
    """Stubs without an album name, or a fetched track without an album: nothing is asked."""
    asked: list[tuple[str, Sequence[str]]] = []

    async def lookup(kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        asked.append((kind, ids))
        return []

    async def store_tracks(
        _objects: Sequence[dict[str, Any]], _ids: set[str]
    ) -> dict[str, TrackInfo]:
        return {}

    listings = AlbumListings(
        ScrobbleStore(mongo_db), mongo_db["pending"], ObjectId(), lookup, store_tracks
    )
    assert await listings.by_names({"t": {"artist_name": "A", "album_name": None}}, set()) == {}
    mates = {"u": {"album_name": "X", "artist_name": "A"}}
    assert await listings.mates_of([{"id": "t", "album": None, "artists": []}], mates, set()) == {}
    assert asked == []
    assert listings.resolved_tracks == 0
