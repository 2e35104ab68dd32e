"""The Spotify fake keeps the shapes and rules the integration's tests rely on."""

import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from tests.spotify_fake import (
    HISTORY_SIZE,
    Catalog,
    FakeSpotify,
    LocalFile,
    Play,
    format_played_at,
    full_artist,
    listening_day,
    local_file_item,
    play_item,
    recently_played_page,
    simplified_album,
    simplified_artist,
    to_unix_ms,
    track_object,
)

START = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
RECENTLY_PLAYED = "/v1/me/player/recently-played"

SIMPLIFIED_ARTIST_KEYS = {"external_urls", "href", "id", "name", "type", "uri"}
SIMPLIFIED_ALBUM_KEYS = {
    *("album_type", "artists", "available_markets", "external_urls", "href", "id", "images"),
    *("name", "release_date", "release_date_precision", "total_tracks", "type", "uri"),
}
TRACK_KEYS = {
    *("album", "artists", "available_markets", "disc_number", "duration_ms", "explicit"),
    *("external_ids", "external_urls", "href", "id", "is_local", "is_playable", "name"),
    *("popularity", "preview_url", "track_number", "type", "uri"),
}
DEV_MODE_REMOVED = {"available_markets", "popularity", "followers"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.generate(seed=7)


@pytest.fixture
def plays(catalog: Catalog) -> list[Play]:
    """80 plays in one 2-hour window; more than the 50-play horizon."""
    return list(listening_day(catalog, START, plays=80, hours=2, seed=7, local_files=3).plays)


@pytest.fixture
async def fake(
    catalog: Catalog,
    plays: list[Play],
    socket_enabled: None,  # HA's test plugin blocks sockets except to 127.0.0.1 once enabled
) -> AsyncIterator[FakeSpotify]:
    async with FakeSpotify(catalog, plays) as server:
        yield server


@pytest.fixture
async def session(fake: FakeSpotify) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {fake.access_token}"}
    async with aiohttp.ClientSession(headers=headers) as client:
        yield client


async def get_json(
    session: aiohttp.ClientSession, url: str, **params: str | int
) -> tuple[int, Any]:
    async with session.get(url, params=params) as response:
        return response.status, await response.json()


async def walk(session: aiohttp.ClientSession, url: str, **params: str | int) -> list[Any]:
    """Follow ``next`` until null, returning every page."""
    pages = []
    status, page = await get_json(session, url, **params)
    assert status == 200
    pages.append(page)
    while page["next"] is not None:
        status, page = await get_json(session, page["next"])
        assert status == 200
        pages.append(page)
        assert len(pages) < 20, "next never ends"
    return pages


def played_at(item_or_play: Any) -> str:
    if isinstance(item_or_play, Play):
        return format_played_at(item_or_play.played_at)
    return str(item_or_play["played_at"])


# --------------------------------------------------------------------------- builders


def test_track_object_has_spotify_fields() -> None:
    artist = simplified_artist("0TnOYISbd1XYRBk9myaseg", "Pitbull")
    album = simplified_album("4aawyAB9vmqN3uQ7FjRGTy", "Global Warming", artists=[artist])
    track = track_object(
        "11dFghVXANMlKmJXsNCbNl", "Cut To The Feeling", album=album, artists=[artist]
    )
    assert set(artist) == SIMPLIFIED_ARTIST_KEYS
    assert set(album) == SIMPLIFIED_ALBUM_KEYS
    assert set(track) == TRACK_KEYS
    assert track["uri"] == "spotify:track:11dFghVXANMlKmJXsNCbNl"
    assert track["href"] == "https://api.spotify.com/v1/tracks/11dFghVXANMlKmJXsNCbNl"
    assert track["type"] == "track"
    assert track["is_local"] is False

    dev_album = simplified_album("4aawyAB9vmqN3uQ7FjRGTy", "x", artists=[artist], dev_mode=True)
    dev = track_object("11dFghVXANMlKmJXsNCbNl", "x", album=dev_album, artists=[], dev_mode=True)
    assert set(dev) == TRACK_KEYS - DEV_MODE_REMOVED
    assert set(dev["album"]) == SIMPLIFIED_ALBUM_KEYS - DEV_MODE_REMOVED


def test_full_artist_dev_mode_drops_followers_and_popularity() -> None:
    full = full_artist(
        "0TnOYISbd1XYRBk9myaseg", "Pitbull", genres=["pop"], followers=9, popularity=80
    )
    assert full["followers"] == {"href": None, "total": 9}
    assert full["popularity"] == 80
    assert full["genres"] == ["pop"]
    dev = full_artist("0TnOYISbd1XYRBk9myaseg", "Pitbull", genres=["pop"], dev_mode=True)
    assert set(full) - set(dev) == {"followers", "popularity"}


def test_played_at_is_iso_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
    assert play_item({}, moment)["played_at"] == "2026-11-24T10:00:00.123Z"
    cet = datetime(2026, 11, 24, 11, 0, 0, 5000, tzinfo=timezone(timedelta(hours=1)))
    assert play_item({}, cet)["played_at"] == "2026-11-24T10:00:00.005Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        play_item({}, datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001


def test_local_file_item_has_no_ids() -> None:
    item = local_file_item(
        "Demo 1",
        artist="Me & My Band",
        album="Tapes",
        duration_ms=181_500,
        played_at=START,
    )
    track = item["track"]
    assert track["is_local"] is True
    assert track["id"] is None
    assert track["album"]["id"] is None
    assert [artist["id"] for artist in track["artists"]] == [None]
    assert track["uri"] == "spotify:local:Me+%26+My+Band:Tapes:Demo+1:181"
    assert item["context"] is None
    assert item["played_at"] == "2026-11-24T06:00:00.000Z"


def test_recently_played_page_cursors_are_newest_and_oldest() -> None:
    items = [play_item({}, START + timedelta(seconds=s)) for s in (30, 90, 0)]
    page = recently_played_page(items, href="h", limit=3, next_url=None)
    assert page["cursors"] == {
        "after": str(to_unix_ms(START + timedelta(seconds=90))),
        "before": str(to_unix_ms(START)),
    }
    assert set(page) == {"cursors", "href", "items", "limit", "next", "total"}
    assert page["total"] == 3
    empty = recently_played_page([], href="h", limit=3, next_url=None)
    assert empty["cursors"] is None
    assert empty["items"] == []


# --------------------------------------------------------------------------- workload


def test_catalog_is_deterministic_and_varied() -> None:
    first = Catalog.generate(seed=3)
    assert first == Catalog.generate(seed=3)
    assert set(first.tracks) != set(Catalog.generate(seed=4).tracks)
    assert (len(first.tracks), len(first.albums), len(first.artists)) == (150, 90, 60)

    ids = [*first.tracks, *first.albums, *first.artists]
    assert all(re.fullmatch(r"[0-9A-Za-z]{22}", i) for i in ids)
    assert len(set(ids)) == len(ids)

    n_artists = [len(track.artist_ids) for track in first.tracks.values()]
    assert min(n_artists) == 1
    assert max(n_artists) == 3
    assert sum(n > 1 for n in n_artists) >= 20  # featuring artists are common
    durations = [track.duration_ms for track in first.tracks.values()]
    assert all(90_000 <= d <= 360_000 for d in durations)
    assert all(artist.genres and len(artist.images) == 3 for artist in first.artists.values())
    assert all(album.track_ids for album in first.albums.values())
    assert sum(len(album.track_ids) for album in first.albums.values()) == 150
    for track in first.tracks.values():
        assert track.id in first.albums[track.album_id].track_ids

    album = first.album_json(next(iter(first.albums)), dev_mode=False)
    assert album["total_tracks"] == len(album["tracks"]["items"]) >= 1
    assert {"label", "copyrights", "external_ids", "genres", "popularity"} <= set(album)


def test_listening_day_follows_the_spec() -> None:
    catalog = Catalog.generate(seed=11)
    day = listening_day(catalog, START, seed=11)
    assert day == listening_day(catalog, START, seed=11)
    plays = day.plays
    assert len(plays) == 300
    assert all(play.played_at.microsecond % 1000 == 0 for play in plays)

    gaps = [(b.played_at - a.played_at).total_seconds() for a, b in itertools.pairwise(plays)]
    assert all(20 <= gap <= 40 or gap >= 300 for gap in gaps)
    assert sum(gap >= 300 for gap in gaps) >= 3  # several sessions
    assert day.end - day.start <= timedelta(hours=16)

    assert sum(play.is_local for play in plays) == 5
    ids = [play.track_id for play in plays]
    real = [i for i in ids if i is not None]
    assert len(set(real)) < len(real)  # tracks repeat
    for index, track_id in enumerate(ids):
        if track_id is not None:
            assert track_id not in ids[max(0, index - 3) : index]

    begin, end = day.outage
    inside = day.plays_between(begin, end)
    assert 20 < len(inside) == 25 < HISTORY_SIZE
    assert plays[0].played_at < begin
    assert end < plays[-1].played_at


def test_small_listening_day_has_an_empty_outage(catalog: Catalog) -> None:
    day = listening_day(catalog, START, plays=10, local_files=0)
    assert len(day.plays) == 10
    assert day.outage[0] == day.outage[1]
    assert day.plays_between(*day.outage) == []
    with pytest.raises(ValueError, match="outage_plays"):
        listening_day(catalog, START, plays=10, outage_plays=9)


# --------------------------------------------------------------------------- server


async def test_requires_a_valid_bearer_token(
    fake: FakeSpotify, session: aiohttp.ClientSession
) -> None:
    async with aiohttp.ClientSession() as anonymous:
        status, body = await get_json(anonymous, f"{fake.api_url}/me")
    assert (status, body) == (401, {"error": {"status": 401, "message": "No token provided"}})

    async with aiohttp.ClientSession(headers={"Authorization": "Bearer nope"}) as stranger:
        status, body = await get_json(stranger, f"{fake.api_url}/me")
    assert (status, body["error"]["message"]) == (401, "Invalid access token")

    status, me = await get_json(session, f"{fake.api_url}/me")
    assert status == 200
    assert (me["id"], me["product"], me["type"]) == (fake.user_id, "premium", "user")

    fake.expire_access_tokens()
    status, body = await get_json(session, f"{fake.api_url}/me")
    assert (status, body["error"]["message"]) == (401, "The access token expired")

    fake.access_tokens.add(fake.access_token)
    fake.owner_premium = False
    status, body = await get_json(session, f"{fake.api_url}/me")
    assert status == 403


async def test_default_page_and_backward_paging_stop_at_the_horizon(
    fake: FakeSpotify, session: aiohttp.ClientSession, plays: list[Play]
) -> None:
    pages = await walk(session, f"{fake.api_url}/me/player/recently-played")
    assert [len(page["items"]) for page in pages] == [20, 20, 10]

    first = pages[0]
    assert first["limit"] == 20
    assert first["href"] == f"{fake.api_url}/me/player/recently-played"
    assert first["next"] == (
        f"{fake.api_url}/me/player/recently-played?before={first['cursors']['before']}&limit=20"
    )
    items = [item for page in pages for item in page["items"]]
    # Newest first, and exactly the last 50 plays: older ones are gone for good.
    assert [played_at(i) for i in items] == [played_at(p) for p in reversed(plays[-50:])]
    assert first["cursors"]["after"] == str(to_unix_ms(plays[-1].played_at))
    assert pages[-1]["next"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 51}, "Invalid limit"),
        ({"limit": 0}, "Invalid limit"),
        ({"limit": "many"}, "Invalid limit"),
        ({"after": 1, "before": 2}, "Only one of 'after' and 'before' may be specified"),
        ({"after": "yesterday"}, "Invalid cursor: expected a Unix timestamp in milliseconds"),
    ],
)
async def test_invalid_queries_answer_400(
    fake: FakeSpotify,
    session: aiohttp.ClientSession,
    params: dict[str, str | int],
    message: str,
) -> None:
    status, body = await get_json(session, f"{fake.api_url}/me/player/recently-played", **params)
    assert (status, body) == (400, {"error": {"status": 400, "message": message}})


