"""Typed values passed from the scrobbler to the store, the coordinator and the entities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId


def to_unix_ms(moment: datetime) -> int:
    """Unix milliseconds, the unit of Your Spotify's ``lastTimestamp``."""
    return int(moment.timestamp() * 1000)


def from_unix_ms(ms: int) -> datetime:
    """The UTC instant of Unix milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True, frozen=True)
class Play:
    """One scrobble: a track played at an instant (an ``infos`` document)."""

    track_id: str
    played_at: datetime  # UTC, millisecond precision (what BSON stores)
    album_id: str | None
    artist_ids: tuple[str, ...]
    duration_ms: int
    blacklisted: bool = False

    @property
    def primary_artist_id(self) -> str | None:
        """The first artist, the one the seed's blacklist and statistics use."""
        return self.artist_ids[0] if self.artist_ids else None

    def to_document(self, owner: ObjectId) -> dict[str, Any]:
        """The ``infos`` document, in Your Spotify's field names."""
        doc: dict[str, Any] = {
            "owner": owner,
            "id": self.track_id,
            "albumId": self.album_id,
            "primaryArtistId": self.primary_artist_id,
            "artistIds": list(self.artist_ids),
            "durationMs": self.duration_ms,
            "played_at": self.played_at,
        }
        if self.blacklisted:
            doc["blacklistedBy"] = "artist"
        return doc


@dataclass(slots=True, frozen=True)
class PlayDetails:
    """A play with the names an entity or an event shows."""

    play: Play
    track_name: str
    artist_names: tuple[str, ...]
    album_name: str | None
    image_url: str | None
    spotify_url: str | None


@dataclass(slots=True, frozen=True)
class CycleSummary:
    """What one scrobbling cycle saw and did (for diagnostics and the benchmark)."""

    items: int = 0
    skipped: int = 0
    duplicates: int = 0
    new_plays: int = 0
    new_tracks: int = 0
    new_albums: int = 0
    new_artists: int = 0
    enrichment_requests: int = 0


@dataclass(slots=True, frozen=True)
class CycleResult:
    """The new plays of a cycle, oldest first, and its summary."""

    new_plays: tuple[PlayDetails, ...] = ()
    summary: CycleSummary = field(default_factory=CycleSummary)
    # (newest play stored before, oldest play Spotify still had): plays in between may be lost.
    gap: tuple[datetime, datetime] | None = None
