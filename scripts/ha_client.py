"""What a user does in Home Assistant's UI, through its public HTTP and websocket APIs.

Shared by scripts/demo.py and scripts/verify_ha.py (run as scripts, so this is a sibling
module). Nothing here is used by the integration, the tests or CI.
"""

import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

USERNAME = "demo"
PASSWORD = "demo-password"  # a throwaway instance on 127.0.0.1
DATABASE = "your_spotify"
DOMAIN = "spotify_scrobbler"
# Where HA sends Spotify when `my` is loaded (default_config loads it): My Home Assistant then
# forwards the browser to the instance's /auth/external/callback with the same query.
MY_REDIRECT = "https://my.home-assistant.io/redirect/oauth"

type Json = dict[str, Any]


@dataclass(slots=True)
class Tokens:
    """The frontend's view of a login: what it stores as localStorage.hassTokens."""

    hass_url: str
    client_id: str
    access_token: str
    refresh_token: str
    expires_in: int

    def local_storage(self) -> Json:
        """The value home-assistant-js-websocket keeps in localStorage.hassTokens."""
        return {
            "hassUrl": self.hass_url,
            "clientId": self.client_id,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "expires": int(time.time() * 1000) + self.expires_in * 1000,
        }


class WsError(RuntimeError):
    """An error answer of the websocket API."""

    def __init__(self, message_type: str, error: Json) -> None:
        """Keep the error's code for callers that accept some."""
        super().__init__(f"{message_type}: {error}")
        self.code = str(error.get("code", ""))


class Ws:
    """Minimal websocket API client."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        """Wrap an authenticated socket."""
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, message_type: str, **data: Any) -> Any:
        """Send a command, return its result (raises WsError on an error answer)."""
        message_id = next(self._ids)
        await self._socket.send_json({"id": message_id, "type": message_type, **data})
        while True:
            answer = await self._socket.receive_json(timeout=60)
            if answer.get("id") != message_id or answer.get("type") != "result":
                continue
            if not answer["success"]:
                raise WsError(message_type, answer["error"])
            return answer["result"]


@contextlib.asynccontextmanager
async def websocket(session: aiohttp.ClientSession, url: str, token: str) -> AsyncIterator[Ws]:
    """An authenticated websocket API connection."""
    async with session.ws_connect(f"{url}/api/websocket") as socket:
        if (await socket.receive_json())["type"] != "auth_required":
            raise RuntimeError("the websocket API did not ask for authentication")
        await socket.send_json({"type": "auth", "access_token": token})
        if (answer := await socket.receive_json())["type"] != "auth_ok":
            raise RuntimeError(f"websocket auth: {answer}")
        yield Ws(socket)


async def checked(response: aiohttp.ClientResponse) -> Any:
    """The JSON of a 2xx answer; the body in the error otherwise."""
    if response.status >= 300:
        raise RuntimeError(
            f"{response.method} {response.url}: {response.status} {await response.text()}"
        )
    return await response.json()


async def onboard(session: aiohttp.ClientSession, url: str) -> Tokens:
    """Create the owner, log in as the frontend does, finish the onboarding steps."""
    client_id = f"{url}/"
    user = {
        "client_id": client_id,
        "name": "Demo",
        "username": USERNAME,
        "password": PASSWORD,
        "language": "en",
    }
    async with session.post(f"{url}/api/onboarding/users", json=user) as response:
        code = (await checked(response))["auth_code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
    async with session.post(f"{url}/auth/token", data=form) as response:
        token = await checked(response)
    tokens = Tokens(
        url, client_id, token["access_token"], token["refresh_token"], token["expires_in"]
    )
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    steps: list[tuple[str, Json]] = [
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": client_id, "redirect_uri": f"{url}/?auth_callback=1"}),
    ]
    for step, body in steps:
        async with session.post(
            f"{url}/api/onboarding/{step}", json=body, headers=headers
        ) as response:
            await checked(response)
    return tokens


async def promote_http(ws: Ws) -> None:
    """Confirm the YAML http: settings, as the UI asks to.

    HA 2026.10 moves http: from YAML to a pending config that it reverts (with a restart) after
    5 minutes unless the user confirms it works; older versions keep YAML's and lack the command.
    """
    try:
        await ws.call("http/config/promote")
    except WsError as err:
        if err.code != "unknown_command":
            raise


async def add_account(
    session: aiohttp.ClientSession, ws: Ws, url: str, token: str, mongodb: str
) -> str:
    """Application credentials, then the config flow as the UI runs it; the entry id."""
    await ws.call(
        "application_credentials/create",
        domain=DOMAIN,
        client_id="demo-client-id",
        client_secret="demo-client-secret",
        name="Demo Spotify app",
    )
    # The frontend names its own origin: the OAuth redirect URI is built from it.
    headers = {"Authorization": f"Bearer {token}", "HA-Frontend-Base": url}
    flows = f"{url}/api/config/config_entries/flow"
    async with session.post(flows, json={"handler": DOMAIN}, headers=headers) as response:
        step = await checked(response)
    if step["type"] != "external":
        raise RuntimeError(f"expected the OAuth step, got {step}")
    # The user's browser: Spotify's consent page redirects to the redirect URI (My Home
    # Assistant's, forwarding to the instance, when `my` is loaded), which resumes the flow.
    async with session.get(step["url"], allow_redirects=False) as response:
        location = response.headers.get("Location", "")
        if response.status not in {301, 302, 303, 307} or not location:
            raise RuntimeError(f"Spotify's consent page answered {response.status}")
    if location.startswith(MY_REDIRECT):
        location = f"{url}/auth/external/callback{location[len(MY_REDIRECT) :]}"
    async with session.get(location) as response:
        if response.status != 200 or response.url.path != "/auth/external/callback":
            raise RuntimeError(f"OAuth redirect ended at {response.url} ({response.status})")
    async with session.post(f"{flows}/{step['flow_id']}", json={}, headers=headers) as response:
        step = await checked(response)
    if step.get("step_id") != "mongodb":
        raise RuntimeError(f"expected the MongoDB step, got {step}")
    answer = {"uri": mongodb, "database": DATABASE}
    async with session.post(f"{flows}/{step['flow_id']}", json=answer, headers=headers) as response:
        step = await checked(response)
    if step["type"] != "create_entry":
        raise RuntimeError(f"expected an entry, got {step}")
    return str(step["result"]["entry_id"])


async def state_of(session: aiohttp.ClientSession, url: str, token: str, entity_id: str) -> Json:
    """GET /api/states/<entity_id>."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{url}/api/states/{entity_id}", headers=headers) as response:
        return dict(await checked(response))