async def test_after_pages_forward_without_gaps(
    fake: FakeSpotify, session: aiohttp.ClientSession, plays: list[Play]
) -> None:
    cursor = to_unix_ms(plays[-30].played_at)
    url = f"{fake.api_url}/me/player/recently-played"
    pages = await walk(session, url, after=cursor, limit=10)
    assert [len(page["items"]) for page in pages] == [10, 10, 9]
    assert "after=" in pages[0]["next"]
    assert pages[0]["total"] == 29
    # Each page holds the plays closest to its cursor, newest first.
    assert [played_at(i) for i in pages[0]["items"]] == [
        played_at(p) for p in reversed(plays[-29:-19])
    ]
    seen = [played_at(item) for page in pages for item in page["items"]]
    assert sorted(seen) == [played_at(p) for p in plays[-29:]]

    # The other reading of Spotify's after paging: newest first, then back in time.
    fake.after_paging = "newest"
    status, page = await get_json(session, url, after=cursor, limit=10)
    assert status == 200
    assert [played_at(i) for i in page["items"]] == [played_at(p) for p in reversed(plays[-10:])]
    assert "before=" in page["next"]


async def test_clock_and_50_play_horizon(
    fake: FakeSpotify, session: aiohttp.ClientSession, plays: list[Play]
) -> None:
    url = f"{fake.api_url}/me/player/recently-played"
    fake.now = plays[59].played_at
    status, page = await get_json(session, url, after=0, limit=50)
    assert status == 200
    assert [played_at(i) for i in page["items"]] == [played_at(p) for p in reversed(plays[10:60])]
    assert page["next"] is None

    fake.advance(plays[60].played_at - plays[59].played_at)
    status, page = await get_json(session, url, limit=50)
    assert played_at(page["items"][0]) == played_at(plays[60])
    assert played_at(page["items"][-1]) == played_at(plays[11])

    status, page = await get_json(session, url, before=to_unix_ms(plays[11].played_at))
    assert (status, page["items"], page["next"], page["cursors"]) == (200, [], None, None)


