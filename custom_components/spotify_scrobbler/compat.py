"""Imports that differ between the Home Assistant versions we support."""

try:  # HA >= 2026.9 validates schemas with probatio (voluptuous is an alias of it there)
    import probatio as vol
except ImportError:  # pragma: no cover - exercised on the minimum HA pin only
    import voluptuous as vol  # type: ignore[no-redef]

try:  # HA >= 2026.9 defines it in the http server module (re-exported without __all__)
    from homeassistant.components.http.server import StaticPathConfig
except ImportError:  # pragma: no cover - exercised on the minimum HA pin only
    from homeassistant.components.http import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        StaticPathConfig,
    )

__all__ = ["StaticPathConfig", "vol"]
