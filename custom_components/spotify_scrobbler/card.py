"""The statistics card: its module, served by the integration, and what the card asks of HA.

The card (``frontend/spotify-scrobbler-card.js``, built from the repository's ``frontend``
folder) is added to the frontend as an extra module, so the dashboard's card picker lists it
without a separate HACS "plugin" install. The card asks ``spotify_scrobbler/accounts`` which
accounts are loaded, and for each its plays statistic and the entities it shows; the rest
comes from the ``top`` and ``recent_plays`` actions and the recorder's websocket API.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, Final

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .compat import StaticPathConfig, vol
from .const import DOMAIN
from .statistics import statistic_ids

URL_BASE: Final = f"/{DOMAIN}_card"
CARD_FILE: Final = Path(__file__).parent / "frontend" / "spotify-scrobbler-card.js"
# The sensors the card shows, by the key their unique id ends with.
CARD_SENSORS: Final = {
    "status_entity_id": "status",
    "pending_entity_id": "pending_plays",
    "total_entity_id": "total_plays",
}


async def async_setup_card(hass: HomeAssistant) -> None:
    """Answer the card's websocket command; serve its module and add it to the frontend."""
    async_register_command(hass, websocket_accounts)
    if "http" not in hass.config.components:  # no web server to serve the module
        return
    # Home Assistant's own server takes routes after it started; a bare aiohttp server
    # started before the integration (a test client) refuses them: setup goes on.
    with contextlib.suppress(RuntimeError):
        await hass.http.async_register_static_paths(
            [StaticPathConfig(URL_BASE, str(CARD_FILE.parent), cache_headers=True)]
        )
    if "frontend" not in hass.config.components:
        return
    # Cached by browsers for a long time: the URL changes with the file.
    digest = await hass.async_add_executor_job(_digest, CARD_FILE)
    add_extra_js_url(hass, f"{URL_BASE}/{CARD_FILE.name}?v={digest}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@websocket_command({vol.Required("type"): f"{DOMAIN}/accounts"})
@callback
def websocket_accounts(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """The loaded accounts: entry id, title, plays statistic and the card's sensors."""
    registry = er.async_get(hass)
    accounts: list[dict[str, str | None]] = []
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        account = entry.unique_id or entry.entry_id
        plays_id, _ = statistic_ids(entry)
        sensors = {
            field: registry.async_get_entity_id("sensor", DOMAIN, f"{account}_{key}")
            for field, key in CARD_SENSORS.items()
        }
        account_ids: dict[str, str | None] = {
            "entry_id": entry.entry_id,
            "title": entry.title,
            "plays_statistic_id": plays_id,
        }
        accounts.append(account_ids | sensors)
    connection.send_result(msg["id"], accounts)
