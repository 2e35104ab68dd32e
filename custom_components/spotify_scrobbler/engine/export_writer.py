"""Writing Spotify's "Extended streaming history" files: the history export's output.

Blocking file I/O: callers run it in an executor. Entries are appended to the file being
written, ``.Streaming_History_Audio_<n>.json.part`` (a name no importer reads: not
``Streaming_History_Audio_*.json``); once complete it is flushed to disk and renamed to
Spotify's name, so a file with that name is always a whole JSON array.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from threading import Lock
from typing import Any, Final

from .export_reader import EXPORT_GLOB

FILE_ENTRIES: Final = 15_000  # entries per file (Spotify's own files hold 10-20 thousand)
# Your Spotify's upload takes files of up to 20 MiB; an entry is ~800 bytes.
FILE_BYTES: Final = 16 * 1024 * 1024
FILE_PREFIX: Final = "Streaming_History_Audio_"


def file_name(first_year: int, last_year: int, index: int) -> str:
    """Spotify's naming: Streaming_History_Audio_2019-2020_3.json (one year: _2021_4)."""
    years = str(first_year) if first_year == last_year else f"{first_year}-{last_year}"
    return f"{FILE_PREFIX}{years}_{index}.json"


class ExportFolderError(Exception):
    """The folder cannot take an export; ``reason`` is 'unusable' or 'not_empty'."""

    def __init__(self, reason: str, detail: str) -> None:
        """Why, and what the system said."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def prepare_folder(path: str) -> None:
    """Create the folder if needed; refuse one that is not writable or holds export files.

    Blocking. An existing export there would mix with this one (``import_history`` reads
    a whole folder), and it is never overwritten.
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.glob(EXPORT_GLOB)):
            raise ExportFolderError("not_empty", EXPORT_GLOB)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileExistsError as err:
        raise ExportFolderError("unusable", "it is not a folder") from err
    except OSError as err:
        raise ExportFolderError("unusable", err.strerror or type(err).__name__) from err


class ExportFiles:
    """Writes serialised entries into numbered files; a file gets its name once complete.

    An unfinished file is ``.Streaming_History_Audio_<n>.json.part`` (a name no importer
    reads); complete, it is renamed to Spotify's name. A lock keeps ``abort`` (a cancelled
    export) from closing a file that an executor thread is still writing.
    """

    def __init__(
        self, folder: str, per_file: int | None = None, max_bytes: int | None = None
    ) -> None:
        """Write into ``folder``, at most ``per_file`` entries and ~``max_bytes`` per file."""
        self.folder = Path(folder)
        self.per_file = FILE_ENTRIES if per_file is None else per_file
        self.max_bytes = FILE_BYTES if max_bytes is None else max_bytes
        self.completed: list[str] = []
        self._file: Any = None
        self._count = 0
        self._bytes = 0
        self._years = (0, 0)
        self._lock = Lock()

    @property
    def part_path(self) -> Path:
        """Where the file being written is."""
        return self.folder / f".{FILE_PREFIX}{len(self.completed)}.json.part"

    def add(self, entries: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Append (year, entry) pairs, starting a new file when one is full."""
        with self._lock:
            for year, entry in entries:
                text = json.dumps(entry, ensure_ascii=False, indent=2)
                # Pretty-printed like Spotify's files: each entry indented inside the array.
                data = ("  " + text.replace("\n", "\n  ")).encode()
                if self._file is None:
                    self._file = self.part_path.open("wb")
                    self._file.write(b"[\n")
                    self._count, self._bytes, self._years = 0, 0, (year, year)
                else:
                    self._file.write(b",\n")
                self._file.write(data)
                self._count += 1
                self._bytes += len(data) + 2
                self._years = (self._years[0], year)
                if self._count >= self.per_file or self._bytes >= self.max_bytes:
                    self._complete()

    def finish(self) -> list[str]:
        """Complete the last file; the names of all files written."""
        with self._lock:
            if self._file is not None:
                self._complete()
            return list(self.completed)

    def abort(self) -> None:
        """Close and delete the unfinished file (complete files stay)."""
        with self._lock, contextlib.suppress(OSError):
            if self._file is not None:
                file, self._file = self._file, None
                file.close()
            self.part_path.unlink(missing_ok=True)

    def _complete(self) -> None:
        file, part = self._file, self.part_path
        file.write(b"\n]\n")
        file.flush()
        os.fsync(file.fileno())
        file.close()
        self._file = None
        final = self.folder / file_name(*self._years, len(self.completed))
        if final.exists():  # never overwrite a file another program wrote meanwhile
            raise FileExistsError(f"{final.name} appeared in the folder during the export")
        part.rename(final)
        self.completed.append(final.name)


def remove_partial_files(path: str) -> None:
    """Delete unfinished files an export cut short by a crash left in ``path``. Blocking."""
    with contextlib.suppress(OSError):
        for part in Path(path).glob(f".{FILE_PREFIX}*.json.part"):
            part.unlink(missing_ok=True)
