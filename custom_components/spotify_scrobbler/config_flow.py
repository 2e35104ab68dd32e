"""Config flow: OAuth with the user's Spotify app, then the MongoDB to scrobble into."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_entry_oauth2_flow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from pymongo import AsyncMongoClient
from pymongo.errors import (
    ConfigurationError,
    InvalidURI,
    OperationFailure,
    PyMongoError,
)
from pymongo.uri_parser import parse_uri

from . import SHARED
from .compat import vol
from .const import (
    CONF_BLACKLISTED_ARTISTS,
    CONF_DATABASE,
    CONF_REQUEST_SPACING,
    CONF_URI,
    DEFAULT_DATABASE,
    DEFAULT_URI,
    DOMAIN,
    SPOTIFY_API_BASE,
    SPOTIFY_SCOPES,
)
from .engine.mongo_client import build_mongo_client
from .engine.spotify import (
    DEFAULT_SPACING,
    RequestGate,
    SpotifyClient,
    SpotifyError,
    SpotifyForbiddenError,
)
from .engine.store import Document, ScrobbleStore

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry

_LOGGER = logging.getLogger(__name__)

# MongoDB error codes meaning "who you are" or "what you may do" is the problem.
AUTH_ERROR_CODES = {13, 18}  # Unauthorized, AuthenticationFailed


async def validate_mongodb(hass: HomeAssistant, uri: str, database: str) -> str | None:
    """Connect, ping and prove write permission; an error key or None."""

    def parse_and_build() -> AsyncMongoClient[Document]:
        parse_uri(uri)  # strict validation (and SRV lookup): blocking, hence the executor
        return build_mongo_client(uri, appname=DOMAIN)

    try:
        client = await hass.async_add_executor_job(parse_and_build)
    except InvalidURI, ConfigurationError, ValueError:
        return "invalid_uri"
    try:
        await client.admin.command("ping")
        await ScrobbleStore(client[database]).check_writable()
    except OperationFailure as err:
        return "invalid_auth" if err.code in AUTH_ERROR_CODES else "cannot_connect"
    except PyMongoError:
        return "cannot_connect"
    finally:
        await client.close()
    return None


class SpotifyScrobblerFlowHandler(
    config_entry_oauth2_flow.AbstractOAuth2FlowHandler, domain=DOMAIN
):
    """Link a Spotify account through OAuth, then choose the MongoDB database."""

    DOMAIN = DOMAIN
    VERSION = 1

    def __init__(self) -> None:
        """Start with no account linked."""
        super().__init__()
        self._oauth_data: dict[str, Any] = {}
        self._title = ""

    @property
    def logger(self) -> logging.Logger:
        """Logger of the OAuth helper."""
        return _LOGGER

    @property
    def extra_authorize_data(self) -> dict[str, Any]:
        """Ask Spotify for the scopes the scrobbler needs."""
        return {"scope": " ".join(SPOTIFY_SCOPES)}

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The refresh token expired or was revoked: authorize again."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Explain, then restart OAuth."""
        if user_input is None:
            return self.async_show_form(step_id="reauth_confirm")
        return await self.async_step_user()

    async def async_oauth_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Identify the account, then ask for MongoDB (or finish a reauth)."""
        token = str(data["token"]["access_token"])

        async def static_token() -> str:
            return token

        client = SpotifyClient(
            async_get_clientsession(self.hass),
            static_token,
            RequestGate(spacing=0),
            base_url=SPOTIFY_API_BASE,
        )
        try:
            me = await client.current_user()
        except SpotifyForbiddenError:
            return self.async_abort(reason="user_not_premium")
        except SpotifyError as err:
            # The cause (a TLS or DNS failure, a refused token, an HTTP status) is what tells
            # the user what to fix; the messages carry no token.
            _LOGGER.warning("Could not identify the Spotify account: %s", _describe(err))
            return self.async_abort(reason="connection_error")

        await self.async_set_unique_id(me["id"])
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="reauth_account_mismatch")
            return self.async_update_reload_and_abort(self._get_reauth_entry(), data_updates=data)
        self._abort_if_unique_id_configured()
        self._oauth_data = data
        name = me.get("display_name")
        self._title = name if isinstance(name, str) and name else me["id"]
        return await self.async_step_mongodb()

    async def async_step_mongodb(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Where to store the plays; tested before the entry is created."""
        errors: dict[str, str] = {}
        if user_input is not None:
            error = await validate_mongodb(
                self.hass, user_input[CONF_URI], user_input[CONF_DATABASE]
            )
            if error is None:
                return self.async_create_entry(
                    title=self._title, data={**self._oauth_data, **user_input}
                )
            errors["base"] = error
        defaults = user_input or {CONF_URI: DEFAULT_URI, CONF_DATABASE: DEFAULT_DATABASE}
        return self.async_show_form(
            step_id="mongodb", data_schema=_mongodb_schema(defaults), errors=errors
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move to another MongoDB server or database (tested first)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            error = await validate_mongodb(
                self.hass, user_input[CONF_URI], user_input[CONF_DATABASE]
            )
            if error is None:
                return self.async_update_reload_and_abort(entry, data_updates=user_input)
            errors["base"] = error
        defaults = user_input or {
            CONF_URI: entry.data[CONF_URI],
            CONF_DATABASE: entry.data[CONF_DATABASE],
        }
        return self.async_show_form(
            step_id="reconfigure", data_schema=_mongodb_schema(defaults), errors=errors
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SpotifyScrobblerConfigEntry) -> ScrobblerOptionsFlow:
        """Blacklist and request spacing."""
        return ScrobblerOptionsFlow()


def _causes(err: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = err
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def _describe(err: BaseException) -> str:
    """The error and the chain of its causes, e.g. "Spotify unreachable: ... <- SSL: ..."."""
    parts: list[str] = []
    for cause in islice(_causes(err), 4):
        text = str(cause) or type(cause).__name__
        if not any(text in part for part in parts):  # aiohttp repeats its cause's text
            parts.append(text)
    return " <- ".join(parts)


def _mongodb_schema(defaults: Mapping[str, str]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_URI, default=defaults[CONF_URI]): str,
            vol.Required(CONF_DATABASE, default=defaults[CONF_DATABASE]): str,
        }
    )


