"""The metadata enrichment on its own: real MongoDB, the fake Spotify, a fake clock.

Plays come from the engine's importer (stub tracks, null ids, a queue); each test checks
what the enrichment leaves in MongoDB and what it asked Spotify.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from bson import ObjectId

from custom_components.spotify_scrobbler.engine import enrichment_writes, import_enrichment
from custom_components.spotify_scrobbler.engine.history_import import (
    PENDING_COLLECTION,
    STAGING_COLLECTION,
    HistoryImporter,
)
from custom_components.spotify_scrobbler.engine.import_enrichment import MetadataEnricher
from custom_components.spotify_scrobbler.engine.payload import parse_item
from custom_components.spotify_scrobbler.engine.spotify import (
    BatchSupport,
    RequestGate,
    SpotifyAuthError,
    SpotifyClient,
)
from custom_components.spotify_scrobbler.engine.store import ScrobbleStore
from tests.conftest import MongoDb
from tests.export_fake import music_entry
from tests.spotify_fake import Catalog, FakeSpotify

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class Clock:
    """Monotonic time that only the enricher's sleeps move."""

    now: float = 1000.0
    slept: list[float] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.slept is None:
            self.slept = []
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Account:
    """One account's imported plays, and what enriching them needs."""

    store: ScrobbleStore
    owner: ObjectId
    track_ids: list[str]
    plays: int


async def import_plays(db: MongoDb, catalog: Catalog, tracks: int, per_track: int) -> Account:
    """Import ``per_track`` plays of each of ``tracks`` catalogue tracks (no ids yet)."""
    return await import_tracks(db, catalog, list(catalog.tracks)[:tracks], per_track)


async def import_tracks(
    db: MongoDb, catalog: Catalog, track_ids: list[str], per_track: int
) -> Account:
    """Import ``per_track`` plays of each of these catalogue tracks (no ids yet)."""
    store = ScrobbleStore(db)
    await store.ensure_indexes()
    owner = ObjectId()
    tracks = len(track_ids)
    importer = HistoryImporter(store, owner)  # the loop's default executor
    await importer.ensure_indexes()
    await importer.prepare(START + timedelta(days=30))
    entries = [
        music_entry(catalog, track_id, START + timedelta(minutes=10 * (n * tracks + i)), 120_000)
        for n in range(per_track)
        for i, track_id in enumerate(track_ids)
    ]
    result = await importer.import_entries(entries)
    assert result.counts.imported == tracks * per_track
    return Account(store, owner, track_ids, tracks * per_track)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def make_enricher(
    session: aiohttp.ClientSession,
    fake: FakeSpotify,
    account: Account,
    clock: Clock,
    *,
    token: Callable[[], Awaitable[str]] | None = None,
    gate: RequestGate | None = None,
) -> MetadataEnricher:
    async def valid_token() -> str:
        return fake.access_token

    gate = gate or RequestGate(spacing=0, clock=clock)
    client = SpotifyClient(
        session,
        token or valid_token,
        gate,
        base_url=fake.api_url,
        batch_support=BatchSupport(allowed=False),
        sleep=clock.sleep,
    )
    return MetadataEnricher(
        client,
        gate,
        account.store,
        account.owner,
        list,
        interval=0,
        retry_delay=7,
        sleep=clock.sleep,
        clock=clock,
    )


async def without_ids(account: Account) -> int:
    return await account.store.infos.count_documents(
        {"owner": account.owner, "primaryArtistId": None}
    )


async def queued(account: Account) -> int:
    return await account.store.db[PENDING_COLLECTION].count_documents({"owner": account.owner})


async def enriched_then_mistimed(
    session: aiohttp.ClientSession,
    fake: FakeSpotify,
    catalog: Catalog,
    db: MongoDb,
    per_track: int,
    **fields: Any,
) -> tuple[Account, str]:
    """One track's plays, enriched, then as an older version left them: the export's
    ms_played (1234 here) in ``durationMs``, and the track queued again for its length."""
    account = await import_plays(db, catalog, tracks=1, per_track=per_track)
    (track_id,) = account.track_ids
    await make_enricher(session, fake, account, Clock()).run()
    await account.store.infos.update_many(
        {"owner": account.owner}, {"$set": {"durationMs": 1234, **fields}}
    )
    await db[PENDING_COLLECTION].insert_one({"owner": account.owner, "id": track_id})
    return account, track_id


def after_each_staging(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[], Awaitable[None]]
) -> None:
    """Run ``change`` (another program's write) whenever a flush has copied plays to the
    staging collection, before it deletes them."""
    original = import_enrichment.insert_ignoring_duplicates

    async def staged_then_changed(collection: Any, docs: list[dict[str, Any]]) -> None:
        await original(collection, docs)
        if collection.name == STAGING_COLLECTION:
            await change()

    monkeypatch.setattr(import_enrichment, "insert_ignoring_duplicates", staged_then_changed)


