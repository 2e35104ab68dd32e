"""Reading export files: segments resume exactly, damaged files keep their readable part."""

import codecs
import json
import re
from pathlib import Path
from typing import Any

import pytest

from custom_components.spotify_scrobbler.engine import export_reader
from custom_components.spotify_scrobbler.engine.export_reader import (
    ExportFormatError,
    check_export_file,
    export_files,
    first_bad_file,
    read_segment,
)


def read_all(path: Path, per_segment: int, chunk_size: int) -> tuple[list[Any], int]:
    """Every entry, segment by segment from each checkpoint, as an import reads them."""
    entries: list[Any] = []
    offset, segments = 0, 0
    while True:
        segment = read_segment(str(path), offset, max_entries=per_segment, chunk_size=chunk_size)
        entries += segment.entries
        segments += 1
        assert segment.end_offset > offset
        offset = segment.end_offset
        if segment.finished:
            return entries, segments


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["plain", "utf-8-bom"])
def test_segments_resume_at_their_byte_offsets(tmp_path: Path, bom: bytes) -> None:
    """Multi-byte names, numbers cut at a buffer's end, tiny buffers: nothing lost or doubled."""
    entries = [
        {"ts": f"2024-01-01T00:00:{n:02d}Z", "name": "Sigur Rós ✓ 夜" * (n % 3), "ms": 10**n}
        for n in range(12)
    ]
    path = tmp_path / "Streaming_History_Audio_2024.json"
    path.write_bytes(bom + json.dumps(entries, indent=1, ensure_ascii=False).encode())
    for chunk_size in (3, 7, 64):
        for per_segment in (1, 5, 100):
            read, segments = read_all(path, per_segment, chunk_size)
            assert read == entries
            assert segments == len(entries) // per_segment + 1


def test_an_empty_array_is_a_finished_segment(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(codecs.BOM_UTF8 + b" [ \n ] ")
    segment = read_segment(str(path), 0)
    assert segment.entries == []
    assert segment.finished
    check_export_file(str(path))  # an export of a year without plays is still an export


@pytest.mark.parametrize(
    ("content", "readable"),
    [
        (b'[{"a": 1}, {"a": 2}, {"a": 3', [{"a": 1}, {"a": 2}]),  # cut inside an entry
        (b"[1, 2, 3", [1, 2, 3]),  # cut after a number: the number may be incomplete
        (b"[1, 2 3]", [1, 2]),  # a missing comma
        (b"[1, 2,", [1, 2]),  # cut after a comma
    ],
    ids=["inside-entry", "after-number", "missing-comma", "after-comma"],
)
def test_a_damaged_file_keeps_what_precedes_the_damage(
    tmp_path: Path, content: bytes, readable: list[Any]
) -> None:
    """The readable entries come first; reading on from their checkpoint names the error."""
    path = tmp_path / "cut.json"
    path.write_bytes(content)
    segment = read_segment(str(path), 0, chunk_size=4)
    assert segment.entries == readable
    assert not segment.finished
    with pytest.raises(ExportFormatError, match="byte"):
        read_segment(str(path), segment.end_offset, chunk_size=4)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"PK\x03\x04rest-of-a-zip", "zip archive"),
        (b'{"ts": 1}', "does not begin with '\\['"),
        (b"[", "invalid JSON"),
        (b"[nope]", "invalid JSON"),
        (b'["caf\xe9"]', "not UTF-8"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_with_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "Streaming_History_Audio_2024.json"
    path.write_bytes(content)
    with pytest.raises(ExportFormatError, match=reason):
        check_export_file(str(path))
    bad = first_bad_file([path])
    assert bad is not None
    assert bad[0] == path.name
    assert re.search(reason, bad[1])


def test_an_oversized_entry_is_refused_with_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken file with one endless "entry" stops at the bound, it is not read whole."""
    monkeypatch.setattr(export_reader, "MAX_ENTRY_CHARS", 100)
    path = tmp_path / "huge.json"
    path.write_text('[{"a": 1}, "' + "x" * 1000 + '"]', encoding="utf-8")
    segment = read_segment(str(path), 0, chunk_size=16)
    assert segment.entries == [{"a": 1}]
    with pytest.raises(ExportFormatError, match="too large"):
        read_segment(str(path), segment.end_offset, chunk_size=16)


def test_first_bad_file_names_an_unreadable_file(tmp_path: Path) -> None:
    """A file that cannot be opened is named with the system's reason, not raised."""
    good = tmp_path / "a.json"
    good.write_text("[]", encoding="utf-8")
    missing = tmp_path / "b.json"
    folder = tmp_path / "c.json"
    folder.mkdir()
    assert first_bad_file([good]) is None
    assert first_bad_file([good, missing]) == ("b.json", "No such file or directory")
    assert first_bad_file([folder]) == ("c.json", "Is a directory")


def test_export_files_are_found_by_name_in_the_whole_folder(tmp_path: Path) -> None:
    """Audio history files anywhere below the folder, in name order; nothing else."""
    (tmp_path / "2023").mkdir()
    (tmp_path / "2023" / "Streaming_History_Audio_2023_1.json").write_text("[]")
    (tmp_path / "Streaming_History_Audio_2022_0.json").write_text("[]")
    (tmp_path / "Streaming_History_Video_2022.json").write_text("[]")
    (tmp_path / "ReadMeFirst.pdf").write_bytes(b"%PDF")
    (tmp_path / "Streaming_History_Audio_folder.json").mkdir()  # a folder, not a file
    found = export_files(str(tmp_path))
    assert [p.name for p in found] == [
        "Streaming_History_Audio_2022_0.json",
        "Streaming_History_Audio_2023_1.json",
    ]
    one = tmp_path / "ReadMeFirst.pdf"
    assert export_files(str(one)) == [one]  # a file is taken as named, then checked
    assert export_files(str(tmp_path / "missing")) == []


def test_export_files_come_in_spotifys_numbering_order(tmp_path: Path) -> None:
    """By name, ``_10`` sorts before ``_9`` and ``2023-2024_9`` before ``2023_8``: the
    files are read in the order of their number, as Spotify wrote them, per folder."""
    names = [
        "Streaming_History_Audio_2023_8.json",
        "Streaming_History_Audio_2023-2024_9.json",
        "Streaming_History_Audio_2024_10.json",
    ]
    for name in names:
        (tmp_path / name).write_text("[]")
    assert [p.name for p in export_files(str(tmp_path))] == names