async def test_next_on_full_page_leads_to_an_empty_page(
    fake: FakeSpotify, session: aiohttp.ClientSession
) -> None:
    fake.next_on_full_page = True
    pages = await walk(session, f"{fake.api_url}/me/player/recently-played", limit=50)
    assert [len(page["items"]) for page in pages] == [50, 0]
    assert pages[1]["cursors"] is None


async def test_local_files_are_reported_without_ids(
    fake: FakeSpotify, session: aiohttp.ClientSession, plays: list[Play]
) -> None:
    status, page = await get_json(
        session, f"{fake.api_url}/me/player/recently-played", after=0, limit=50
    )
    assert status == 200
    local = [item for item in page["items"] if item["track"]["is_local"]]
    expected = [p for p in plays[-50:] if isinstance(p.track, LocalFile)]
    assert len(local) == len(expected)
    assert all(item["track"]["id"] is None for item in local)
    assert all(item["track"]["uri"].startswith("spotify:local:") for item in local)


async def test_single_lookups_and_batch_rules(
    fake: FakeSpotify, session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    api = fake.api_url
    track_id = next(iter(catalog.tracks))
    track = catalog.tracks[track_id]
    status, body = await get_json(session, f"{api}/tracks/{track_id}")
    assert status == 200
    assert body == catalog.track_json(track_id, dev_mode=True)
    assert "popularity" not in body
    status, album = await get_json(session, f"{api}/albums/{track.album_id}")
    assert (status, album["id"]) == (200, track.album_id)
    status, artist = await get_json(session, f"{api}/artists/{track.artist_ids[0]}")
    assert (status, artist["id"], "followers" in artist) == (200, track.artist_ids[0], False)

    status, body = await get_json(session, f"{api}/tracks/{'0' * 22}")
    assert (status, body["error"]["status"]) == (404, 404)
    status, body = await get_json(session, f"{api}/artists/not-an-id")
    assert status == 400

    status, body = await get_json(session, f"{api}/tracks", ids=track_id)
    assert (status, body) == (403, {"error": {"status": 403, "message": "Forbidden"}})

    fake.batch_allowed = True
    fake.dev_mode = False
    status, body = await get_json(session, f"{api}/tracks", ids=f"{track_id},{'0' * 22}")
    assert status == 200
    assert body == {"tracks": [catalog.track_json(track_id), None]}
    assert "popularity" in body["tracks"][0]
    artist_ids = ",".join(list(catalog.artists)[:50])
    status, body = await get_json(session, f"{api}/artists", ids=artist_ids)
    assert (status, len(body["artists"])) == (200, 50)
    too_many = ",".join(list(catalog.albums)[:21])
    status, body = await get_json(session, f"{api}/albums", ids=too_many)
    assert (status, body["error"]["message"]) == (400, "Too many ids requested")


async def test_token_endpoint(fake: FakeSpotify, session: aiohttp.ClientSession) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": fake.refresh_token}
    async with session.post(fake.token_url, data=form) as response:
        assert response.status == 200
        token = await response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert "refresh_token" not in token
    assert fake.token_requests == [form]

    fresh = {"Authorization": f"Bearer {token['access_token']}"}
    async with aiohttp.ClientSession(headers=fresh) as renewed:
        status, _ = await get_json(renewed, f"{fake.api_url}/me")
    assert status == 200

    fake.rotate_refresh_token = True
    async with session.post(fake.token_url, data=form) as response:
        rotated = await response.json()
    assert rotated["refresh_token"] == fake.refresh_token != form["refresh_token"]

    form["refresh_token"] = fake.refresh_token
    fake.token_revoked = True
    async with session.post(fake.token_url, data=form) as response:
        assert response.status == 400
        assert await response.json() == {
            "error": "invalid_grant",
            "error_description": "Refresh token revoked",
        }


async def test_authorize_redirects_back_with_a_code_the_token_endpoint_takes(
    fake: FakeSpotify, session: aiohttp.ClientSession
) -> None:
    query = {
        "response_type": "code",
        "client_id": "my-client",
        "redirect_uri": "http://127.0.0.1:8123/auth/external/callback",
        "state": "opaque-state",
    }
    async with session.get(fake.authorize_url, params=query, allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    base, _, raw = location.partition("?")
    answer = dict(item.split("=", 1) for item in raw.split("&"))
    assert base == query["redirect_uri"]
    assert answer["state"] == "opaque-state"

    form = {"grant_type": "authorization_code", "code": answer["code"]}
    async with session.post(fake.token_url, data=form) as response:
        assert response.status == 200
        assert (await response.json())["refresh_token"] == fake.refresh_token

    del query["redirect_uri"]
    async with session.get(fake.authorize_url, params=query, allow_redirects=False) as response:
        assert response.status == 400


async def test_injected_faults_are_consumed_one_per_request(
    fake: FakeSpotify, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.api_url}/me/player/recently-played"
    fake.inject(RECENTLY_PLAYED, status=429, headers={"Retry-After": "3"})
    fake.inject("/v1/tracks", status=500)  # other prefix: must not hit recently-played
    fake.inject(RECENTLY_PLAYED, status=503, times=2)
    fake.inject(RECENTLY_PLAYED, status=200, raw_body=b"not json")

    async with session.get(url) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert await response.json() == {
            "error": {"status": 429, "message": "API rate limit exceeded"}
        }
    for _ in range(2):
        async with session.get(url) as response:
            assert response.status == 503
    async with session.get(url) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            await response.json()
    status, _ = await get_json(session, url)
    assert status == 200
    assert len(fake.faults) == 1  # the /v1/tracks one is still waiting

    # A delay longer than the client's timeout makes the client give up.
    fake.inject(RECENTLY_PLAYED, delay=5)
    with pytest.raises(TimeoutError):
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=0.2)) as response:
            await response.read()
    status, _ = await get_json(session, url)
    assert status == 200


async def test_request_log(
    fake: FakeSpotify, session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    track_ids = list(catalog.tracks)[:2]
    await get_json(session, f"{fake.api_url}/me/player/recently-played", limit=5)
    for track_id in track_ids:
        await get_json(session, f"{fake.api_url}/tracks/{track_id}")
    await get_json(session, f"{fake.api_url}/no/such/endpoint")

    assert fake.counts[RECENTLY_PLAYED] == 1
    assert fake.counts["/v1/tracks/{id}"] == 2
    assert fake.counts["/v1/no/such/endpoint"] == 1
    first = fake.requests[0]
    assert (first.method, first.path, first.query) == ("GET", RECENTLY_PLAYED, {"limit": "5"})
    stamps = [record.at for record in fake.requests]
    assert stamps == sorted(stamps)
    assert [r.path for r in fake.calls("/v1/tracks")] == [f"/v1/tracks/{i}" for i in track_ids]

    fake.reset_log()
    assert (fake.requests, fake.counts) == ([], {})
