"""Spotify Web API client: one shared request gate, retries, 429 handling, lookups.

Plain asyncio + aiohttp (no Home Assistant imports) so the engine can be tested and
benchmarked on its own; the access token comes from a provider (HA's OAuth2Session).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

_LOGGER = logging.getLogger(__name__)

DEFAULT_SPACING: Final = 1.0  # seconds between two requests (the seed's queue)
MAX_ATTEMPTS: Final = 4  # per request, for 5xx, timeouts and connection errors
BACKOFF_BASE: Final = 2.0  # seconds; doubles per attempt: 2, 4, 8
MAX_INLINE_RETRY_AFTER: Final = 30.0  # longer Retry-After values end the cycle instead
MAX_RETRY_AFTER: Final = 86_400.0  # a day: a pause beyond it is a broken header, not a quota
REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=20)
MAX_PAGES: Final = 10  # recently-played never has more than ~50 items
MAX_PAGE_ITEMS: Final = 50  # Spotify's maximum `limit`

# Batch endpoints and their id limits; development-mode apps get 403/404 since 2026.
BATCH_LIMITS: Final = {"tracks": 50, "albums": 20, "artists": 50}

AccessTokenProvider = Callable[[], Awaitable[str]]
# Given the access token Spotify answered 401 for, renews it (although its holder may still
# think it valid) and returns the new one; raises SpotifyAuthError when the refresh is refused.
TokenRefresher = Callable[[str], Awaitable[str]]


class SpotifyError(Exception):
    """Spotify could not be reached or answered with an error."""


class SpotifyAuthError(SpotifyError):
    """The token was refused or cannot be refreshed: the user must re-authorize."""


class SpotifyForbiddenError(SpotifyError):
    """403: for /me this means the app owner has no Premium subscription."""


class SpotifyNotFoundError(SpotifyError):
    """404: the item does not exist (or the endpoint is gone for this app)."""


class SpotifyRateLimitedError(SpotifyError):
    """429 with a Retry-After longer than we are willing to wait inside a cycle."""

    def __init__(self, retry_after: float, reason: str | None = None) -> None:
        """Remember how long Spotify asked us to wait, and why if it said (QUOTA_EXCEEDED)."""
        because = f" ({reason})" if reason else ""
        super().__init__(f"Spotify rate limit{because}: retry after {retry_after:.0f} s")
        self.retry_after = retry_after
        self.reason = reason


class RequestGate:
    """Serialises every Spotify request of the integration, with a minimum spacing.

    One instance is shared by all config entries (Spotify rate-limits per app). A 429
    pauses everybody until its Retry-After, but waiting happens outside the lock.
    """

    def __init__(
        self,
        spacing: float = DEFAULT_SPACING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a gate; ``spacing`` is the minimum time between two requests."""
        self.spacing = spacing
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_request = -math.inf
        self._paused_until = -math.inf
        self.pause_reason: str | None = None
        self.requests = 0

    @property
    def paused_for(self) -> float:
        """Seconds left of a Retry-After pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float, reason: str | None = None) -> None:
        """Hold every request back for ``seconds`` (a 429's Retry-After)."""
        until = self._clock() + seconds
        if until >= self._paused_until:
            self._paused_until = until
            self.pause_reason = reason

    def check(self) -> None:
        """Refuse at once, without a request, while a long Retry-After pause lasts."""
        if (left := self.paused_for) > MAX_INLINE_RETRY_AFTER:
            raise SpotifyRateLimitedError(left, self.pause_reason)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for our turn, then hold the gate while one request is in flight."""
        while (wait := self.paused_for) > 0:  # noqa: ASYNC110  # a 429 may extend the pause
            await asyncio.sleep(wait)
        async with self._lock:
            wait = self._last_request + self.spacing - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self.requests += 1
            try:
                yield
            finally:
                self._last_request = self._clock()


@dataclass(slots=True)
class BatchSupport:
    """Whether the batch endpoints work for this app; learnt once, then remembered."""

    allowed: bool | None = None


class SpotifyClient:
    """The few Web API calls the scrobbler needs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_provider: AccessTokenProvider,
        gate: RequestGate,
        *,
        base_url: str,
        batch_support: BatchSupport | None = None,
        token_refresher: TokenRefresher | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Bind the client to an HTTP session, a token source and the shared gate.

        Without ``token_refresher`` a 401 is an authorization failure at once.
        """
        self._session = session
        self._token_provider = token_provider
        self._token_refresher = token_refresher
        self._gate = gate
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).netloc
        self.batch_support = batch_support or BatchSupport()
        self._sleep = sleep
        self.requests_made = 0

    async def get_json(self, url: str) -> Any:
        """GET an absolute or base-relative URL and return its JSON body."""
        if not url.startswith(("http://", "https://")):
            url = self._base_url + url
        elif urlsplit(url).netloc != self._host:
            # `next` links come from the payload: never follow them off Spotify's API host.
            raise SpotifyError(f"refusing to follow a URL outside {self._host}")
        attempt = 1
        token: str | None = None  # set only for the retry right after a refresh
        refreshed = False
        # Bounded by _attempt: the last attempt raises instead of asking for another.
        while True:
            self._gate.check()
            if token is None:
                token = await self._token_provider()
            outcome = await self._attempt(url, token, attempt)
            if isinstance(outcome, _Answer):
                return outcome.body
            if isinstance(outcome, _Refused):
                # A token can be revoked or rotated before its expiry: renew it once and
                # retry; refused again (or no way to renew) means the user must re-authorize.
                if refreshed or self._token_refresher is None:
                    raise SpotifyAuthError("Spotify refused the access token")
                refreshed = True
                _LOGGER.debug("Spotify refused the access token; refreshing it")
                token = await self._token_refresher(token)
                continue
            token = None
            attempt += 1
            await self._sleep(outcome)

    async def _attempt(self, url: str, token: str, attempt: int) -> _Answer | _Refused | float:
        """One request; returns the answer, a refused token or the delay before the next one."""
        backoff = BACKOFF_BASE ** (attempt - 1) if attempt < MAX_ATTEMPTS else None
        async with self._gate.slot():
            self.requests_made += 1
            try:
                async with self._session.get(
                    url, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
                ) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    if status < 300:
                        body = await resp.json(content_type=None)
                    elif status == 429:
                        body = _rate_limit_reason(await resp.read())
                    else:
                        body = None
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as err:
                if backoff is None:
                    raise SpotifyError(f"Spotify unreachable: {type(err).__name__}") from err
                _LOGGER.debug("Spotify request failed (%s), retrying in %.0f s", err, backoff)
                return backoff
            except ValueError as err:  # malformed JSON
                raise SpotifyError("Spotify sent a malformed JSON body") from err
        return self._classify(status, retry_after, body, backoff)

    def _classify(
        self, status: int, retry_after: str | None, body: Any, backoff: float | None
    ) -> _Answer | _Refused | float:
        if status < 300:
            return _Answer(body)
        if status == 401:
            return _Refused()
        if status == 403:
            raise SpotifyForbiddenError("Spotify answered 403 Forbidden")
        if status == 404:
            raise SpotifyNotFoundError("Spotify answered 404 Not Found")
        if status == 429:
            delay = _parse_retry_after(retry_after)
            reason = body if isinstance(body, str) else None
            self._gate.pause(delay, reason)
            if delay > MAX_INLINE_RETRY_AFTER or backoff is None:
                raise SpotifyRateLimitedError(delay, reason)
            _LOGGER.debug("Spotify rate limit, waiting %.0f s", delay)
            return 0.0  # the gate itself waits out the pause, for every account
        if status >= 500 and backoff is not None:
            _LOGGER.debug("Spotify answered %s, retrying in %.0f s", status, backoff)
            return backoff
        raise SpotifyError(f"Spotify answered HTTP {status}")

    async def current_user(self) -> dict[str, Any]:
        """GET /me."""
        body = await self.get_json("/me")
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise SpotifyError("Spotify sent an unexpected /me payload")
        return body

    async def recently_played(self, after_ms: int) -> list[Any]:
        """All recently-played items after ``after_ms`` (Unix ms), following ``next``."""
        items: list[Any] = []
        url: str | None = f"/me/player/recently-played?limit=50&after={after_ms}"
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            page = await self.get_json(url)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise SpotifyError("Spotify sent an unexpected recently-played page")
            if len(page["items"]) > MAX_PAGE_ITEMS:
                # Spotify never sends more than 50; anything else is not Spotify talking.
                raise SpotifyError(f"Spotify sent {len(page['items'])} items in one page")
            items.extend(page["items"])
            next_url = page.get("next")
            url = next_url if isinstance(next_url, str) and page["items"] else None
        _LOGGER.warning("Spotify's recently-played kept paging after %s pages; stopped", MAX_PAGES)
        return items

    async def lookup(self, kind: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Full objects for ``ids`` of ``kind`` (tracks/albums/artists).

        Uses the batch endpoint while it works and falls back to one request per id
        once Spotify refuses it (development-mode apps since 2026). Ids Spotify does
        not know are left out; other errors propagate so the caller can retry later.
        """
        pending = list(dict.fromkeys(ids))
        found: list[dict[str, Any]] = []
        limit = BATCH_LIMITS[kind]
        while pending and self.batch_support.allowed is not False:
            chunk = pending[:limit]
            try:
                body = await self.get_json(f"/{kind}?ids={','.join(chunk)}")
            except (SpotifyForbiddenError, SpotifyNotFoundError) as err:
                _LOGGER.info("Spotify refused GET /%s?ids= (%s); using single lookups", kind, err)
                self.batch_support.allowed = False
                break
            self.batch_support.allowed = True
            objects = body.get(kind) if isinstance(body, dict) else None
            if not isinstance(objects, list):
                raise SpotifyError(f"Spotify sent an unexpected /{kind} batch payload")
            found.extend(obj for obj in objects if isinstance(obj, dict))
            pending = pending[limit:]
        for item_id in pending:
            try:
                obj = await self.get_json(f"/{kind}/{item_id}")
            except SpotifyNotFoundError:
                _LOGGER.debug("Spotify does not know %s %s", kind, item_id)
                continue
            if isinstance(obj, dict):
                found.append(obj)
        return found


@dataclass(slots=True, frozen=True)
class _Answer:
    body: Any


@dataclass(slots=True, frozen=True)
class _Refused:
    """401: Spotify refused the access token."""


def _rate_limit_reason(raw: bytes) -> str | None:
    """The ``reason`` of a 429 body (QUOTA_EXCEEDED for a spent quota), if it has one."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    for source in (error, body):
        reason = source.get("reason") if isinstance(source, dict) else None
        if isinstance(reason, str) and reason:
            return reason[:64]
    return None


def _parse_retry_after(value: str | None) -> float:
    """Retry-After in seconds (Spotify sends an integer); 5 s when absent or odd."""
    try:
        seconds = float(value) if value is not None else 5.0
    except ValueError:
        return 5.0
    if not math.isfinite(seconds):  # "inf" and "nan" parse as floats
        return MAX_RETRY_AFTER if seconds > 0 else 5.0
    return min(max(1.0, seconds), MAX_RETRY_AFTER)
