"""Diagnostics: counters, last cycle and Spotify/MongoDB state; no tokens, no credentials."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import SHARED, SpotifyScrobblerConfigEntry
from .const import CONF_URI

# The whole token dict and the URI (it may carry a password) go; so do account ids.
TO_REDACT = {"token", CONF_URI, "unique_id", "title", "spotify_id", "owner"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry
) -> dict[str, Any]:
    """What a bug report needs."""
    coordinator = entry.runtime_data.coordinator
    shared = hass.data[SHARED]
    account = coordinator.account
    data = coordinator.data
    return {
        "entry": async_redact_data(
            {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            TO_REDACT,
        ),
        "account": {
            "last_timestamp": account.last_timestamp if account else None,
            "first_listened_at": (
                account.first_listened_at.isoformat()
                if account and account.first_listened_at
                else None
            ),
            "counters": dict(account.counters) if account else {},
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "last_exception": (
                repr(coordinator.last_exception) if coordinator.last_exception else None
            ),
            "status": data.status.value,
            "last_error": coordinator.last_error,
            "mongodb_down_since": (
                coordinator.mongodb_down_since.isoformat()
                if coordinator.mongodb_down_since
                else None
            ),
            "rate_limit_retry_at": data.retry_at.isoformat() if data.retry_at else None,
            "rate_limit_reason": data.rate_limit_reason,
            "pending_plays": len(data.pending),
            "cycles": data.cycle,
            "total_plays": data.total_plays,
            "plays_today": data.plays_today,
            "listened_ms_today": data.listened_ms_today,
            "last_cycle": asdict(data.last_cycle),
        },
        "spotify": {
            "requests_since_start": shared.gate.requests,
            "request_spacing_s": shared.gate.spacing,
            "rate_limit_pause_s": round(shared.gate.paused_for),
            "batch_endpoints_allowed": shared.batch_support.allowed,
        },
    }
