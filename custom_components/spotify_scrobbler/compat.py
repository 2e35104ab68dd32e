"""Imports that differ between the Home Assistant versions we support."""

try:  # HA >= 2026.9 validates schemas with probatio (voluptuous is an alias of it there)
    import probatio as vol
except ImportError:  # pragma: no cover - exercised on the minimum HA pin only
    import voluptuous as vol  # type: ignore[no-redef]

__all__ = ["vol"]
