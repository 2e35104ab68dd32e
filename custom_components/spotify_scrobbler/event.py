"""Event entity "Scrobble": fires once per new, counted (not blacklisted) play."""

from __future__ import annotations

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import SpotifyScrobblerConfigEntry
from .coordinator import ScrobblerCoordinator
from .entity import ScrobblerEntity

PARALLEL_UPDATES = 0

EVENT_TYPE = "scrobbled"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SpotifyScrobblerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the account's event entity."""
    async_add_entities([ScrobbleEventEntity(entry.runtime_data.coordinator)])


class ScrobbleEventEntity(ScrobblerEntity, EventEntity):
    """Triggers on every new play of a cycle, oldest first."""

    _attr_event_types = [EVENT_TYPE]  # noqa: RUF012  # HA's declared attribute type

    def __init__(self, coordinator: ScrobblerCoordinator) -> None:
        """Start after the cycles already done (their plays are not new to us)."""
        super().__init__(coordinator, "scrobble")
        self._handled_cycle = coordinator.data.cycle

    @callback
    def _handle_coordinator_update(self) -> None:
        data = self.coordinator.data
        if data.cycle != self._handled_cycle:
            self._handled_cycle = data.cycle
            for details in data.new_plays:
                if details.play.blacklisted:
                    continue
                self._trigger_event(
                    EVENT_TYPE,
                    {
                        "track_id": details.play.track_id,
                        "track_name": details.track_name,
                        "artist_names": list(details.artist_names),
                        "album_name": details.album_name,
                        "played_at": details.play.played_at.isoformat(),
                        "duration_ms": details.play.duration_ms,
                    },
                )
                # Each trigger is its own state change, so automations see every play.
                self.async_write_ha_state()
        super()._handle_coordinator_update()
