"""The history export of one account in Home Assistant: action, background task, progress.

The export itself is engine/history_export.py (HA-free). Here: the action's checks, the
task, the progress the sensor shows and a persistent notification at the end. The last
export's outcome is kept in HA's Store, so the sensor still tells it after a restart; an
export cut short by a restart is not resumed (its complete files stay, the unfinished one
is deleted) and shows as interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from pymongo.errors import PyMongoError

from .action_jobs import async_allowed_target, async_cancel_task
from .const import DOMAIN
from .engine.export_writer import (
    ExportFiles,
    ExportFolderError,
    prepare_folder,
    remove_partial_files,
)
from .engine.history_export import ExportCounts, ExportRange, HistoryExporter
from .engine.mongo_client import describe_error

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry
    from .coordinator import ScrobblerCoordinator

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
MONGO_RETRY_DELAY: Final = 30.0  # seconds between attempts after a MongoDB failure

STATE_RUNNING: Final = "running"
STATE_FINISHED: Final = "finished"
STATE_FAILED: Final = "failed"
STATE_INTERRUPTED: Final = "interrupted"


@dataclass(slots=True, frozen=True)
class ExportRequest:
    """What the action asked for (times in UTC)."""

    path: str
    start: datetime | None = None
    end: datetime | None = None
    include_blacklisted: bool = True
    whole_seconds: bool = False


class HistoryExportManager:
    """Runs and reports the history export of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpotifyScrobblerConfigEntry,
        coordinator: ScrobblerCoordinator,
    ) -> None:
        """Bind the manager to an entry; nothing runs before ``async_start``."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.export.{entry.entry_id}"
        )
        self.progress: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = False  # async_start is between its first await and the task
        self._listeners: list[CALLBACK_TYPE] = []

    # ------------------------------------------------------------------ what the sensor reads

    @property
    def running(self) -> bool:
        """Whether an export task is under way."""
        return self._task is not None and not self._task.done()

    @property
    def percentage(self) -> float | None:
        """Share of the selected plays handled; None before the first export."""
        progress = self.progress
        if progress is None:
            return None
        total = int(progress["total"] or 0)
        if progress["state"] == STATE_FINISHED or total == 0:
            return 100.0 if progress["state"] == STATE_FINISHED else 0.0
        done = int(progress["exported"]) + int(progress["skipped"])
        return min(100.0, round(100 * done / total, 1))

    def attributes(self) -> dict[str, Any]:
        """Status, selection and counts for the sensor."""
        progress = self.progress
        if progress is None:
            return {"status": "idle"}
        return {
            "status": progress["state"],
            "path": progress["path"],
            "start": progress["start"],
            "end": progress["end"],
            "include_blacklisted": progress["include_blacklisted"],
            "whole_seconds": progress["whole_seconds"],
            "plays": progress["total"],
            "exported": progress["exported"],
            "skipped": progress["skipped"],
            "spoken": progress.get("spoken", 0),
            "files": len(progress["files"]),
            "started_at": progress["started_at"],
            "finished_at": progress["finished_at"],
            "error": progress["error"],
        }

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> Callable[[], None]:
        """Call ``listener`` whenever progress changes; returns the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ lifecycle

    async def async_setup(self) -> None:
        """Read the last export's outcome; one cut short by a crash is marked interrupted."""
        stored = await self._store.async_load()
        if not (isinstance(stored, dict) and isinstance(stored.get("files"), list)):
            return
        self.progress = stored
        if stored.get("state") == STATE_RUNNING:
            _LOGGER.warning(
                "%s: the history export into %s was interrupted; run it again into an empty folder",
                self.entry.title,
                stored["path"],
            )
            await self.hass.async_add_executor_job(remove_partial_files, stored["path"])
            stored["state"], stored["finished_at"] = STATE_INTERRUPTED, dt_util.utcnow().isoformat()
            await self._store.async_save(stored)
        self._notify()  # the sensor was added before the outcome was read

    async def async_stop(self) -> None:
        """Cancel a running export (before the MongoDB client closes)."""
        task, self._task = self._task, None
        await async_cancel_task(task)

    async def async_start(self, request: ExportRequest) -> None:
        """Check the folder and start the export in the background (the action)."""
        # Checked and claimed before the first await: two calls must not both start.
        if self.running or self._starting:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="export_running",
                translation_placeholders={"account": self.entry.title},
            )
        self._starting = True
        try:
            await self._async_start(request)
        finally:
            self._starting = False

    async def _async_start(self, request: ExportRequest) -> None:
        path = request.path
        target = await async_allowed_target(self.hass, path, "export_path_not_allowed")
        try:
            await self.hass.async_add_executor_job(prepare_folder, target)
        except ExportFolderError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=f"export_folder_{err.reason}",
                translation_placeholders={"path": path, "error": err.detail},
            ) from err
        self.progress = {
            "state": STATE_RUNNING,
            "path": target,
            "start": request.start.isoformat() if request.start else None,
            "end": request.end.isoformat() if request.end else None,
            "include_blacklisted": request.include_blacklisted,
            "whole_seconds": request.whole_seconds,
            "total": None,
            "exported": 0,
            "skipped": 0,
            "spoken": 0,
            "files": [],
            "started_at": dt_util.utcnow().isoformat(),
            "finished_at": None,
            "error": None,
        }
        persistent_notification.async_dismiss(self.hass, self._notification_id)
        await self._store.async_save(self.progress)
        self._task = self.entry.async_create_background_task(
            self.hass, self._run(request, target), f"{DOMAIN} history export {self.entry.title}"
        )
        self._notify()

    # ------------------------------------------------------------------ export

    @property
    def _notification_id(self) -> str:
        return f"{DOMAIN}_export_{self.entry.entry_id}"

    async def _run(self, request: ExportRequest, target: str) -> None:
        progress = self.progress
        account = self.coordinator.account
        assert progress is not None  # noqa: S101
        assert account is not None  # a set-up entry has its account  # noqa: S101
        exporter = HistoryExporter(
            self.coordinator.store,
            account.owner,
            ExportFiles(target),
            ExportRange(request.start, request.end, request.include_blacklisted),
            whole_seconds=request.whole_seconds,
            run_blocking=self.hass.async_add_executor_job,
            on_progress=self._on_progress,
            retry_delay=MONGO_RETRY_DELAY,
        )
        try:
            counts = await exporter.run()
        except asyncio.CancelledError:
            # An unload or a stop: what is complete stays, the unfinished file is gone.
            self._record(progress, exporter.counts, STATE_INTERRUPTED)
            await self._store.async_save(progress)
            raise
        except (PyMongoError, OSError) as err:
            error = describe_error(err) if isinstance(err, PyMongoError) else str(err)
            _LOGGER.warning("%s: the history export failed: %s", self.entry.title, error)
            self._record(progress, exporter.counts, STATE_FAILED, error)
        except Exception as err:
            # A document MongoDB holds but cannot hand over (e.g. a date out of range):
            # the export ends as failed, never "running" for good.
            _LOGGER.exception("%s: the history export failed", self.entry.title)
            self._record(progress, exporter.counts, STATE_FAILED, repr(err))
        else:
            self._record(progress, counts, STATE_FINISHED)
        await self._store.async_save(progress)
        persistent_notification.async_create(
            self.hass,
            export_summary(progress),
            title=f"Spotify history export: {self.entry.title}",
            notification_id=self._notification_id,
        )
        self._notify()

    async def _on_progress(self, counts: ExportCounts) -> None:
        progress = self.progress
        assert progress is not None  # noqa: S101
        progress.update(
            total=counts.total,
            exported=counts.exported,
            skipped=counts.skipped,
            spoken=counts.spoken,
            files=list(counts.files),
        )
        self._notify()

    @staticmethod
    def _record(
        progress: dict[str, Any], counts: ExportCounts, state: str, error: str | None = None
    ) -> None:
        progress.update(
            state=state,
            error=error,
            total=counts.total,
            exported=counts.exported,
            skipped=counts.skipped,
            spoken=counts.spoken,
            files=list(counts.files),
            finished_at=dt_util.utcnow().isoformat(),
        )


def export_summary(progress: dict[str, Any]) -> str:
    """Markdown: what was written where, and what went wrong."""
    files, folder = progress["files"], progress["path"]
    if files:
        lines = [
            (
                f"**{progress['exported']}** plays exported to {len(files)} file(s) in "
                f"`{folder}`: {', '.join(files)}."
            )
        ]
    else:
        lines = [f"No file was written in `{folder}`: no play was selected."]
    if progress.get("spoken"):
        lines.append(
            f"Of them, {progress['spoken']} are podcast episodes and audiobook chapters that a "
            "history import kept (never counted as music)."
        )
    if progress["skipped"]:
        lines.append(
            f"Skipped: {progress['skipped']} plays without a usable Spotify track id or time."
        )
    if progress["state"] == STATE_FAILED:
        lines[0] = (
            f"The export stopped after {progress['exported']} plays: {progress['error']}. "
            f"The complete files stay in `{folder}` ({', '.join(files) or 'none'}); the "
            "unfinished one was deleted. Run the action again into an empty folder."
        )
    else:
        lines.append(
            "The files are Spotify's Extended streaming history format: Your Spotify, "
            "ListenBrainz and spotify_scrobbler.import_history read them (see the README)."
        )
    return "\n\n".join(lines)
