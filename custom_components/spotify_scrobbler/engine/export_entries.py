"""What an export entry is: a music play to import, or the reason it is skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .import_matching import MIN_MS_PLAYED, ExportPlay
from .payload import SPOTIFY_ID, parse_time
from .spoken_plays import Document, spoken_document, spoken_kind

TRACK_URI_PREFIX: Final = "spotify:track:"
# Why an entry was not imported, in the order the checks run.
SKIP_REASONS: Final = ("malformed", "podcast", "audiobook", "no_track_id", "too_short")


def classify(entry: Any) -> ExportPlay | str:  # noqa: PLR0911 -- one return per reason
    """The play of an export entry, or the reason it is skipped (one of SKIP_REASONS)."""
    if not isinstance(entry, dict):
        return "malformed"
    played_at = parse_time(entry.get("ts"))
    ms_played = entry.get("ms_played")
    if played_at is None or not isinstance(ms_played, int) or isinstance(ms_played, bool):
        return "malformed"
    if ms_played < 0:
        return "malformed"
    if (kind := spoken_kind(entry)) is not None:
        return kind
    uri = entry.get("spotify_track_uri")
    if not isinstance(uri, str) or not uri.startswith(TRACK_URI_PREFIX):
        return "no_track_id"  # local files, or nothing to identify the track by
    track_id = uri[len(TRACK_URI_PREFIX) :]
    if SPOTIFY_ID.fullmatch(track_id) is None:
        return "no_track_id"
    if ms_played < MIN_MS_PLAYED:
        return "too_short"
    return ExportPlay(
        played_at=played_at,
        track_id=track_id,
        ms_played=ms_played,
        track_name=_text(entry.get("master_metadata_track_name")),
        artist_name=_text(entry.get("master_metadata_album_artist_name")),
        album_name=_text(entry.get("master_metadata_album_album_name")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class ClassifiedSegment:
    """A segment's music plays, sorted by time (the file's own repeats included)."""

    counts: ImportCounts  # read, skipped by reason
    plays: list[ExportPlay]
    spoken: list[Document] = field(default_factory=list)  # episodes and chapters, kept apart


def classify_segment(entries: Sequence[Any]) -> ClassifiedSegment:
    """Classify and sort a segment's entries (pure CPU work, no I/O).

    Tens of milliseconds for a full segment: ``HistoryImporter`` runs it in an executor,
    off the event loop.
    """
    counts = ImportCounts(read=len(entries))
    plays: list[ExportPlay] = []
    spoken: list[Document] = []
    for entry in entries:
        result = classify(entry)
        if isinstance(result, str):
            counts.skipped[result] += 1
            if result in ("podcast", "audiobook") and (doc := spoken_document(entry)):
                spoken.append(doc)
        else:
            plays.append(result)
    plays.sort(key=lambda play: play.played_at)
    return ClassifiedSegment(counts, plays, spoken)


@dataclass(slots=True)
class ImportCounts:
    """What an import saw; read = imported + duplicates + every skip reason."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    blacklisted: int = 0  # of the imported plays: stored marked blacklisted (not counted)

    def add(self, other: ImportCounts) -> None:
        """Fold another count in."""
        self.read += other.read
        self.imported += other.imported
        self.blacklisted += other.blacklisted
        self.duplicates += other.duplicates
        for reason, count in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (HA's Store, sensor attributes)."""
        return {
            "read": self.read,
            "imported": self.imported,
            "blacklisted": self.blacklisted,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ImportCounts:
        """Inverse of ``as_dict`` (tolerates missing keys)."""
        counts = cls()
        if isinstance(data, dict):
            counts.read = int(data.get("read", 0))
            counts.imported = int(data.get("imported", 0))
            counts.blacklisted = int(data.get("blacklisted", 0))
            counts.duplicates = int(data.get("duplicates", 0))
            skipped = data.get("skipped")
            if isinstance(skipped, dict):
                for reason, count in skipped.items():
                    counts.skipped[str(reason)] = int(count)
        return counts
