"""The history export's progress sensor (reads the entry's export manager only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import SensorEntity
from homeassistant.const import PERCENTAGE, EntityCategory

from .entity import ScrobblerEntity

if TYPE_CHECKING:
    from .coordinator import ScrobblerCoordinator
    from .export_manager import HistoryExportManager


class ExportProgressSensor(ScrobblerEntity, SensorEntity):
    """Percentage of the selected plays exported; status and counts as attributes."""

    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_suggested_display_precision = 0

    def __init__(self, coordinator: ScrobblerCoordinator, manager: HistoryExportManager) -> None:
        """Show ``manager``'s progress."""
        super().__init__(coordinator, "export_progress")
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
        """Share of the selected plays handled (None before any export)."""
        return self._manager.percentage

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Status, selection, counts and files."""
        return self._manager.attributes()
