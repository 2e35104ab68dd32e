"""Config flow: OAuth with the user's Spotify app."""

import logging
from typing import Any

from homeassistant.helpers import config_entry_oauth2_flow

from .const import DOMAIN, SPOTIFY_SCOPES


class SpotifyScrobblerFlowHandler(
    config_entry_oauth2_flow.AbstractOAuth2FlowHandler, domain=DOMAIN
):
    """Link a Spotify account through OAuth."""

    DOMAIN = DOMAIN
    VERSION = 1

    @property
    def logger(self) -> logging.Logger:
        """Logger of the OAuth helper."""
        return logging.getLogger(__name__)

    @property
    def extra_authorize_data(self) -> dict[str, Any]:
        """Ask Spotify for the scopes the scrobbler needs."""
        return {"scope": " ".join(SPOTIFY_SCOPES)}
