"""No token, refresh token, client secret or MongoDB password in logs, diagnostics or errors."""

import logging
from collections.abc import Awaitable, Callable

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.spotify_scrobbler.config_flow import validate_mongodb
from custom_components.spotify_scrobbler.engine import mongo_client

from .spotify_fake import Catalog, FakeSpotify
from .test_scrobbling import play_recently, tick

SetupEntry = Callable[..., Awaitable[MockConfigEntry]]
PASSWORD = "s3cr3t-pw-do-not-log"


async def test_secrets_stay_out_of_logs_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    setup_entry: SetupEntry,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scrobble, refresh the token, fail, reauth, validate a bad URI: then scan everything."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 300)
    caplog.set_level(logging.DEBUG)
    play_recently(fake_spotify, catalog, [(0, 10.0), (1, 5.0)])
    fake_spotify.expire_access_tokens()
    entry = await setup_entry(expires_in=-60)  # forces a token refresh
    secrets = {
        fake_spotify.access_token,
        fake_spotify.refresh_token,
        entry.data["token"]["access_token"],  # the refreshed one
        "client-secret",
        PASSWORD,
    }

    error = await validate_mongodb(hass, f"mongodb://scrobbler:{PASSWORD}@127.0.0.1:9/", "db")
    assert error == "cannot_connect"
    fake_spotify.inject("/v1/me/player/recently-played", status=500, times=10)
    await tick(hass)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    fake_spotify.expire_access_tokens()
    fake_spotify.token_revoked = True
    await tick(hass)

    issues = [str(issue.translation_placeholders) for issue in ir.async_get(hass).issues.values()]
    exception = str(entry.runtime_data.coordinator.last_exception)
    haystacks = {
        "logs": caplog.text,
        "diagnostics": str(diagnostics),
        "issues": " ".join(issues),
        "exception": exception,
    }
    assert "Refreshing token" in caplog.text or fake_spotify.counts["/api/token"] >= 1
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
