"""Application credentials: the user's own Spotify app (client id and secret)."""

from homeassistant.components.application_credentials import AuthorizationServer
from homeassistant.core import HomeAssistant
from homeassistant.helpers.config_entry_oauth2_flow import (
    AUTH_CALLBACK_PATH,
    MY_AUTH_CALLBACK_PATH,
)

from .const import SPOTIFY_AUTHORIZE_URL, SPOTIFY_TOKEN_URL

SPOTIFY_DASHBOARD_URL = "https://developer.spotify.com/dashboard"


async def async_get_authorization_server(hass: HomeAssistant) -> AuthorizationServer:
    """Return Spotify's OAuth endpoints."""
    return AuthorizationServer(authorize_url=SPOTIFY_AUTHORIZE_URL, token_url=SPOTIFY_TOKEN_URL)


async def async_get_description_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Where to create the Spotify app, and the redirect URI it must list.

    HA's OAuth flow uses the My Home Assistant redirect when the `my` integration is loaded (the
    default); otherwise the address the browser opens HA with, which only the browser knows.
    """
    if "my" in hass.config.components:
        redirect_uri = MY_AUTH_CALLBACK_PATH
    else:
        redirect_uri = f"<the address you open Home Assistant with>{AUTH_CALLBACK_PATH}"
    return {"developer_dashboard_url": SPOTIFY_DASHBOARD_URL, "redirect_uri": redirect_uri}