async def test_refused_authorization_stops_the_enrichment_and_keeps_the_queue(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No retry loop against a refused token; everything waits for re-authorization."""
    account = await import_plays(mongo_db, catalog, tracks=3, per_track=2)

    async def refused() -> str:
        raise SpotifyAuthError("refresh refused")

    clock = Clock()
    await make_enricher(session, fake_spotify, account, clock, token=refused).run()
    assert "Spotify needs re-authorization" in caplog.text
    assert clock.slept is None  # stopped at once, no retry delay
    assert await queued(account) == 3
    assert await without_ids(account) == account.plays
    assert fake_spotify.calls("/v1/") == []

    enricher = make_enricher(session, fake_spotify, account, clock)
    await enricher.run()  # re-authorized: the queue is worked off
    assert await queued(account) == 0
    assert await without_ids(account) == 0
    assert enricher.tracks_done == 3


async def test_tracks_spotify_answers_oddly_for_are_unknown_and_keep_null_ids(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Another track's object, or one without artists: not this track's metadata.

    They leave the queue (no request again), their plays keep null ids; the good one is done.
    """
    account = await import_plays(mongo_db, catalog, tracks=3, per_track=1)
    good, wrong, bare = account.track_ids
    fake_spotify.inject(f"/v1/tracks/{wrong}", status=200, body=catalog.track_json(good))
    fake_spotify.inject(
        f"/v1/tracks/{bare}", status=200, body={**catalog.track_json(bare), "artists": []}
    )
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.run()
    assert (enricher.tracks_done, enricher.unknown_tracks) == (1, 2)
    assert await queued(account) == 0
    plays = {
        doc["id"]: doc["primaryArtistId"]
        async for doc in account.store.infos.find({"owner": account.owner})
    }
    assert plays == {good: catalog.tracks[good].artist_ids[0], wrong: None, bare: None}
    assert len(fake_spotify.calls("/v1/tracks/")) == 3


async def test_an_artist_lookup_answered_with_another_artist_keeps_the_stub(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The stub stays (named, no genres); the other artist is not stored in its place."""
    account = await import_plays(mongo_db, catalog, tracks=1, per_track=1)
    (track_id,) = account.track_ids
    artist_id = catalog.tracks[track_id].artist_ids[0]
    other = next(i for i in catalog.artists if i != artist_id)
    fake_spotify.inject(
        f"/v1/artists/{artist_id}", status=200, body=catalog.artist_json(other, dev_mode=True)
    )
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.run()
    stub = await account.store.artists.find_one({"id": artist_id})
    assert stub is not None
    assert "genres" not in stub
    assert await account.store.artists.find_one({"id": other}) is None
    assert len(fake_spotify.calls(f"/v1/artists/{artist_id}")) == 1
    assert await without_ids(account) == 0  # the play has its ids all the same


async def test_a_track_stored_in_full_meanwhile_costs_no_track_request(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """The live loop stored the full track after the import: its ids come from MongoDB."""
    account = await import_plays(mongo_db, catalog, tracks=2, per_track=2)
    first, second = account.track_ids
    for track_id in (first, second):
        track = catalog.tracks[track_id]
        await account.store.tracks.replace_one(
            {"id": track_id},
            {
                "id": track_id,
                "name": track.name,
                "album": track.album_id,
                "artists": list(track.artist_ids),
            },
        )
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.run()
    assert fake_spotify.calls("/v1/tracks") == []
    assert await without_ids(account) == 0
    assert enricher.tracks_done == 2


async def test_many_tracks_are_flushed_in_passes_and_staged_in_batches(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small flush and insert batches: every play gets its ids, none lost, staging empty."""
    monkeypatch.setattr(import_enrichment, "ENRICH_FLUSH_TRACKS", 2)
    monkeypatch.setattr(enrichment_writes, "INSERT_BATCH", 3)
    account = await import_plays(mongo_db, catalog, tracks=5, per_track=3)
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.count_pending()
    await enricher.run()
    assert enricher.remaining == 0
    assert await account.store.infos.count_documents({"owner": account.owner}) == account.plays
    assert await without_ids(account) == 0
    assert await mongo_db[STAGING_COLLECTION].count_documents({}) == 0
    assert enricher.tracks_done == 5


async def test_a_rate_limit_pause_is_waited_out_before_the_next_request(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Another account's 429 paused the shared gate: the enrichment waits, then goes on."""
    account = await import_plays(mongo_db, catalog, tracks=1, per_track=1)
    clock = Clock()
    gate = RequestGate(spacing=0, clock=clock)
    gate.pause(600, "QUOTA_EXCEEDED")
    enricher = make_enricher(session, fake_spotify, account, clock, gate=gate)
    await enricher.run()
    assert clock.slept is not None
    assert sum(clock.slept) >= 600
    first_request = fake_spotify.requests[0]
    assert first_request.path.startswith("/v1/tracks/")
    assert await without_ids(account) == 0


async def test_a_blacklisting_during_a_flush_is_not_reverted(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Your Spotify blacklists an artist while a flush re-times the artist's imported plays
    (copied, deleted, inserted again): the copies must not bring back the plays as they were
    before the blacklisting. The plays it skipped get their length at a later flush."""
    account, track_id = await enriched_then_mistimed(
        session, fake_spotify, catalog, mongo_db, per_track=3
    )
    infos = account.store.infos
    blacklisted = False

    async def blacklist_once() -> None:
        nonlocal blacklisted
        if not blacklisted:
            blacklisted = True  # Your Spotify's updateMany, between our copy and delete
            await infos.update_many(
                {"owner": account.owner, "id": track_id}, {"$addToSet": {"blacklistedBy": "artist"}}
            )

    after_each_staging(monkeypatch, blacklist_once)
    await make_enricher(session, fake_spotify, account, Clock()).run()
    assert blacklisted
    length = catalog.tracks[track_id].duration_ms
    docs = [doc async for doc in infos.find({"owner": account.owner})]
    assert len(docs) == account.plays
    assert all(doc.get("blacklistedBy") == ["artist"] for doc in docs)
    await make_enricher(session, fake_spotify, account, Clock()).run()
    docs = [doc async for doc in infos.find({"owner": account.owner})]
    assert [doc["durationMs"] for doc in docs] == [length] * account.plays
    assert all(doc.get("blacklistedBy") == ["artist"] for doc in docs)


async def test_the_most_listened_tracks_are_enriched_first(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tracks leave the queue by their listening in the export, most first, whatever their
    order in the files: an import is useful long before it is fully enriched."""
    monkeypatch.setattr(import_enrichment, "ENRICH_BATCH", 1)
    monkeypatch.setattr(import_enrichment, "ENRICH_FLUSH_TRACKS", 1)
    store = ScrobbleStore(mongo_db)
    await store.ensure_indexes()
    owner = ObjectId()
    importer = HistoryImporter(store, owner)
    await importer.ensure_indexes()
    await importer.prepare(START + timedelta(days=30))
    # Listening per track: 1, 5, 2, 4 and 3 plays of 2 minutes, in file order.
    track_ids = list(catalog.tracks)[:5]
    counts = [1, 5, 2, 4, 3]
    entries = []
    moment = START
    for track_id, count in zip(track_ids, counts, strict=True):
        for _ in range(count):
            moment += timedelta(minutes=5)
            entries.append(music_entry(catalog, track_id, moment, 120_000))
    await importer.import_entries(entries)
    account = Account(store, owner, track_ids, sum(counts))
    enricher = make_enricher(session, fake_spotify, account, Clock())

    enriched: list[str] = []
    while await enricher.step():
        cursor = store.infos.find({"owner": owner, "primaryArtistId": {"$ne": None}})
        for track_id in dict.fromkeys([doc["id"] async for doc in cursor]):
            if track_id not in enriched:
                enriched.append(track_id)
    by_listening = [t for _, t in sorted(zip(counts, track_ids, strict=True), reverse=True)]
    assert enriched == by_listening


async def test_plays_get_their_ids_every_few_requests(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolved tracks are written to their plays after a few requests, long before
    the 500 tracks of a full flush: at the budget, minutes instead of half an hour."""
    monkeypatch.setattr(import_enrichment, "ENRICH_BATCH", 1)
    monkeypatch.setattr(import_enrichment, "ENRICH_FLUSH_REQUESTS", 2)
    account = await import_plays(mongo_db, catalog, tracks=3, per_track=2)
    enricher = make_enricher(session, fake_spotify, account, Clock())
    assert await enricher.step()
    assert enricher.requests >= 2  # the track and its artists
    assert await without_ids(account) == 4  # one track's two plays have their ids
    assert await queued(account) == 2


async def test_a_track_raced_twice_stays_queued_for_the_next_run(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another program changes the plays under every flush: the run ends (no spinning), the
    plays keep what it wrote last, and the track stays queued for the next run."""
    account, track_id = await enriched_then_mistimed(
        session, fake_spotify, catalog, mongo_db, per_track=2
    )
    infos = account.store.infos
    flips = 0

    async def blacklist_or_restore() -> None:
        nonlocal flips
        flips += 1
        change = "$addToSet" if flips % 2 else "$pull"
        await infos.update_many(
            {"owner": account.owner, "id": track_id}, {change: {"blacklistedBy": "artist"}}
        )

    after_each_staging(monkeypatch, blacklist_or_restore)
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.run()
    assert flips == 2
    assert enricher.remaining == 1
    assert await queued(account) == 1
    docs = [doc async for doc in infos.find({"owner": account.owner})]
    assert [doc.get("blacklistedBy") for doc in docs] == [[], []]  # as the other program left
    assert [doc["durationMs"] for doc in docs] == [1234, 1234]


async def test_plays_with_a_null_blacklist_are_re_timed_as_they_are(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """``blacklistedBy: null`` (another program's way of saying none) is matched as null:
    the plays are replaced with their length and keep the null."""
    account, track_id = await enriched_then_mistimed(
        session, fake_spotify, catalog, mongo_db, per_track=2, blacklistedBy=None
    )
    infos = account.store.infos
    await make_enricher(session, fake_spotify, account, Clock()).run()
    docs = [doc async for doc in infos.find({"owner": account.owner})]
    length = catalog.tracks[track_id].duration_ms
    assert [(doc["durationMs"], doc["blacklistedBy"]) for doc in docs] == [(length, None)] * 2
    assert await queued(account) == 0


def tracks_by_album(catalog: Catalog) -> list[list[str]]:
    """The catalogue's track ids, album by album."""
    by_album: dict[str, list[str]] = {}
    for track in catalog.tracks.values():
        by_album.setdefault(track.album_id, []).append(track.id)
    return list(by_album.values())


async def assert_spotify_ids(account: Account, catalog: Catalog) -> None:
    """Every play has ids, and they are its track's album and artists as Spotify has them."""
    assert await without_ids(account) == 0
    async for doc in account.store.infos.find({"owner": account.owner}):
        track = catalog.tracks[doc["id"]]
        assert (doc["albumId"], doc["artistIds"]) == (track.album_id, list(track.artist_ids))
        assert doc["primaryArtistId"] == track.artist_ids[0]


async def test_an_album_request_resolves_the_albums_other_queued_tracks(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Development mode: one album request resolves its queued tracks, with Spotify's ids."""
    by_album = tracks_by_album(catalog)
    whole, partly = [ids for ids in by_album if len(ids) >= 3][:2]
    alone = next(ids for ids in by_album if len(ids) == 1)
    account = await import_tracks(mongo_db, catalog, [*whole, *partly[:2], *alone], per_track=2)
    fake_spotify.requests.clear()
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.count_pending()
    await enricher.run()

    await assert_spotify_ids(account, catalog)
    # One track request per album (its first queued track), one album request where another
    # queued track's export names the same album; the lone track's album is not asked for.
    assert len(fake_spotify.calls("/v1/tracks/")) == 3
    assert len(fake_spotify.calls("/v1/albums/")) == 2
    assert enricher.tracks_from_albums == len(whole) - 1 + 1
    # The album's track nobody played is not stored.
    assert await account.store.tracks.find_one({"id": partly[2]}) is None
    assert await queued(account) == 0


async def test_an_album_the_exports_names_point_to_is_asked_for_without_track_requests(
    session: aiohttp.ClientSession,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Names propose stored albums; only the album's listing (by track id) resolves a track.

    One album is known from a live play: its queued tracks cost one album request and no
    track request. Another album's name is also stored under another id (a namesake): its
    listing does not list the tracks, which then get their own requests, and Spotify's ids.
    """
    known, namesake = [ids for ids in tracks_by_album(catalog) if len(ids) >= 3][:2]
    account = await import_tracks(mongo_db, catalog, [*known[1:], *namesake[:2]], per_track=2)
    live_item = {"track": catalog.track_json(known[0]), "played_at": START.isoformat()}
    live = parse_item(live_item, set())
    assert live is not None
    assert live.album is not None
    await account.store.albums.insert_one(live.album)
    await account.store.artists.insert_many(live.artists)
    album = catalog.albums[catalog.tracks[namesake[0]].album_id]
    await account.store.albums.insert_one(
        {"id": "0" * 22, "name": album.name, "artists": list(album.artist_ids)}
    )
    await account.store.artists.insert_one(
        {"id": album.artist_ids[0], "name": catalog.artists[album.artist_ids[0]].name}
    )
    fake_spotify.requests.clear()
    enricher = make_enricher(session, fake_spotify, account, Clock())
    await enricher.count_pending()
    await enricher.run()

    await assert_spotify_ids(account, catalog)
    asked = [record.path for record in fake_spotify.calls("/v1/")]
    requested = [p.removeprefix("/v1/tracks/") for p in asked if p.startswith("/v1/tracks/")]
    assert len(requested) == 1
    assert requested[0] in namesake[:2]
    assert sorted(p for p in asked if p.startswith("/v1/albums/")) == sorted(
        [
            f"/v1/albums/{catalog.tracks[known[0]].album_id}",
            f"/v1/albums/{'0' * 22}",
            f"/v1/albums/{album.id}",
        ]
    )
    assert enricher.tracks_from_albums == len(known) - 1 + 1
