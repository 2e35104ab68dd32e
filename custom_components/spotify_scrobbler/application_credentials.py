"""Application credentials: the user's own Spotify app (client id and secret)."""

from homeassistant.components.application_credentials import AuthorizationServer
from homeassistant.core import HomeAssistant

from .const import SPOTIFY_AUTHORIZE_URL, SPOTIFY_TOKEN_URL


async def async_get_authorization_server(hass: HomeAssistant) -> AuthorizationServer:
    """Return Spotify's OAuth endpoints."""
    return AuthorizationServer(authorize_url=SPOTIFY_AUTHORIZE_URL, token_url=SPOTIFY_TOKEN_URL)
