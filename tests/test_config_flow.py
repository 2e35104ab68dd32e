"""Config flow: OAuth with Spotify, the MongoDB step, reauth."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_entry_oauth2_flow
from pymongo.errors import OperationFailure
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.spotify_scrobbler.const import (
    CONF_BLACKLISTED_ARTISTS,
    CONF_DATABASE,
    CONF_REQUEST_SPACING,
    CONF_URI,
    DOMAIN,
)
from custom_components.spotify_scrobbler.engine import mongo_client
from custom_components.spotify_scrobbler.engine import store as store_module

from .conftest import MongoDb, make_entry
from .mongo_proxy import MongoProxy
from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently

REDIRECT = "https://example.com/auth/external/callback"
INTEGRATION = Path(__file__).resolve().parent.parent / "custom_components" / DOMAIN
STRINGS = json.loads((INTEGRATION / "strings.json").read_text())


@pytest.fixture(autouse=True)
def fast_mongo_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead MongoDB answers within 300 ms instead of 5 s."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 300)


async def authorize(
    hass: HomeAssistant, client_factory: ClientSessionGenerator, flow_id: str
) -> dict[str, Any]:
    """Play the browser's part: Spotify redirects back to HA with a code."""
    state = config_entry_oauth2_flow._encode_jwt(
        hass, {"flow_id": flow_id, "redirect_uri": REDIRECT}
    )
    client = await client_factory()
    resp = await client.get(f"/auth/external/callback?code=abcd&state={state}")
    assert resp.status == 200
    result = await hass.config_entries.flow.async_configure(flow_id)
    return dict(result)


async def start_user_flow(
    hass: HomeAssistant, client_factory: ClientSessionGenerator
) -> dict[str, Any]:
    """Start from 'Add integration' and come back from Spotify."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert result["url"].startswith("https://accounts.spotify.com/authorize")
    assert "scope=user-read-recently-played" in result["url"]
    return await authorize(hass, client_factory, result["flow_id"])


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_full_flow_creates_entry(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    mongodb_uri: str,
) -> None:
    """OAuth, then MongoDB: the entry holds the token, the URI and the database."""
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mongodb"
    schema_defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert schema_defaults == {CONF_URI: "mongodb://127.0.0.1:27017", CONF_DATABASE: "your_spotify"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: mongodb_uri, CONF_DATABASE: mongo_db.name}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == fake_spotify.user_id
    assert entry.title == fake_spotify.display_name
    assert set(entry.data) == {"auth_implementation", "token", CONF_URI, CONF_DATABASE}
    assert entry.data["token"]["refresh_token"] == fake_spotify.refresh_token
    assert fake_spotify.counts["/v1/me"] == 1
    # The write check left nothing behind.
    await hass.async_block_till_done()
    assert "scrobbler_write_check" not in await mongo_db.list_collection_names()


@pytest.mark.usefixtures("current_request_with_host", "credentials")
@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("http://127.0.0.1:27017", "invalid_uri"),
        ("mongodb://", "invalid_uri"),
        ("mongodb://127.0.0.1:9", "cannot_connect"),
    ],
)
async def test_mongodb_errors_then_fixed(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    mongodb_uri: str,
    uri: str,
    error: str,
) -> None:
    """A bad URI or a dead server is reported on the form; fixing it creates the entry."""
    result = await start_user_flow(hass, hass_client_no_auth)
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: uri, CONF_DATABASE: mongo_db.name}
        )
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: mongodb_uri, CONF_DATABASE: mongo_db.name}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.usefixtures("current_request_with_host", "credentials")
@pytest.mark.parametrize(("code", "error"), [(13, "invalid_auth"), (8000, "cannot_connect")])
async def test_mongodb_refuses_writes(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    mongodb_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: str,
) -> None:
    """A user without write permission (code 13) gets invalid_auth, other failures cannot_connect.

    FerretDB runs without authentication, so the server's refusal is injected.
    """

    async def refuse(self: store_module.ScrobbleStore) -> None:
        raise OperationFailure("not authorized on your_spotify to execute command", code=code)

    monkeypatch.setattr(store_module.ScrobbleStore, "check_writable", refuse)
    result = await start_user_flow(hass, hass_client_no_auth)
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: mongodb_uri, CONF_DATABASE: mongo_db.name}
        )
    )
    assert result["errors"] == {"base": error}


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_same_account_twice_aborts(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
) -> None:
    """Adding an account that is already set up aborts."""
    make_entry(fake_spotify, mongo_db).add_to_hass(hass)
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_not_premium_aborts(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, fake_spotify: FakeSpotify
) -> None:
    """Spotify's 403 on /me (app owner without Premium) aborts with an explanation."""
    fake_spotify.owner_premium = False
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "user_not_premium"


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_spotify_down_aborts(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, fake_spotify: FakeSpotify
) -> None:
    """Spotify failing on /me aborts with connection_error."""
    fake_spotify.inject("/v1/me", status=500, times=10)
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "connection_error"


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_refused_fresh_token_aborts_without_refresh(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, fake_spotify: FakeSpotify
) -> None:
    """A 401 on /me with the token just granted: abort, no refresh and no second /me."""
    fake_spotify.inject("/v1/me", status=401)
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "connection_error"
    assert [r["grant_type"] for r in fake_spotify.token_requests] == ["authorization_code"]
    assert len(fake_spotify.calls("/v1/me")) == 1


