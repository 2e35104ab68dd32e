"""Sensors: last track, totals, today's plays and time, scrobbler status, waiting plays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import SpotifyScrobblerConfigEntry
from .coordinator import ScrobblerCoordinator
from .engine.models import ScrobblerData, ScrobblerStatus
from .entity import ScrobblerEntity
from .progress_sensor import ProgressSensor

PARALLEL_UPDATES = 0  # entities only read coordinator data


@dataclass(frozen=True, kw_only=True)
class ScrobblerSensorDescription(SensorEntityDescription):
    """How a sensor reads its value from the coordinator data."""

    value: Callable[[ScrobblerData], Any]
    attributes: Callable[[ScrobblerData], dict[str, Any] | None] = lambda _: None


# Counts include plays waiting in the outbox: they were played, only not written yet.
SENSORS = (
    ScrobblerSensorDescription(
        key="total_plays",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value=lambda data: data.shown_total_plays,
    ),
    ScrobblerSensorDescription(
        key="plays_today",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value=lambda data: data.shown_plays_today,
    ),
    ScrobblerSensorDescription(
        key="listening_time_today",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value=lambda data: round(data.shown_listened_ms_today / 60000, 2),
    ),
    ScrobblerSensorDescription(
        key="status",
        device_class=SensorDeviceClass.ENUM,
        entity_category=EntityCategory.DIAGNOSTIC,
        options=[status.value for status in ScrobblerStatus],
        value=lambda data: data.status.value,
        attributes=lambda data: {
            "retry_at": data.retry_at.isoformat() if data.retry_at else None,
            "reason": data.rate_limit_reason,
        },
    ),
    ScrobblerSensorDescription(
        key="pending_plays",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda data: len(data.pending),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SpotifyScrobblerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the account's sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        [LastScrobbledSensor(coordinator)]
        + [ScrobblerCountSensor(coordinator, description) for description in SENSORS]
        + [ProgressSensor(coordinator, entry.runtime_data.importer, "import_progress")]
        + [ProgressSensor(coordinator, entry.runtime_data.exporter, "export_progress")]
    )


class ScrobblerCountSensor(ScrobblerEntity, SensorEntity):
    """A number kept current by the coordinator."""

    entity_description: ScrobblerSensorDescription

    def __init__(
        self, coordinator: ScrobblerCoordinator, description: ScrobblerSensorDescription
    ) -> None:
        """Bind the description."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> Any:
        """The value from the coordinator data."""
        return self.entity_description.value(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Extra details some sensors have (e.g. when a rate limit ends)."""
        return self.entity_description.attributes(self.coordinator.data)


class LastScrobbledSensor(ScrobblerEntity, SensorEntity):
    """The newest counted play (stored or waiting): track name, details as attributes."""

    def __init__(self, coordinator: ScrobblerCoordinator) -> None:
        """Create the sensor."""
        super().__init__(coordinator, "last_scrobbled")

    @property
    def native_value(self) -> str | None:
        """The track name."""
        last = self.coordinator.data.shown_last_play
        return last.track_name if last else None

    @property
    def entity_picture(self) -> str | None:
        """The album cover."""
        last = self.coordinator.data.shown_last_play
        return last.image_url if last else None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Who, from which album, when and how long."""
        last = self.coordinator.data.shown_last_play
        if last is None:
            return None
        play = last.play
        return {
            "artists": list(last.artist_names),
            "album": last.album_name,
            "played_at": play.played_at.isoformat(),
            "duration_ms": play.duration_ms,
            "track_id": play.track_id,
            "album_id": play.album_id,
            "artist_ids": list(play.artist_ids),
            "spotify_url": last.spotify_url,
            "stored": last is self.coordinator.data.last_play,
        }
