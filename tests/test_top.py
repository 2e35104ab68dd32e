"""Action top: rankings computed in MongoDB, checked against a brute-force count in Python."""

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spotify_scrobbler.const import DOMAIN
from custom_components.spotify_scrobbler.engine.rollups import mark_stale

from .conftest import MongoDb
from .spotify_fake import Catalog, FakeSpotify

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]

KEYS = {"tracks": "id", "artists": "primaryArtistId", "albums": "albumId"}


@dataclass(frozen=True, slots=True)
class StoredPlay:
    """A generated ``infos`` document, as the test knows it."""

    track_id: str
    album_id: str | None
    artist_ids: tuple[str, ...]
    duration_ms: int
    played_at: datetime
    blacklisted: bool

    def key(self, kind: str) -> str | None:
        """The id this play counts for in a ranking of ``kind``."""
        return {"tracks": self.track_id, "artists": self.artist_ids[0], "albums": self.album_id}[
            kind
        ]

    def document(self, owner: ObjectId) -> dict[str, Any]:
        """The document in Your Spotify's schema."""
        doc: dict[str, Any] = {
            "owner": owner,
            "id": self.track_id,
            "albumId": self.album_id,
            "primaryArtistId": self.artist_ids[0],
            "artistIds": list(self.artist_ids),
            "durationMs": self.duration_ms,
            "played_at": self.played_at,
        }
        if self.blacklisted:
            doc["blacklistedBy"] = ["artist"]
        return doc


def ms(moment: datetime) -> datetime:
    """Truncated to milliseconds, like BSON dates."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def generate_plays(catalog: Catalog, now: datetime, boundaries: list[datetime]) -> list[StoredPlay]:
    """About 700 plays over two years, denser lately, few tracks so that ties happen.

    Each boundary gets a play exactly on it (included in the period) and one 1 ms before.
    """
    rng = random.Random(42)  # noqa: S311 -- test data
    tracks = sorted(catalog.tracks.values(), key=lambda t: t.id)[:25]
    banned = tracks[0].artist_ids[0]
    moments = [now - timedelta(days=rng.uniform(0, 730)) for _ in range(300)]
    moments += [now - timedelta(hours=rng.uniform(0, 24 * 40)) for _ in range(350)]
    moments += [now - timedelta(minutes=rng.uniform(1, 600)) for _ in range(40)]
    for boundary in boundaries:
        moments += [boundary, boundary - timedelta(milliseconds=1)]
    plays = []
    for moment in moments:
        track = rng.choice(tracks)
        plays.append(
            StoredPlay(
                track_id=track.id,
                # Some foreign documents have no album: they count for tracks and artists only.
                album_id=None if rng.random() < 0.05 else track.album_id,
                artist_ids=track.artist_ids,
                # A few fixed durations make listening-time ties likely too.
                duration_ms=rng.choice((120_000, 180_000, 240_000)),
                played_at=ms(moment),
                blacklisted=track.artist_ids[0] == banned,
            )
        )
    # Unique (owner, played_at) index: keep one play per instant.
    return list({play.played_at: play for play in plays}.values())


def brute_force(
    plays: list[StoredPlay],
    kind: str,
    start: datetime | None,
    end: datetime | None,
    order: str,
    limit: int,
) -> list[tuple[str, int, int]]:
    """(id, plays, listening ms) ranked like the action promises: value desc, then id asc."""
    counts: dict[str, list[int]] = {}
    for play in plays:
        key = play.key(kind)
        if play.blacklisted or key is None:
            continue
        if (start is not None and play.played_at < start) or (
            end is not None and play.played_at >= end
        ):
            continue
        row = counts.setdefault(key, [0, 0])
        row[0] += 1
        row[1] += play.duration_ms
    value = 0 if order == "plays" else 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1][value], item[0]))
    return [(key, row[0], row[1]) for key, row in ranked[:limit]]


async def store_catalog(mongo_db: MongoDb, catalog: Catalog) -> None:
    """Track, album and artist documents with names, covers and links."""
    await mongo_db["tracks"].insert_many(
        [
            {
                "id": t.id,
                "name": t.name,
                "album": t.album_id,
                "artists": list(t.artist_ids),
                "external_urls": {"spotify": f"https://open.spotify.com/track/{t.id}"},
            }
            for t in catalog.tracks.values()
        ]
    )
    await mongo_db["albums"].insert_many(
        [
            {
                "id": a.id,
                "name": a.name,
                "artists": list(a.artist_ids),
                "images": [{"url": url, "height": size} for url, size in a.images],
            }
            for a in catalog.albums.values()
        ]
    )
    await mongo_db["artists"].insert_many(
        [
            {
                "id": a.id,
                "name": a.name,
                "images": [{"url": url, "height": size} for url, size in a.images],
                "external_urls": {"spotify": f"https://open.spotify.com/artist/{a.id}"},
            }
            for a in catalog.artists.values()
        ]
    )


def period_starts() -> dict[str, datetime | None]:
    """Where each period starts, computed independently of the integration."""
    local_now = dt_util.now()
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)

    def local(day: datetime) -> datetime:
        # Re-localise so that a DST change between the day and now is honoured.
        naive = day.replace(tzinfo=None)
        return dt_util.as_utc(naive.replace(tzinfo=dt_util.get_default_time_zone()))

    return {
        "today": local(midnight),
        "week": local(midnight - timedelta(days=midnight.weekday())),
        "month": local(midnight.replace(day=1)),
        "year": local(midnight.replace(month=1, day=1)),
        "all_time": None,
    }


def plays_owner(entry: MockConfigEntry) -> ObjectId:
    """The account's id in MongoDB."""
    account = entry.runtime_data.coordinator.account
    assert account is not None
    return account.owner


