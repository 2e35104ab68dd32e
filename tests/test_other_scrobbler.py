"""Another scrobbler on the same account: detected, explained, and nothing lost or doubled.

Your Spotify's looper (documents shaped as it writes them: its fields only, its
``lastTimestamp`` moved to "now") or a second Home Assistant (our fields, another writer)
stores some plays before this integration's cycle reaches them (issue 13).
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import DOMAIN

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify, Play
from .test_scrobbling import (
    capture_events,
    expected,
    play_recently,
    sensor_state,
    stored_plays,
    tick,
)
from .test_your_spotify_sharing import _your_spotify_user

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


def issue_of(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"other_scrobbler_{entry.entry_id}")


def looper_document(owner: ObjectId, catalog: Catalog, play: Play) -> dict[str, Any]:
    """A play as Your Spotify's looper inserts it (no field of ours)."""
    assert play.track_id is not None
    track = catalog.tracks[play.track_id]
    return {
        "owner": owner,
        "id": track.id,
        "albumId": track.album_id,
        "primaryArtistId": track.artist_ids[0],
        "artistIds": list(track.artist_ids),
        "durationMs": track.duration_ms,
        "played_at": play.played_at,
    }


@pytest.mark.parametrize("writer", ["your_spotify", "another_home_assistant"])
async def test_plays_stored_first_by_another_scrobbler(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    freezer: FrozenDateTimeFactory,
    writer: str,
) -> None:
    """Each play is stored once whoever writes it first; Home Assistant counts and
    announces all of them; a repair says so and goes 7 days after the last such play."""
    user = _your_spotify_user(fake_spotify)
    await mongo_db["users"].insert_one(user)
    first = play_recently(fake_spotify, catalog, [(0, 60.0), (1, 55.0)])
    entry = await setup_entry()
    assert issue_of(hass, entry) is None  # plays the other one never touched
    events = capture_events(hass)

    later = play_recently(fake_spotify, catalog, [(2, 20.0), (3, 15.0), (4, 10.0)])
    theirs = [looper_document(user["_id"], catalog, play) for play in later[:2]]
    if writer == "another_home_assistant":
        theirs = [{**doc, "scrobbler_writer": "01JOTHERHOMEASSISTANT"} for doc in theirs]
    await mongo_db["infos"].insert_many([dict(doc) for doc in theirs])
    await mongo_db["users"].update_one({"_id": user["_id"]}, {"$set": {"lastTimestamp": 1}})

    await tick(hass)
    assert await stored_plays(mongo_db) == expected(first + later)
    for doc in theirs:  # what the other program wrote is left as it wrote it
        stored = await mongo_db["infos"].find_one({"played_at": doc["played_at"]}, {"_id": 0})
        assert stored == doc
    assert [e.data["track_id"] for e in events] == [p.track_id for p in later]
    assert sensor_state(hass, fake_spotify, "total_plays") == "5"
    issue = issue_of(hass, entry)
    assert issue is not None
    assert issue.translation_key == "other_scrobbler"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == "2"
    assert issue.is_persistent  # a restart does not hide it

    # Plays only this integration stores change nothing; the issue stays.
    newest = play_recently(fake_spotify, catalog, [(5, 3.0)])
    await tick(hass)
    assert await stored_plays(mongo_db) == expected(first + later + newest)
    assert sensor_state(hass, fake_spotify, "total_plays") == "6"
    issue = issue_of(hass, entry)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == "2"

    freezer.tick(timedelta(days=6, hours=23))
    await tick(hass)
    assert issue_of(hass, entry) is not None
    freezer.tick(timedelta(hours=1))
    await tick(hass)
    assert issue_of(hass, entry) is None
    assert len(events) == len(later + newest)


async def test_the_repair_goes_with_the_entry(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Deleting the entry (one of the repair's two choices) removes the kept issue."""
    user = _your_spotify_user(fake_spotify)
    await mongo_db["users"].insert_one(user)
    entry = await setup_entry()
    plays = play_recently(fake_spotify, catalog, [(2, 20.0)])
    await mongo_db["infos"].insert_one(looper_document(user["_id"], catalog, plays[0]))
    await tick(hass)
    assert issue_of(hass, entry) is not None

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert issue_of(hass, entry) is None
