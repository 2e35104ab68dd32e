"""The statistics card: served by the integration, added to the frontend, and its data."""

from collections.abc import Awaitable, Callable

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL, UrlManager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.spotify_scrobbler.card import CARD_FILE
from custom_components.spotify_scrobbler.statistics import statistic_ids

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]


async def test_the_card_module_is_added_to_the_frontend_and_served(
    hass: HomeAssistant, setup_entry: SetupEntry, hass_client: ClientSessionGenerator
) -> None:
    """No separate install: the frontend loads the card's module from the integration, at
    a URL that changes with the file (browsers cache it)."""
    # The frontend integration itself cannot start in tests (its built files are not
    # installed): its list of extra modules is set up as it would have it.
    added: list[str] = []
    hass.data[DATA_EXTRA_MODULE_URL] = UrlManager(lambda _change, url: added.append(url), [])
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "http", {})

    await setup_entry()

    (url,) = added
    assert url.startswith("/spotify_scrobbler_card/spotify-scrobbler-card.js?v=")
    response = await (await hass_client()).get(url)
    assert response.status == 200
    assert response.content_type == "text/javascript"
    module = await response.read()
    assert module == await hass.async_add_executor_job(CARD_FILE.read_bytes)
    assert b'customElements.define("spotify-scrobbler-card"' in module
    assert b'customElements.define("spotify-scrobbler-card-editor"' in module


async def test_the_card_finds_each_account_its_statistic_and_sensors(
    hass: HomeAssistant, setup_entry: SetupEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """What the card asks first: the loaded accounts and the ids it reads for each."""
    entry = await setup_entry()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "spotify_scrobbler/accounts"})
    answer = await client.receive_json()

    assert answer["success"]
    (account,) = answer["result"]
    assert account["entry_id"] == entry.entry_id
    assert account["title"] == entry.title
    assert account["plays_statistic_id"] == statistic_ids(entry)[0]
    assert hass.states.get(account["status_entity_id"]).state == "ok"
    assert hass.states.get(account["pending_entity_id"]).state == "0"
    assert int(hass.states.get(account["total_entity_id"]).state) >= 0

    await hass.config_entries.async_unload(entry.entry_id)
    await client.send_json_auto_id({"type": "spotify_scrobbler/accounts"})
    assert (await client.receive_json())["result"] == []


async def test_a_web_server_without_new_routes_does_not_stop_the_setup(
    hass: HomeAssistant, setup_entry: SetupEntry, hass_client: ClientSessionGenerator
) -> None:
    """A bare aiohttp server started before the integration (a test client; HA's own takes
    routes after start) refuses the card's route: the entry loads all the same."""
    added: list[str] = []
    hass.data[DATA_EXTRA_MODULE_URL] = UrlManager(lambda _change, url: added.append(url), [])
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "http", {})
    await hass_client()
    hass.http.app.router.freeze()  # as aiohttp leaves a server it started itself

    entry = await setup_entry()

    assert entry.state is ConfigEntryState.LOADED
