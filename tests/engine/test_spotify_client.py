"""The Web API client on its own, against the fake Spotify: payloads that are not Spotify's."""

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from custom_components.spotify_scrobbler.engine import spotify as spotify_module
from custom_components.spotify_scrobbler.engine.spotify import (
    BatchSupport,
    RequestGate,
    SpotifyClient,
    SpotifyError,
    SpotifyRateLimitedError,
)
from tests.spotify_fake import Catalog, FakeSpotify

RECENT = "/v1/me/player/recently-played"


@pytest.fixture
async def client(fake_spotify: FakeSpotify) -> AsyncIterator[SpotifyClient]:
    """A client with its own gate (no spacing) that records its back-off sleeps."""
    async with aiohttp.ClientSession() as session:

        async def token() -> str:
            return fake_spotify.access_token

        async def no_wait(seconds: float) -> None:
            return None

        yield SpotifyClient(
            session,
            token,
            RequestGate(spacing=0),
            base_url=fake_spotify.api_url,
            batch_support=BatchSupport(),
            sleep=no_wait,
        )


def page(fake: FakeSpotify, items: list[Any], *, next_url: Any = None) -> dict[str, Any]:
    """A recently-played page as Spotify shapes it."""
    return {"items": items, "next": next_url, "cursors": None, "limit": 50, "href": fake.api_url}


@pytest.mark.parametrize(
    "body",
    [{"display_name": "no id"}, {"id": 42}, ["not", "an", "object"]],
    ids=["missing-id", "numeric-id", "list"],
)
async def test_an_unexpected_me_payload_is_an_error(
    client: SpotifyClient, fake_spotify: FakeSpotify, body: Any
) -> None:
    fake_spotify.inject("/v1/me", status=200, raw_body=_json(body))
    with pytest.raises(SpotifyError, match="unexpected /me payload"):
        await client.current_user()


@pytest.mark.parametrize(
    "body", [{"items": "none"}, {"next": None}, [1, 2]], ids=["items-str", "no-items", "list"]
)
async def test_an_unexpected_recently_played_page_is_an_error(
    client: SpotifyClient, fake_spotify: FakeSpotify, body: Any
) -> None:
    fake_spotify.inject(RECENT, status=200, raw_body=_json(body))
    with pytest.raises(SpotifyError, match="unexpected recently-played page"):
        await client.recently_played(0)


async def test_endless_next_links_stop_after_a_bounded_number_of_pages(
    client: SpotifyClient, fake_spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    """A payload whose ``next`` never ends (not Spotify's) costs MAX_PAGES requests at most."""
    endless = f"{fake_spotify.api_url}/me/player/recently-played?limit=50&before=1"
    pages = spotify_module.MAX_PAGES + 3
    for number in range(pages):
        fake_spotify.inject(
            RECENT, status=200, body=page(fake_spotify, [{"n": number}], next_url=endless)
        )
    items = await client.recently_played(0)
    assert items == [{"n": n} for n in range(spotify_module.MAX_PAGES)]
    assert len(fake_spotify.calls(RECENT)) == spotify_module.MAX_PAGES
    assert "kept paging" in caplog.text


async def test_an_empty_page_ends_paging_even_with_a_next_link(
    client: SpotifyClient, fake_spotify: FakeSpotify
) -> None:
    """Spotify hands out a ``next`` that leads to an empty page; it is not followed further."""
    more = f"{fake_spotify.api_url}/me/player/recently-played?limit=50&before=1"
    fake_spotify.inject(RECENT, status=200, body=page(fake_spotify, [{"n": 0}], next_url=more))
    fake_spotify.inject(RECENT, status=200, body=page(fake_spotify, [], next_url=more))
    assert await client.recently_played(0) == [{"n": 0}]
    assert len(fake_spotify.calls(RECENT)) == 2


async def test_an_unexpected_batch_payload_is_an_error(
    client: SpotifyClient, fake_spotify: FakeSpotify, catalog: Catalog
) -> None:
    track_id = next(iter(catalog.tracks))
    fake_spotify.inject("/v1/tracks", status=200, body={"tracks": {"not": "a list"}})
    with pytest.raises(SpotifyError, match="unexpected /tracks batch payload"):
        await client.lookup("tracks", [track_id])
    assert client.batch_support.allowed is True  # the endpoint answered: it exists


async def test_single_lookups_leave_out_what_is_not_an_object(
    client: SpotifyClient, fake_spotify: FakeSpotify, catalog: Catalog
) -> None:
    """Once batches are refused, one id at a time; a non-object answer is skipped, not kept."""
    first, second = list(catalog.tracks)[:2]
    client.batch_support.allowed = False
    fake_spotify.inject(f"/v1/tracks/{first}", status=200, raw_body=b"[]")
    found = await client.lookup("tracks", [first, second, first])
    assert [obj["id"] for obj in found] == [second]
    assert not [call for call in fake_spotify.calls("/v1/tracks") if call.path == "/v1/tracks"]


@pytest.mark.parametrize(
    ("headers", "raw_body", "retry_after", "reason"),
    [
        ({"Retry-After": "soon"}, b"<html>Too many</html>", 5.0, None),
        ({}, b'{"error": {"status": 429}}', 5.0, None),
        ({"Retry-After": "60"}, b'{"reason": "QUOTA_EXCEEDED"}', 60.0, "QUOTA_EXCEEDED"),
        ({"Retry-After": "60"}, b'{"error": {"reason": ""}}', 60.0, None),
    ],
    ids=["odd-header-html-body", "no-header", "reason-at-top", "empty-reason"],
)
async def test_a_429_is_understood_whatever_its_header_and_body(
    client: SpotifyClient,
    fake_spotify: FakeSpotify,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    raw_body: bytes,
    retry_after: float,
    reason: str | None,
) -> None:
    """An unreadable Retry-After means 5 s; a body without a usable reason gives none."""
    monkeypatch.setattr(spotify_module, "MAX_INLINE_RETRY_AFTER", 1.0)  # never wait inline
    fake_spotify.inject("/v1/me", status=429, headers=headers, raw_body=raw_body)
    with pytest.raises(SpotifyRateLimitedError) as caught:
        await client.current_user()
    assert caught.value.retry_after == retry_after
    assert caught.value.reason == reason


def test_a_shorter_pause_does_not_shorten_a_longer_one() -> None:
    """A quick 429 during a long quota pause leaves the long pause (and its reason)."""
    now = [1000.0]
    gate = RequestGate(spacing=0, clock=lambda: now[0])
    gate.pause(3600, "QUOTA_EXCEEDED")
    gate.pause(5, None)
    assert gate.paused_for == 3600
    assert gate.pause_reason == "QUOTA_EXCEEDED"
    with pytest.raises(SpotifyRateLimitedError, match="QUOTA_EXCEEDED"):
        gate.check()
    now[0] += 3601
    gate.check()  # the pause is over
    gate.pause(5, None)
    assert gate.pause_reason is None


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
