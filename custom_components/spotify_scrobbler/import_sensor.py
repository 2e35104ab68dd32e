"""The history import's progress sensor (reads the entry's import manager only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import SensorEntity
from homeassistant.const import PERCENTAGE, EntityCategory

from .entity import ScrobblerEntity

if TYPE_CHECKING:
    from .coordinator import ScrobblerCoordinator
    from .import_manager import HistoryImportManager


class ImportProgressSensor(ScrobblerEntity, SensorEntity):
    """Percentage of the export processed; counts and status as attributes."""

    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_suggested_display_precision = 0

    def __init__(self, coordinator: ScrobblerCoordinator, manager: HistoryImportManager) -> None:
        """Show ``manager``'s progress."""
        super().__init__(coordinator, "import_progress")
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
        """Share of the export's bytes processed (None before any import)."""
        return self._manager.percentage

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Status, counts, files and enrichment."""
        return self._manager.attributes()