ARTIST_REFERENCE = re.compile(
    r"(?:spotify:artist:|https?://open\.spotify\.com/(?:intl-[a-z]+/)?artist/)?([0-9A-Za-z]{22})\b.*"
)
# How the form shows a saved artist whose name is stored: "Radiohead (4Z8W4fKeB5YxbusRsdQVPb)".
NAMED_ARTIST = re.compile(r".*\(([0-9A-Za-z]{22})\)")


class ScrobblerOptionsFlow(OptionsFlowWithReload):
    """Options that apply from the next cycle on (the entry reloads)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Artists to blacklist (names, ids or links) and the spacing between requests."""
        errors: dict[str, str] = {}
        placeholders = {"unknown": "", "effective_spacing": self._effective_spacing()}
        if user_input is not None:
            ids, unknown = await self._resolve_artists(user_input.get(CONF_BLACKLISTED_ARTISTS, []))
            if not unknown:
                return self.async_create_entry(
                    data={
                        CONF_BLACKLISTED_ARTISTS: ids,
                        CONF_REQUEST_SPACING: float(user_input[CONF_REQUEST_SPACING]),
                    }
                )
            errors[CONF_BLACKLISTED_ARTISTS] = "unknown_artist"
            placeholders["unknown"] = ", ".join(unknown)
        options = self.config_entry.options
        current = user_input or {
            CONF_BLACKLISTED_ARTISTS: await self._shown_artists(
                list(options.get(CONF_BLACKLISTED_ARTISTS, []))
            ),
            CONF_REQUEST_SPACING: options.get(CONF_REQUEST_SPACING, DEFAULT_SPACING),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Optional(
                        CONF_BLACKLISTED_ARTISTS, default=current[CONF_BLACKLISTED_ARTISTS]
                    ): TextSelector(TextSelectorConfig(multiple=True)),
                    vol.Required(
                        CONF_REQUEST_SPACING, default=current[CONF_REQUEST_SPACING]
                    ): NumberSelector(
                        NumberSelectorConfig(
                            min=0.2,
                            max=10,
                            step=0.1,
                            unit_of_measurement="s",
                            mode=NumberSelectorMode.BOX,
                        )
                    ),
                }
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _effective_spacing(self) -> str:
        """The spacing the shared request queue uses now (the largest of the loaded accounts)."""
        shared = self.hass.data.get(SHARED)
        spacing = shared.gate.spacing if shared is not None else DEFAULT_SPACING
        return f"{spacing:g}"

    def _store(self) -> ScrobbleStore | None:
        """The loaded entry's MongoDB store (names are looked up there), else None."""
        runtime = getattr(self.config_entry, "runtime_data", None)
        return runtime.coordinator.store if runtime is not None else None

    async def _shown_artists(self, ids: list[str]) -> list[str]:
        """Saved ids as "Name (id)" where MongoDB knows the artist; a bare id otherwise."""
        store = self._store()
        if not ids or store is None:
            return ids
        try:
            _, _, artists = await store.metadata([], [], ids)
        except PyMongoError:
            return ids  # MongoDB down: the ids still round-trip unchanged
        shown = []
        for artist_id in ids:
            name = artists.get(artist_id, {}).get("name")
            shown.append(f"{name} ({artist_id})" if isinstance(name, str) and name else artist_id)
        return shown

    async def _resolve_artists(self, references: list[str]) -> tuple[list[str], list[str]]:
        """Spotify ids for ids, URIs, links and names of stored artists; and the unknown."""
        ids: list[str] = []
        names: list[str] = []
        for reference in (r.strip() for r in references):
            if not reference:
                continue
            # "Name (id)" first: a 22-letter name would otherwise pass for an id.
            if (match := NAMED_ARTIST.fullmatch(reference)) or (
                match := ARTIST_REFERENCE.fullmatch(reference)
            ):
                ids.append(match.group(1))
            else:
                names.append(reference)
        store = self._store()
        if names and store is not None:  # names are looked up in the loaded entry's MongoDB
            found = await store.artist_ids_by_name(names)
            ids.extend(found[name.casefold()] for name in names if name.casefold() in found)
            names = [name for name in names if name.casefold() not in found]
        return list(dict.fromkeys(ids)), names
