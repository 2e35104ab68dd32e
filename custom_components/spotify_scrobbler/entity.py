"""Base entity: one service device per Spotify account, data from the coordinator only."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import ScrobblerCoordinator


class ScrobblerEntity(CoordinatorEntity[ScrobblerCoordinator]):
    """An entity of one account's scrobbler."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: ScrobblerCoordinator, key: str) -> None:
        """Attach the entity to the account's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        account = entry.unique_id or entry.entry_id
        self._attr_translation_key = key
        self._attr_unique_id = f"{account}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, account)},
            name=entry.title,
            manufacturer="Spotify",
            model="Scrobbler",
            entry_type=DeviceEntryType.SERVICE,
            configuration_url="https://www.spotify.com/account/apps/",
        )
