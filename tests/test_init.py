"""The integration loads in Home Assistant."""

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_config_flows, async_get_integration
from homeassistant.setup import async_setup_component

from custom_components.spotify_scrobbler.const import DOMAIN


async def test_component_sets_up(hass: HomeAssistant) -> None:
    """HA finds the custom integration and its setup succeeds."""
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.is_built_in is False
    assert integration.dependencies == ["application_credentials"]

    assert await async_setup_component(hass, DOMAIN, {})
    assert DOMAIN in hass.config.components


async def test_offered_in_add_integration_list(hass: HomeAssistant) -> None:
    """The integration has a config flow, so the UI offers it under 'Add integration'."""
    assert DOMAIN in await async_get_config_flows(hass)