@pytest.mark.usefixtures("current_request_with_host", "credentials")
@pytest.mark.parametrize(
    ("user_id", "reason"),
    [("scrobbler-test-user", "reauth_successful"), ("someone-else", "reauth_account_mismatch")],
)
async def test_reauth(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    user_id: str,
    reason: str,
) -> None:
    """Reauth updates the token of the same account and refuses another account."""
    entry = make_entry(fake_spotify, mongo_db)
    entry.add_to_hass(hass)
    fake_spotify.user_id = user_id
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    result = await authorize(hass, hass_client_no_auth, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    if reason == "reauth_successful":
        assert entry.data["token"]["access_token"] != "fake-access-token"
        assert entry.data[CONF_URI] == make_entry(fake_spotify, mongo_db).data[CONF_URI]
    await hass.async_block_till_done()


def test_entry_factory_matches_flow(fake_spotify: FakeSpotify, mongo_db: MongoDb) -> None:
    """The tests' MockConfigEntry has the shape the flow creates."""
    entry: MockConfigEntry = make_entry(fake_spotify, mongo_db)
    assert set(entry.data) == {"auth_implementation", "token", CONF_URI, CONF_DATABASE}


async def test_reconfigure_moves_to_another_database(
    hass: HomeAssistant,
    setup_entry: Any,
    fake_spotify: FakeSpotify,
    mongo_db: MongoDb,
    mongodb_uri: str,
) -> None:
    """Reconfigure tests the new MongoDB, saves it and reloads the entry."""
    entry = await setup_entry()
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: "mongodb://127.0.0.1:9", CONF_DATABASE: "elsewhere"}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    other = f"{mongo_db.name}_moved"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: mongodb_uri, CONF_DATABASE: other}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_DATABASE] == other
    assert entry.state is ConfigEntryState.LOADED
    assert await mongo_db.client[other]["users"].count_documents({}) == 1
    await mongo_db.client.drop_database(other)


