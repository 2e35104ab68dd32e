"""The history import of one account in Home Assistant: action, progress, resume.

Progress (files, byte offset per file, counts) lives in HA's Store, saved after every
segment, so an import interrupted by an unload, a restart or a crash continues from its
last checkpoint when the entry is set up again. Re-running a segment is harmless: the
import is idempotent (its own plays are recognised, and the unique index). Enrichment never
runs beside an import: it is stopped when one starts and started again when it is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from pymongo.errors import PyMongoError

from .action_jobs import async_allowed_target, async_cancel_task
from .const import CONF_BLACKLISTED_ARTISTS, DOMAIN
from .engine.enrichment_writes import restore_staged
from .engine.export_entries import ImportCounts
from .engine.export_reader import (
    EXPORT_GLOB,
    ExportFormatError,
    export_files,
    first_bad_file,
    read_segment,
)
from .engine.history_import import PENDING_COLLECTION, HistoryImporter
from .engine.import_enrichment import MetadataEnricher
from .engine.models import DUPLICATE_WINDOW, to_unix_ms
from .engine.mongo_client import describe_error
from .engine.scrobbler import LOOKBACK
from .engine.spotify import RequestGate, SpotifyClient
from .enrichment_runner import EnrichmentRunner
from .import_notice import import_summary
from .statistics import async_mark_statistics_stale, async_refresh_statistics

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry
    from .coordinator import ScrobblerCoordinator

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
MONGO_ATTEMPTS: Final = 5  # per segment, before the import is marked failed
MONGO_RETRY_DELAY: Final = 30.0  # seconds between those attempts

STATE_RUNNING: Final = "running"
STATE_FINISHED: Final = "finished"
STATE_FAILED: Final = "failed"


class HistoryImportManager:
    """Runs, persists and reports the history import and the enrichment of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpotifyScrobblerConfigEntry,
        coordinator: ScrobblerCoordinator,
        client: SpotifyClient,
        gate: RequestGate,
    ) -> None:
        """Bind the manager to an entry; nothing runs before ``async_setup``."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.client = client
        self.gate = gate
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.import.{entry.entry_id}"
        )
        self.progress: dict[str, Any] | None = None
        self._import_task: asyncio.Task[None] | None = None
        self._starting = False  # async_start is between its first await and the task
        self._listeners: list[CALLBACK_TYPE] = []
        self._enrichment = EnrichmentRunner(
            hass,
            entry,
            coordinator,
            client,
            gate,
            import_busy=lambda: self._import_busy,
            on_progress=self._notify,
        )

    # ------------------------------------------------------------------ what entities read

    @property
    def running(self) -> bool:
        """Whether an import task is under way."""
        return self._import_task is not None and not self._import_task.done()

    @property
    def enricher(self) -> MetadataEnricher | None:
        """The enrichment of imported plays, once started."""
        return self._enrichment.enricher

    @property
    def percentage(self) -> float | None:
        """Share of the export's bytes processed; None before the first import."""
        if self.progress is None:
            return None
        files = self.progress["files"]
        total = sum(int(f["size"]) for f in files)
        if total == 0:
            return 100.0
        done = sum(int(f["size"] if f["done"] else min(f["offset"], f["size"])) for f in files)
        return round(100 * done / total, 1)

    def attributes(self) -> dict[str, Any]:
        """Counts and state for the sensor."""
        enricher = self.enricher
        enrichment = {
            "tracks_to_enrich": enricher.remaining if enricher else None,
            "enrichment_requests": enricher.requests if enricher else 0,
        }
        if self.progress is None:
            return {"status": "idle", **enrichment}
        progress = self.progress
        counts = ImportCounts.from_dict(progress["counts"])
        return {
            "status": progress["state"],
            "path": progress["path"],
            "files": len(progress["files"]),
            "files_done": sum(1 for f in progress["files"] if f["done"]),
            **counts.as_dict(),
            "skipped_total": sum(counts.skipped.values()),
            "started_at": progress["started_at"],
            "finished_at": progress.get("finished_at"),
            "error": progress.get("error"),
            **enrichment,
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
        """Continue an unfinished import and any pending enrichment."""
        self.entry.async_on_unload(
            self.coordinator.async_add_listener(self._enrichment.after_cycle)
        )
        stored = await self._store.async_load()
        if isinstance(stored, dict) and isinstance(stored.get("files"), list):
            self.progress = stored
            if stored.get("state") == STATE_RUNNING:
                _LOGGER.info("%s: resuming the history import", self.entry.title)
                self._start_import()
                return
        self._enrichment.start()

    async def async_stop(self) -> None:
        """Cancel the tasks (before the MongoDB client closes); progress stays saved."""
        for task in (self._import_task, self._enrichment.task):
            await async_cancel_task(task)
        self._import_task = self._enrichment.task = None

    async def async_start(self, path: str) -> None:
        """Validate ``path`` and start importing it in the background (the action)."""
        # Checked and claimed before the first await: two calls must not both start.
        if self.running or self._starting:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="import_running",
                translation_placeholders={"account": self.entry.title},
            )
        self._starting = True
        try:
            await self._async_start(path)
        finally:
            self._starting = False

    async def _async_start(self, path: str) -> None:
        target = await async_allowed_target(self.hass, path, "import_path_not_allowed")
        files = await self.hass.async_add_executor_job(export_files, target)
        if not files:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="import_no_files",
                translation_placeholders={"path": path, "pattern": EXPORT_GLOB},
            )
        if bad := await self.hass.async_add_executor_job(first_bad_file, files):
            name, error = bad
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="import_bad_file",
                translation_placeholders={"path": name, "error": error},
            )
        previous = self.progress
        if not (
            previous is not None
            and previous["path"] == target
            and previous["state"] != STATE_FINISHED
        ):
            sizes = await self.hass.async_add_executor_job(
                lambda: [(str(f), f.stat().st_size) for f in files]
            )
            self.progress = {
                "path": target,
                "state": STATE_RUNNING,
                "started_at": dt_util.utcnow().isoformat(),
                "finished_at": None,
                "error": None,
                "files": [
                    {"path": name, "size": size, "offset": 0, "done": False, "error": None}
                    for name, size in sizes
                ],
                "counts": ImportCounts().as_dict(),
            }
            if previous is not None and previous["state"] != STATE_FINISHED:
                # A failed import of another path: the plays it stored still need these.
                for key in ("oldest_imported", "after_insert"):
                    if previous.get(key) is not None:
                        self.progress[key] = previous[key]
        else:  # an interrupted or failed import of the same path continues where it stopped
            self.progress = {**previous, "state": STATE_RUNNING, "error": None}
        persistent_notification.async_dismiss(self.hass, self._notification_id)
        await self._store.async_save(self.progress)
        # Enrichment replaces plays without ids; it must not run beside an import that
        # inserts such plays. It starts again once the import is done.
        await async_cancel_task(self._enrichment.task)
        self._start_import()

    # ------------------------------------------------------------------ import

    @property
    def _notification_id(self) -> str:
        return f"{DOMAIN}_import_{self.entry.entry_id}"

    def _blacklist(self) -> list[str]:
        return list(self.entry.options.get(CONF_BLACKLISTED_ARTISTS, []))

    def _start_import(self) -> None:
        self._import_task = self.entry.async_create_background_task(
            self.hass, self._run_import(), f"{DOMAIN} history import {self.entry.title}"
        )
        self._notify()

    async def _run_import(self) -> None:
        progress = self.progress
        assert progress is not None  # noqa: S101
        counts = ImportCounts.from_dict(progress["counts"])
        try:
            importer = await self._importer()
            # Plays inserted before a failure (or an unload) whose _after_insert did not
            # complete: the segment's re-run finds them stored and inserts nothing.
            await self._complete_after_insert(progress)
            for file in progress["files"]:
                while not file["done"]:
                    try:
                        segment = await self.hass.async_add_executor_job(
                            read_segment, file["path"], file["offset"]
                        )
                    except (ExportFormatError, OSError) as err:
                        _LOGGER.warning(
                            "%s: cannot read %s: %s", self.entry.title, file["path"], err
                        )
                        file["done"], file["error"] = True, str(err)
                        break
                    # The live loop's cache, and the outbox file's, must not outlive the insert.
                    await self.coordinator.async_forget_window()
                    result = await self._retrying(partial(importer.import_entries, segment.entries))
                    if result.span is not None:
                        # The whole segment, not only the acknowledged inserts: plays a lost
                        # reply or a crash hid are duplicates by now, yet new to the live loop.
                        self._note_inserted(progress, *result.span)
                        # Saved with the file offset NOT advanced yet: a crash from here on
                        # re-runs the segment, and the next run completes _after_insert.
                        await self._store.async_save(progress)
                        await self._complete_after_insert(progress)
                    # The checkpoint: only once everything the segment needs is done.
                    counts.add(result.counts)
                    file["offset"], file["done"] = segment.end_offset, segment.finished
                    progress["counts"] = counts.as_dict()
                    await self._store.async_save(progress)
                    self._notify()
        except PyMongoError as err:
            progress["state"], progress["error"] = STATE_FAILED, describe_error(err)
            await self._mark_statistics_stale(progress)
            await self._finish(counts)
            return
        # Durable before "finished": a restart before the rebuild below still rebuilds.
        oldest = await self._mark_statistics_stale(progress)
        progress["state"] = STATE_FINISHED
        await self._finish(counts)
        if oldest is not None:
            # Before the totals: their cycle would otherwise start a second rebuild.
            await async_refresh_statistics(self.hass, self.entry, oldest)
        await self._refresh_totals()
        self._enrichment.start()

    async def _mark_statistics_stale(self, progress: dict[str, Any]) -> datetime | None:
        """Hourly statistics need a rebuild from the oldest imported play; returns it."""
        oldest = progress.get("oldest_imported")
        if not oldest:
            return None
        since = datetime.fromisoformat(oldest)
        await async_mark_statistics_stale(self.hass, self.entry, since)
        return since

    async def _importer(self) -> HistoryImporter:
        account = self.coordinator.account
        assert account is not None  # a set-up entry has its account  # noqa: S101
        importer = HistoryImporter(
            self.coordinator.store,
            account.owner,
            self._blacklist(),
            run_blocking=self.hass.async_add_executor_job,
        )
        await self._retrying(importer.ensure_indexes)
        # A flush cut short (the enrichment is cancelled when an import starts) put its
        # plays aside: back first, or they would look missing and be imported again.
        await self._retrying(partial(restore_staged, self.coordinator.store, account.owner))
        await self._retrying(partial(importer.prepare, dt_util.utcnow()))
        return importer

    async def _retrying[T](self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt()`` again after MongoDB failures; the last failure propagates."""
        for number in range(1, MONGO_ATTEMPTS + 1):
            try:
                result = await attempt()
            except PyMongoError as err:
                if number == MONGO_ATTEMPTS:
                    raise
                _LOGGER.warning(
                    "%s: history import: MongoDB failed (%s), retrying in %.0f s",
                    self.entry.title,
                    err,
                    MONGO_RETRY_DELAY,
                )
                await asyncio.sleep(MONGO_RETRY_DELAY)
            else:
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _note_inserted(progress: dict[str, Any], oldest: datetime, newest: datetime) -> None:
        """Record a segment's inserted range: for the statistics and for ``_after_insert``."""
        first = progress.get("oldest_imported")
        if first is None or oldest.isoformat() < first:
            progress["oldest_imported"] = oldest.isoformat()
        # The previous segment's range is complete by now: _complete_after_insert ran (and
        # cleared it) before this segment, or failed the import before it started.
        progress["after_insert"] = [oldest.isoformat(), newest.isoformat()]

    async def _complete_after_insert(self, progress: dict[str, Any]) -> None:
        """Run the recorded ``_after_insert`` (idempotent), then forget it."""
        pending = progress.get("after_insert")
        if not (isinstance(pending, list) and len(pending) == 2):
            return
        oldest, newest = (datetime.fromisoformat(moment) for moment in pending)
        await self._retrying(partial(self._after_insert, oldest, newest))
        progress["after_insert"] = None

    async def _after_insert(self, oldest: datetime, newest: datetime) -> None:
        """Keep the live loop's duplicate check right when imported plays reach its window.

        The live loop only looks for stored plays up to ``lastTimestamp`` and caches the
        window's stored plays; plays inserted there behind its back must be seen by it.
        The cursor itself stays: older plays no cycle has read yet are still to be fetched.
        """
        scrobbler = self.coordinator.scrobbler
        account = self.coordinator.account
        store = self.coordinator.store
        assert account is not None  # a set-up entry has its account  # noqa: S101
        await store.users.update_one({"_id": account.owner}, {"$min": {"firstListenedAt": oldest}})
        if account.first_listened_at is None or oldest < account.first_listened_at:
            account.first_listened_at = oldest
        window_start = to_unix_ms(newest + DUPLICATE_WINDOW + LOOKBACK)
        if scrobbler is None or window_start < account.last_timestamp:
            return
        await store.users.update_one(
            {"_id": account.owner}, {"$max": {"scrobbler.importedUntil": to_unix_ms(newest)}}
        )
        account.imported_until = max(account.imported_until, to_unix_ms(newest))
        scrobbler.recent.forget()

    async def _refresh_totals(self) -> None:
        """Have the totals re-read now (the coordinator otherwise re-counts once a day)."""
        await self.coordinator.async_recount()

    async def _finish(self, counts: ImportCounts) -> None:
        progress = self.progress
        assert progress is not None  # noqa: S101
        progress["finished_at"] = dt_util.utcnow().isoformat()
        progress["counts"] = counts.as_dict()
        await self._store.async_save(progress)
        failed = progress["state"] == STATE_FAILED
        persistent_notification.async_create(
            self.hass,
            import_summary(
                progress, counts, failed=failed, to_enrich=not failed and await self._to_enrich()
            ),
            title=f"Spotify history import: {self.entry.title}",
            notification_id=self._notification_id,
        )
        self._notify()

    async def _to_enrich(self) -> bool:
        """Whether imported tracks wait for their album and artist ids."""
        account = self.coordinator.account
        assert account is not None  # a set-up entry has its account  # noqa: S101
        pending = self.coordinator.store.db[PENDING_COLLECTION]
        try:
            return bool(await pending.count_documents({"owner": account.owner}, limit=1))
        except PyMongoError:
            return False

    # ------------------------------------------------------------------ enrichment

    @property
    def _import_busy(self) -> bool:
        """An import is starting, or running and not past its last write."""
        progress = self.progress
        return self._starting or (
            self.running and progress is not None and progress["state"] == STATE_RUNNING
        )
