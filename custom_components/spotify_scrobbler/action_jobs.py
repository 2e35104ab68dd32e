"""What the import and export actions share: the folders HA allows, stopping their task."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)


async def async_allowed_target(hass: HomeAssistant, path: str, translation_key: str) -> str:
    """``path`` made absolute (relative: in the configuration folder), if HA allows it.

    Raises the translated ``translation_key`` error naming what this installation allows:
    /media on HA OS and Container, <config>/media on Core, plus allowlist_external_dirs.
    Checked in the executor (it resolves the path on disk).
    """
    target = path if Path(path).is_absolute() else hass.config.path(path)
    if not await hass.async_add_executor_job(hass.config.is_allowed_path, target):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=translation_key,
            translation_placeholders={
                "path": path,
                "allowed": ", ".join(sorted(hass.config.allowlist_external_dirs)) or "-",
            },
        )
    return target


async def async_cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait for it; a cancel of the caller still propagates."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if (current := asyncio.current_task()) and current.cancelling():
            raise
    except Exception:  # noqa: BLE001 -- stopping; the task logged already
        _LOGGER.debug("background task ended with an error while stopping")
