"""The history import's and export's progress sensors (each reads its manager only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.components.sensor import SensorEntity
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import CALLBACK_TYPE

from .entity import ScrobblerEntity

if TYPE_CHECKING:
    from .coordinator import ScrobblerCoordinator


class ProgressSource(Protocol):
    """What a progress sensor reads: the import or the export manager."""

    @property
    def percentage(self) -> float | None:
        """Share done; None before the first run."""

    def attributes(self) -> dict[str, Any]:
        """Status and counts."""

    def async_add_listener(self, listener: CALLBACK_TYPE) -> Callable[[], None]:
        """Call ``listener`` on every change."""


class ProgressSensor(ScrobblerEntity, SensorEntity):
    """Percentage done (import: the export's bytes; export: the selected plays)."""

    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_suggested_display_precision = 0

    def __init__(
        self, coordinator: ScrobblerCoordinator, manager: ProgressSource, key: str
    ) -> None:
        """Show ``manager``'s progress as the entity ``key``."""
        super().__init__(coordinator, key)
        self._manager = manager

    async def async_added_to_hass(self) -> None:
        """Follow the manager's progress as well as the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(self._manager.async_add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Progress is known whether or not the last cycle worked."""
        return True

    @property
    def native_value(self) -> float | None:
        """Share done (None before the first run)."""
        return self._manager.percentage

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Status, counts and files."""
        return self._manager.attributes()
