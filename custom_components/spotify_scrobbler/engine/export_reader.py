"""Reading Spotify's "Extended streaming history" files, a bounded segment at a time.

``read_segment`` parses up to a number of entries of one ``Streaming_History_Audio_*.json``
file from a byte offset, with a bounded buffer, so that an import resumes where it stopped
and a cut-off file keeps its readable part. Blocking: callers run it in an executor.

Hand-written on top of ``json.JSONDecoder.raw_decode`` rather than a streaming library: the
import checkpoints by byte offset after each segment, and the streaming parsers give no
offsets, so resuming would mean parsing the file again from its start.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

READ_CHUNK: Final = 256 * 1024  # bytes read at a time
MAX_ENTRY_CHARS: Final = 1024 * 1024  # one entry is ~600 bytes; more means a broken file
SEGMENT_ENTRIES: Final = 20_000  # entries per segment: bounds memory and sets checkpoints

_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


class ExportFormatError(Exception):
    """The file is not a JSON array of entries (or is cut off)."""


@dataclass(slots=True)
class Segment:
    """Entries parsed from one file, and where to continue."""

    entries: list[Any]
    end_offset: int  # byte offset just after the last entry (a checkpoint)
    finished: bool  # the array's closing bracket was reached


class _Reader:
    """A bounded text buffer over a binary file that knows the byte offset of its start."""

    def __init__(self, file: Any, offset: int, chunk_size: int) -> None:
        self._file = file
        self._chunk = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.offset = offset  # byte offset of buf[pos]
        self.eof = False

    def fill(self) -> bool:
        """Read one more chunk; False at end of file."""
        if self.eof:
            return False
        data = self._file.read(self._chunk)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as err:
            raise ExportFormatError(f"not UTF-8 near byte {self.offset}") from err
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        self.eof = not data
        if len(self.buf) > MAX_ENTRY_CHARS + self._chunk:
            raise ExportFormatError(f"an entry near byte {self.offset} is too large")
        return True

    def advance(self, end: int) -> None:
        self.offset += len(self.buf[self.pos : end].encode())
        self.pos = end

    def next_char(self) -> str | None:
        """Skip whitespace; the next character (not consumed), None at end of file."""
        while True:
            self.advance(_WHITESPACE.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return None

    def expect(self, chars: str) -> str:
        char = self.next_char()
        if char is None or char not in chars:
            raise ExportFormatError(f"expected one of {chars!r} at byte {self.offset}")
        self.advance(self.pos + 1)
        return char

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the JSON value at the current position, reading more as needed."""
        self.next_char()
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self.eof or not self.fill():
                    raise ExportFormatError(f"invalid JSON at byte {self.offset}") from err
                continue
            # A number cut at the buffer's end decodes too early: make sure it is complete.
            if end >= len(self.buf) and self.fill():
                continue
            self.advance(end)
            return obj


def read_segment(
    path: str, offset: int, max_entries: int | None = None, chunk_size: int = READ_CHUNK
) -> Segment:
    """Up to ``max_entries`` entries of the JSON array in ``path``, from ``offset``.

    ``offset`` is 0 (start of file) or a previous segment's ``end_offset``. Blocking: run it
    in an executor. Memory is bounded by the segment, never by the file.
    """
    limit = SEGMENT_ENTRIES if max_entries is None else max_entries
    decoder = json.JSONDecoder()
    entries: list[Any] = []
    at_start = offset == 0
    with open(path, "rb") as file:  # noqa: PTH123
        if at_start and file.read(3) == codecs.BOM_UTF8:
            offset = 3
        file.seek(offset)
        reader = _Reader(file, offset, chunk_size)
        if at_start:
            reader.expect("[")
            if reader.next_char() == "]":
                reader.advance(reader.pos + 1)
                return Segment(entries, reader.offset, finished=True)
            entries.append(reader.value(decoder))
        while len(entries) < limit:
            checkpoint = reader.offset
            try:
                if reader.expect(",]") == "]":
                    return Segment(entries, reader.offset, finished=True)
                entries.append(reader.value(decoder))
            except ExportFormatError:
                if entries:  # keep what was read; the next segment reports the error
                    return Segment(entries, checkpoint, finished=False)
                raise
        return Segment(entries, reader.offset, finished=False)


def check_export_file(path: str) -> None:
    """Raise ExportFormatError, with a short reason, unless ``path`` begins like an export.

    An export file is a UTF-8 JSON array whose first entry (if any) decodes. A file that
    only breaks further on passes: the import keeps its readable part and reports the
    error. Blocking: run it in an executor.
    """
    with open(path, "rb") as file:  # noqa: PTH123
        head = file.read(READ_CHUNK)
    start = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    if not start and len(head) < READ_CHUNK:
        raise ExportFormatError("the file is empty")
    if start.startswith(b"PK\x03\x04"):
        raise ExportFormatError("it is a zip archive, extract it first")
    if start and not start.startswith(b"["):
        raise ExportFormatError("it does not begin with '['")
    read_segment(path, 0, max_entries=1)


EXPORT_GLOB: Final = "Streaming_History_Audio_*.json"
_FILE_NUMBER: Final = re.compile(r"_(\d+)\.json$")


def export_files(path: str) -> list[Path]:
    """The export files a path names: itself, or the directory's (recursively), by name."""
    target = Path(path)
    if target.is_file():
        return [target]
    if target.is_dir():
        return sorted((p for p in target.rglob(EXPORT_GLOB) if p.is_file()), key=_file_order)
    return []


def _file_order(path: Path) -> tuple[str, int, str]:
    """Spotify's numbering, per folder (names do not sort in time order).

    By name, ``..._2023-2024_9.json`` comes before ``..._2023_8.json`` and ``_10`` before
    ``_9``.
    """
    match = _FILE_NUMBER.search(path.name)
    return str(path.parent), int(match.group(1)) if match else -1, path.name


def first_bad_file(files: list[Path]) -> tuple[str, str] | None:
    """(name, reason) of the first file that does not begin like an export file. Blocking."""
    for file in files:
        try:
            check_export_file(str(file))
        except ExportFormatError as err:
            return file.name, str(err)
        except OSError as err:
            return file.name, err.strerror or type(err).__name__
    return None