async def call_top(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """The action's response."""
    response = await hass.services.async_call(
        DOMAIN, "top", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


@pytest.fixture
async def history(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> tuple[MockConfigEntry, list[StoredPlay]]:
    """A loaded account whose MongoDB holds the generated history."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    entry = await setup_entry()
    user = await mongo_db["users"].find_one({"spotifyId": fake_spotify.user_id})
    assert user is not None
    starts = [start for start in period_starts().values() if start is not None]
    plays = generate_plays(catalog, dt_util.utcnow(), starts)
    await mongo_db["infos"].insert_many([play.document(user["_id"]) for play in plays])
    await store_catalog(mongo_db, catalog)
    # Another program's plays: the next recount finds the rollups short and the rebuild
    # reads them.
    await entry.runtime_data.coordinator.async_recount()
    entry.runtime_data.rollups.schedule()
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry, plays


async def ranked_by_rollups_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No aggregation may run: every ranking comes from the rollups."""

    async def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("an aggregation ran: the rollups were not used")

    monkeypatch.setattr(AsyncCollection, "aggregate", refused)


@pytest.mark.parametrize("rollups", ["true", "stale"])
@pytest.mark.parametrize("order", ["plays", "listening_time"])
async def test_top_matches_a_brute_force_count(
    hass: HomeAssistant,
    history: tuple[MockConfigEntry, list[StoredPlay]],
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
    order: str,
    rollups: str,
) -> None:
    """Every period and kind ranks exactly like a count over the generated plays: from the
    rollups, and counted in MongoDB while they are stale."""
    entry, plays = history
    if rollups == "true":
        await ranked_by_rollups_only(monkeypatch)
    else:
        await mark_stale(mongo_db, plays_owner(entry), None)
    ties = 0
    for period, start in period_starts().items():
        for limit in (5, 50):
            response = await call_top(
                hass, config_entry_id=entry.entry_id, period=period, order=order, limit=limit
            )
            assert response["start"] == (start.isoformat() if start else None)
            for kind in KEYS:
                expected = brute_force(plays, kind, start, None, order, limit)
                got = [(e["id"], e["plays"], e["listening_ms"]) for e in response[kind]]
                assert got == expected, (period, kind, limit)
                value = 1 if order == "plays" else 2
                ties += len(expected) - len({row[value] for row in expected})
    assert ties > 10  # the data really exercises the id tie-break


async def test_top_names_covers_and_links(
    hass: HomeAssistant,
    history: tuple[MockConfigEntry, list[StoredPlay]],
    catalog: Catalog,
) -> None:
    """Entries carry names, artist names, cover and Spotify link, and minutes."""
    entry, _ = history
    response = await call_top(hass, config_entry_id=entry.entry_id, limit=3)
    track = response["tracks"][0]
    known = catalog.tracks[track["id"]]
    album = catalog.albums[known.album_id]
    assert track["name"] == known.name
    assert track["artist_names"] == [catalog.artists[a].name for a in known.artist_ids]
    assert track["image_url"] == (album.images[0][0] if album.images else None)
    assert track["spotify_url"] == f"https://open.spotify.com/track/{known.id}"
    assert track["listening_minutes"] == round(track["listening_ms"] / 60_000, 1)

    artist = response["artists"][0]
    known_artist = catalog.artists[artist["id"]]
    assert artist["name"] == known_artist.name
    assert "artist_names" not in artist
    assert artist["spotify_url"] == f"https://open.spotify.com/artist/{known_artist.id}"

    top_album = response["albums"][0]
    known_album = catalog.albums[top_album["id"]]
    assert top_album["name"] == known_album.name
    assert top_album["artist_names"] == [catalog.artists[a].name for a in known_album.artist_ids]


async def test_top_custom_range_and_kinds(
    hass: HomeAssistant, history: tuple[MockConfigEntry, list[StoredPlay]]
) -> None:
    """start is included and end excluded; a naive time is local; only asked kinds answer."""
    entry, plays = history
    end = dt_util.utcnow() - timedelta(days=3)
    start = end - timedelta(days=20)
    # Plays on the edges decide the boundary semantics.
    edge = sorted(p.played_at for p in plays if start < p.played_at < end)
    start, end = edge[0], edge[-1]
    response = await call_top(
        hass,
        config_entry_id=entry.entry_id,
        kinds="albums",
        start=dt_util.as_local(start).replace(tzinfo=None).isoformat(),
        end=end.isoformat(),
        limit=50,
    )
    assert set(response) == {"start", "end", "albums"}
    assert response["start"] == start.isoformat()
    got = [(e["id"], e["plays"], e["listening_ms"]) for e in response["albums"]]
    assert got == brute_force(plays, "albums", start, end, "plays", 50)


async def test_top_of_an_empty_period(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """No plays: empty lists, not an error."""
    entry = await setup_entry()
    response = await call_top(hass, config_entry_id=entry.entry_id, period="today")
    assert response["tracks"] == response["artists"] == response["albums"] == []


async def test_top_refuses_bad_input(
    hass: HomeAssistant,
    history: tuple[MockConfigEntry, list[StoredPlay]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unknown or unloaded accounts, contradictory ranges and a dead MongoDB are reported."""
    entry, _ = history
    now = dt_util.utcnow()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"config_entry_id": "nope"}, "unknown_entry"),
        ({"period": "week", "start": now.isoformat()}, "period_and_range"),
        ({"start": now.isoformat(), "end": now.isoformat()}, "invalid_range"),
        (
            {"start": now.isoformat(), "end": (now - timedelta(days=1)).isoformat()},
            "invalid_range",
        ),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as err:
            await call_top(hass, **({"config_entry_id": entry.entry_id} | data))
        assert err.value.translation_key == key

    with pytest.raises(Exception, match="limit"):  # voluptuous: 1-50
        await call_top(hass, config_entry_id=entry.entry_id, limit=51)
    with pytest.raises(Exception, match="kinds"):
        await call_top(hass, config_entry_id=entry.entry_id, kinds=["songs"])

    async def down(*_: Any, **__: Any) -> Any:
        raise AutoReconnect("connection lost (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(AsyncCollection, "aggregate", down)
        patch.setattr(AsyncCollection, "find_one", down)
        with pytest.raises(HomeAssistantError) as err:
            await call_top(hass, config_entry_id=entry.entry_id)
    assert err.value.translation_key == "mongodb_unavailable"
    assert err.value.translation_placeholders == {"account": entry.title}

    await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await call_top(hass, config_entry_id=entry.entry_id)
    assert err.value.translation_key == "entry_not_loaded"
