"""Typed values passed from the scrobbler to the store, the coordinator and the entities."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from bson import ObjectId

from .your_spotify import BLACKLISTED_BY

# Same track less than 30 s apart = same play. Strictly less: two real plays of a 30 s track
# played back to back are exactly 30 s apart.
DUPLICATE_WINDOW: Final = timedelta(seconds=30)
# Our own field on the plays we write: which scrobbler (config entry) wrote it, so that a
# play another program stored first is told apart from a retried write of ours.
WRITER_FIELD = "scrobbler_writer"


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

    def to_document(self, owner: ObjectId, writer: str | None = None) -> dict[str, Any]:
        """The ``infos`` document, in Your Spotify's field names (plus who wrote it)."""
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
            doc["blacklistedBy"] = list(BLACKLISTED_BY)
        if writer is not None:
            doc[WRITER_FIELD] = writer
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


def details_to_json(details: PlayDetails) -> dict[str, Any]:
    """A play's details as JSON (for the snapshot kept in HA's storage)."""
    play = details.play
    return {
        "track_id": play.track_id,
        "played_at": play.played_at.isoformat(),
        "album_id": play.album_id,
        "artist_ids": list(play.artist_ids),
        "duration_ms": play.duration_ms,
        "blacklisted": play.blacklisted,
        "track_name": details.track_name,
        "artist_names": list(details.artist_names),
        "album_name": details.album_name,
        "image_url": details.image_url,
        "spotify_url": details.spotify_url,
    }


def details_from_json(value: Any) -> PlayDetails | None:
    """The inverse of details_to_json; None for anything unusable."""
    try:
        played_at = datetime.fromisoformat(value["played_at"]).astimezone(UTC)
        play = Play(
            track_id=str(value["track_id"]),
            played_at=played_at,
            album_id=value.get("album_id"),
            artist_ids=tuple(str(i) for i in value.get("artist_ids", ())),
            duration_ms=int(value.get("duration_ms", 0)),
            blacklisted=bool(value.get("blacklisted")),
        )
        return PlayDetails(
            play=play,
            track_name=str(value["track_name"]),
            artist_names=tuple(str(n) for n in value.get("artist_names", ())),
            album_name=value.get("album_name"),
            image_url=value.get("image_url"),
            spotify_url=value.get("spotify_url"),
        )
    except KeyError, TypeError, ValueError, AttributeError:
        return None


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
    # Plays an earlier write stored without acknowledging it, found stored now.
    recovered: int = 0
    # Plays another scrobbler of the same account (Your Spotify, another Home Assistant)
    # had stored already when this cycle wrote them.
    foreign: int = 0


@dataclass(slots=True, frozen=True)
class CycleResult:
    """The new plays of a cycle, oldest first, and its summary."""

    new_plays: tuple[PlayDetails, ...] = ()
    summary: CycleSummary = field(default_factory=CycleSummary)
    # (newest play stored before, oldest play Spotify still had): plays in between may be lost.
    gap: tuple[datetime, datetime] | None = None
    # Why Spotify could not be read this cycle (waiting plays were still written).
    fetch_error: Exception | None = None
    # Why MongoDB could not be written this cycle (the plays wait in the outbox).
    storage_error: Exception | None = None


class ScrobblerStatus(StrEnum):
    """What stands between Spotify and MongoDB right now (the status sensor's state)."""

    OK = "ok"
    MONGODB_UNAVAILABLE = "mongodb_unavailable"
    SPOTIFY_UNAVAILABLE = "spotify_unavailable"
    RATE_LIMITED = "rate_limited"
    PREMIUM_REQUIRED = "premium_required"


# The fields a count in MongoDB sets; everything else is the cycle's.
TOTAL_FIELDS: Final = (
    "total_plays",
    "plays_today",
    "listened_ms_today",
    "day_start",
    "last_play",
    "waiting_new",
    "waiting_stored",
)


@dataclass(slots=True, frozen=True)
class ScrobblerData:
    """Everything the entities show, kept current without scanning the history.

    The stored_* totals count what MongoDB holds; ``pending`` are plays fetched from
    Spotify and waiting in the outbox, which the entities count too.
    """

    last_play: PlayDetails | None = None
    total_plays: int = 0
    plays_today: int = 0
    listened_ms_today: int = 0
    day_start: datetime | None = None
    new_plays: tuple[PlayDetails, ...] = ()
    last_cycle: CycleSummary = field(default_factory=CycleSummary)
    cycle: int = 0  # successful cycles so far; lets listeners handle new_plays once
    pending: tuple[PlayDetails, ...] = ()
    status: ScrobblerStatus = ScrobblerStatus.OK
    retry_at: datetime | None = None  # when a Spotify rate limit ends
    rate_limit_reason: str | None = None  # e.g. Spotify's QUOTA_EXCEEDED
    # Instants of waiting plays MongoDB lacked / held when the totals were last read.
    waiting_new: frozenset[datetime] = frozenset()
    waiting_stored: frozenset[datetime] = frozenset()
    # When MongoDB stopped answering (None while it answers); kept across restarts.
    mongodb_down_since: datetime | None = None

    def totals(self) -> tuple[object, ...]:
        """What MongoDB's counts set (``_read_totals``), for telling whether it changed."""
        return tuple(getattr(self, name) for name in TOTAL_FIELDS)

    def with_totals_of(self, counted: ScrobblerData) -> ScrobblerData:
        """A copy with ``counted``'s totals."""
        return replace(self, **{name: getattr(counted, name) for name in TOTAL_FIELDS})

    def counted_pending(self) -> list[PlayDetails]:
        """Waiting plays the totals count: not blacklisted, and not in MongoDB's counts.

        MongoDB sorted them when the totals were last read (``waiting_new`` and
        ``waiting_stored``). A play held since, while MongoDB was unreachable, counts only
        if newer than the stored ones: an older one may be stored already.
        """
        return [
            d
            for d in self.pending
            if not d.play.blacklisted
            and d.play.played_at not in self.waiting_stored
            and (d.play.played_at in self.waiting_new or self._after_stored(d.play))
        ]

    def _after_stored(self, play: Play) -> bool:
        """Whether a play is surely not the newest stored one, nor older than it.

        The same track less than 30 s from it may be that play: an imported play's ts is
        in whole seconds, the live end stamp of the same play a fraction later.
        """
        if self.last_play is None:
            return True
        newest = self.last_play.play
        if play.track_id == newest.track_id:
            return play.played_at - newest.played_at >= DUPLICATE_WINDOW
        return play.played_at > newest.played_at

    @property
    def shown_last_play(self) -> PlayDetails | None:
        """The newest play, stored or waiting."""
        waiting = self.counted_pending()
        return waiting[-1] if waiting else self.last_play

    @property
    def shown_total_plays(self) -> int:
        """Stored plus waiting plays."""
        return self.total_plays + len(self.counted_pending())

    @property
    def shown_plays_today(self) -> int:
        """Today's stored plus waiting plays."""
        return self.plays_today + len(self._pending_today())

    @property
    def shown_listened_ms_today(self) -> int:
        """Today's listening time, stored plus waiting."""
        return self.listened_ms_today + sum(d.play.duration_ms for d in self._pending_today())

    def _pending_today(self) -> list[PlayDetails]:
        start = self.day_start
        return [
            d for d in self.counted_pending() if start is not None and d.play.played_at >= start
        ]