async def test_options_blacklist_by_name_id_and_link(
    hass: HomeAssistant,
    setup_entry: Any,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Artists are given by stored name, id, URI or link; ids are saved; unknown names refused."""
    plays = play_recently(fake_spotify, catalog, [(0, 5.0)])
    entry = await setup_entry()
    known = catalog.artists[catalog.tracks[plays[0].track_id or ""].artist_ids[0]]
    others = [a for a in sorted(catalog.artists) if a != known.id][:3]

    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_BLACKLISTED_ARTISTS: ["Nobody We Know"], CONF_REQUEST_SPACING: 1.5},
    )
    assert result["errors"] == {CONF_BLACKLISTED_ARTISTS: "unknown_artist"}
    assert result["description_placeholders"]["unknown"] == "Nobody We Know"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_BLACKLISTED_ARTISTS: [
                known.name.upper(),
                others[0],
                f"spotify:artist:{others[1]}",
                f"https://open.spotify.com/artist/{others[2]}?si=abc123",
                " ",
            ],
            CONF_REQUEST_SPACING: 1.5,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_BLACKLISTED_ARTISTS: [others[0], others[1], others[2], known.id],
        CONF_REQUEST_SPACING: 1.5,
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    user = await mongo_db["users"].find_one({})
    assert user is not None
    # Your Spotify's own blacklist setting is the user's there: seeded once, never overwritten.
    assert user["settings"]["blacklistedArtists"] == []


async def test_options_names_need_a_loaded_entry(
    hass: HomeAssistant, fake_spotify: FakeSpotify, mongo_db: MongoDb
) -> None:
    """Without a running entry names cannot be looked up; ids still work."""
    entry = make_entry(fake_spotify, mongo_db)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_BLACKLISTED_ARTISTS: ["Some Name", "0TnOYISbd1XYRBk9myaseg"],
            CONF_REQUEST_SPACING: 1,
        },
    )
    assert result["errors"] == {CONF_BLACKLISTED_ARTISTS: "unknown_artist"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_BLACKLISTED_ARTISTS: ["0TnOYISbd1XYRBk9myaseg"], CONF_REQUEST_SPACING: 1},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_BLACKLISTED_ARTISTS] == ["0TnOYISbd1XYRBk9myaseg"]


async def test_options_show_saved_artists_by_name(
    hass: HomeAssistant,
    setup_entry: Any,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    mongo_db: MongoDb,
) -> None:
    """Saved ids come back as "Name (id)" (a bare id if never scrobbled) and save unchanged."""
    plays = play_recently(fake_spotify, catalog, [(0, 5.0)])
    known = catalog.artists[catalog.tracks[plays[0].track_id or ""].artist_ids[0]]
    never_scrobbled = next(a for a in sorted(catalog.artists) if a != known.id)
    entry = await setup_entry(
        options={CONF_BLACKLISTED_ARTISTS: [never_scrobbled, known.id], CONF_REQUEST_SPACING: 1.0}
    )

    result = await hass.config_entries.options.async_init(entry.entry_id)
    shown = {str(key): key.default() for key in result["data_schema"].schema}
    assert shown[CONF_BLACKLISTED_ARTISTS] == [never_scrobbled, f"{known.name} ({known.id})"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_BLACKLISTED_ARTISTS: shown[CONF_BLACKLISTED_ARTISTS], CONF_REQUEST_SPACING: 1.0},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_BLACKLISTED_ARTISTS] == [never_scrobbled, known.id]
    await hass.async_block_till_done()


async def test_options_show_saved_ids_while_mongodb_is_down(
    hass: HomeAssistant, setup_entry: Any, proxy: MongoProxy
) -> None:
    """Without MongoDB the form still opens, with the saved ids as they are."""
    saved = ["0TnOYISbd1XYRBk9myaseg"]
    entry = await setup_entry(
        uri=proxy.uri, options={CONF_BLACKLISTED_ARTISTS: saved, CONF_REQUEST_SPACING: 1.0}
    )
    proxy.set_down()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    shown = {str(key): key.default() for key in result["data_schema"].schema}
    assert shown[CONF_BLACKLISTED_ARTISTS] == saved
    proxy.set_down(down=False)


async def test_options_tell_the_spacing_all_accounts_share(
    hass: HomeAssistant, setup_entry: Any
) -> None:
    """The form says which spacing the shared request queue uses now (the largest one)."""
    entry = await setup_entry(options={CONF_BLACKLISTED_ARTISTS: [], CONF_REQUEST_SPACING: 2.5})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["description_placeholders"] == {"unknown": "", "effective_spacing": "2.5"}


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(
    ("my_loaded", "redirect_uri"),
    [
        (True, "https://my.home-assistant.io/redirect/oauth"),
        (False, "<the address you open Home Assistant with>/auth/external/callback"),
    ],
)
async def test_credentials_dialog_names_the_redirect_uri(
    hass: HomeAssistant, hass_ws_client: Any, my_loaded: bool, redirect_uri: str
) -> None:
    """The Application credentials dialog fills in the dashboard link and the redirect URI."""
    if my_loaded:
        hass.config.components.add("my")
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "application_credentials/config"})
    response = await client.receive_json()
    assert response["success"]
    placeholders = response["result"]["integrations"][DOMAIN]["description_placeholders"]
    assert placeholders == {
        "developer_dashboard_url": "https://developer.spotify.com/dashboard",
        "redirect_uri": redirect_uri,
    }
    # Every placeholder of the dialog's text is provided.
    text = STRINGS["application_credentials"]["description"]
    assert set(re.findall(r"\{(\w+)\}", text)) == set(placeholders)


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_spotify_failure_logs_its_cause(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TLS failure on /me aborts as before, and the log says it was TLS (without the token)."""
    # The fake speaks plain HTTP: a TLS handshake with it fails as a broken TLS setup would.
    monkeypatch.setattr(
        "custom_components.spotify_scrobbler.config_flow.SPOTIFY_API_BASE",
        fake_spotify.api_url.replace("http://", "https://"),
    )
    result = await start_user_flow(hass, hass_client_no_auth)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "connection_error"
    # Ours only: on a loaded machine asyncio's debug mode warns of slow callbacks too.
    ours = "custom_components.spotify_scrobbler"
    [record] = [r for r in caplog.records if r.levelname == "WARNING" and r.name.startswith(ours)]
    message = record.getMessage()
    assert message.startswith("Could not identify the Spotify account: Spotify unreachable")
    assert "ssl" in message.lower()
    assert not any(token in message for token in fake_spotify.access_tokens)
    assert fake_spotify.refresh_token not in message


def test_strings_render_as_meant() -> None:
    """translations/en.json is strings.json; no example renders as an e-mail link, no URL."""
    assert json.loads((INTEGRATION / "translations" / "en.json").read_text()) == STRINGS

    def texts(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [t for value in node.values() for t in texts(value)]
        return [node] if isinstance(node, str) else []

    # Markdown turns user@host into a mailto: link unless it is code.
    outside_code = [re.sub(r"`[^`]*`", "", text) for text in texts(STRINGS)]
    assert [t for t in outside_code if re.search(r"\S@\S", t)] == []
    # hassfest refuses web addresses in strings: they travel as description placeholders.
    assert [t for t in texts(STRINGS) if re.search(r"https?://", t)] == []
