"""The export's pieces without Home Assistant: ts, ms_played, the bounded cache, the files."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from custom_components.spotify_scrobbler.engine.export_reader import export_files, read_segment
from custom_components.spotify_scrobbler.engine.export_writer import (
    ExportFiles,
    ExportFolderError,
    file_name,
    prepare_folder,
    remove_partial_files,
)
from custom_components.spotify_scrobbler.engine.history_export import (
    EntryNames,
    ExportRange,
    entry_ts,
    export_entry,
    ms_played_of,
    track_names,
)
from custom_components.spotify_scrobbler.engine.known_metadata import BoundedMap
from custom_components.spotify_scrobbler.engine.payload import parse_time
from custom_components.spotify_scrobbler.engine.spoken_plays import spoken_document


def test_ts_keeps_the_instant_exactly() -> None:
    """Milliseconds only when there are some; another zone or a naive time is UTC."""
    moment = datetime(2026, 2, 25, 20, 15, 20, 497_000, tzinfo=UTC)
    assert entry_ts(moment) == "2026-02-25T20:15:20.497Z"
    assert entry_ts(moment, whole_seconds=True) == "2026-02-25T20:15:20Z"
    assert entry_ts(moment.replace(microsecond=0)) == "2026-02-25T20:15:20Z"
    assert entry_ts(moment.replace(microsecond=5_000)) == "2026-02-25T20:15:20.005Z"
    assert entry_ts(moment.astimezone(timezone(timedelta(hours=2)))) == entry_ts(moment)
    assert entry_ts(moment.replace(tzinfo=None)) == entry_ts(moment)
    assert parse_time(entry_ts(moment)) == moment  # what the import reads back


def test_ms_played_is_never_a_skip() -> None:
    """The import's field first, else the track's length; at least 30 s; always an int."""
    assert ms_played_of({"scrobbler_ms_played": 45_000, "durationMs": 200_000}) == 45_000
    assert ms_played_of({"durationMs": 200_000}) == 200_000
    assert ms_played_of({"durationMs": 200_000.0}) == 200_000
    assert ms_played_of({"durationMs": 20_000}) == 30_000
    assert ms_played_of({"durationMs": True}) == 30_000
    assert ms_played_of({"durationMs": None}) == 30_000
    assert ms_played_of({}) == 30_000


def test_names_come_from_documents_of_any_shape() -> None:
    """Missing or mistyped fields give None; a stub keeps the export's names."""
    assert track_names({}) == track_names({"artists": "x", "scrobbler_stub": "x"})
    stub = track_names({"name": "T", "artists": [], "scrobbler_stub": {"artist_name": "A"}})
    assert (stub.name, stub.artist_id, stub.stub_artist, stub.stub_album) == ("T", None, "A", None)
    entry = export_entry(
        "abc", datetime(2024, 1, 1, tzinfo=UTC), 30_000, EntryNames(), whole_seconds=False
    )
    assert entry["spotify_track_uri"] == "spotify:track:abc"
    assert entry["master_metadata_track_name"] is None


def test_bounded_map_forgets_the_least_recently_used() -> None:
    """Beyond its size the map forgets the keys used longest ago."""
    names: BoundedMap[str | None] = BoundedMap(2)
    names.put("a", "A")
    names.put("b", None)
    assert names.get("a") == "A"  # refreshes a
    names.put("c", "C")
    assert "b" not in names
    assert names.get("b") is None
    assert len(names) == 2


def test_range_query() -> None:
    """Open ends stay open; leaving blacklisted plays out filters on blacklistedBy."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert ExportRange().query("o") == {"owner": "o"}  # type: ignore[arg-type]
    query = ExportRange(start=start, include_blacklisted=False).query("o")  # type: ignore[arg-type]
    assert query == {
        "owner": "o",
        "played_at": {"$gte": start},
        "blacklistedBy": {"$exists": False},
    }


def entries(count: int, year: int = 2024) -> list[tuple[int, dict[str, object]]]:
    """(year, entry) pairs with a multi-byte name."""
    return [
        (year, {"ts": f"{year}-01-01T00:00:{n % 60:02d}Z", "name": "Sigur Rós"})
        for n in range(count)
    ]


def test_files_split_by_count_and_by_size(tmp_path: Path) -> None:
    """Spotify's names (years of the first and last entry); files the reader reads whole."""
    files = ExportFiles(str(tmp_path), per_file=3)
    files.add(entries(4, 2023))
    files.add(entries(3, 2024))
    assert files.finish() == [
        file_name(2023, 2023, 0),
        file_name(2023, 2024, 1),
        file_name(2024, 2024, 2),
    ]
    assert files.completed[1] == "Streaming_History_Audio_2023-2024_1.json"
    read = [e for path in export_files(str(tmp_path)) for e in read_segment(str(path), 0).entries]
    assert len(read) == 7
    assert (
        json.loads((tmp_path / files.completed[0]).read_text(encoding="utf-8"))[0]["name"]
        == "Sigur Rós"
    )

    by_size = ExportFiles(str(tmp_path / "size"), per_file=100, max_bytes=200)
    (tmp_path / "size").mkdir()
    by_size.add(entries(5))
    assert len(by_size.finish()) > 1


def test_an_aborted_file_leaves_no_trace(tmp_path: Path) -> None:
    """The unfinished file is deleted; a name taken meanwhile is never overwritten."""
    files = ExportFiles(str(tmp_path), per_file=10)
    files.add(entries(2))
    assert files.part_path.exists()
    files.abort()
    assert list(tmp_path.iterdir()) == []
    files.abort()  # twice is harmless

    (tmp_path / file_name(2024, 2024, 0)).write_text("theirs")
    files = ExportFiles(str(tmp_path), per_file=10)
    files.add(entries(1))
    with pytest.raises(FileExistsError):
        files.finish()
    files.abort()
    assert (tmp_path / file_name(2024, 2024, 0)).read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == [file_name(2024, 2024, 0)]


def test_folder_checks(tmp_path: Path) -> None:
    """Created when missing; a file, or a folder holding an export, is refused."""
    prepare_folder(str(tmp_path / "new" / "deeper"))
    assert (tmp_path / "new" / "deeper").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportFolderError) as raised:
        prepare_folder(str(tmp_path / "file"))
    assert raised.value.reason == "unusable"
    (tmp_path / "new" / "Streaming_History_Audio_2024_0.json").write_text("[]")
    with pytest.raises(ExportFolderError) as raised:
        prepare_folder(str(tmp_path / "new"))
    assert raised.value.reason == "not_empty"
    (tmp_path / "new" / ".Streaming_History_Audio_3.json.part").write_text("[")
    remove_partial_files(str(tmp_path / "new"))
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "Streaming_History_Audio_2024_0.json",
        "deeper",
    ]


def test_spoken_plays_without_a_uri_are_told_apart_by_their_names() -> None:
    """Two episodes of one second that carry names but no uri are two plays."""
    base = {"ts": "2024-03-01T08:00:00Z", "ms_played": 60_000}
    first = spoken_document({**base, "episode_name": "A", "episode_show_name": "Show"})
    second = spoken_document({**base, "episode_name": "B", "episode_show_name": "Show"})
    assert first is not None
    assert second is not None
    assert first["uri"] != second["uri"]
    with_uri = spoken_document({**base, "spotify_episode_uri": "spotify:episode:x"})
    assert with_uri is not None
    assert with_uri["uri"] == "spotify:episode:x"
