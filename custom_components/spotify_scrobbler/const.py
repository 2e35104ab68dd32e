"""Constants of the Spotify Scrobbler integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "spotify_scrobbler"

SPOTIFY_AUTHORIZE_URL: Final = "https://accounts.spotify.com/authorize"
SPOTIFY_TOKEN_URL: Final = "https://accounts.spotify.com/api/token"
SPOTIFY_API_BASE: Final = "https://api.spotify.com/v1"

# user-read-recently-played is all the scrobbler needs; the private/email scopes are not asked for.
SPOTIFY_SCOPES: Final = ("user-read-recently-played",)

# The seed's polling period.
SCAN_INTERVAL: Final = timedelta(seconds=120)

CONF_URI: Final = "uri"
CONF_DATABASE: Final = "database"
CONF_BLACKLISTED_ARTISTS: Final = "blacklisted_artists"
CONF_REQUEST_SPACING: Final = "request_spacing"

DEFAULT_URI: Final = "mongodb://127.0.0.1:27017"
DEFAULT_DATABASE: Final = "your_spotify"

EVENT_SCROBBLED: Final = "spotify_scrobbler_scrobbled"
