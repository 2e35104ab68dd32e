"""Generated Spotify "Extended streaming history" exports (Streaming_History_Audio_*.json).

No Home Assistant imports: the tests and the benchmark both use it. Every entry has the
export's fields; a generated export also knows exactly which plays an import must store.
"""

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from .spotify_fake import Catalog

type Entry = dict[str, Any]
type Key = tuple[str, datetime]

_NULL_FIELDS = (
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
    "offline_timestamp",
)


def ts(moment: datetime) -> str:
    """The export's ts format: UTC, whole seconds, 'Z'."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def music_entry(
    catalog: Catalog, track_id: str, end: datetime, ms_played: int, **overrides: Any
) -> Entry:
    """An entry of a catalogue track that ended at ``end``."""
    track = catalog.tracks.get(track_id)
    entry: Entry = {
        "ts": ts(end),
        "platform": "android",
        "ms_played": ms_played,
        "conn_country": "SE",
        "ip_addr": "192.0.2.10",
        "master_metadata_track_name": track.name if track else "Unknown track",
        "master_metadata_album_artist_name": (
            catalog.artists[track.artist_ids[0]].name if track else "Unknown artist"
        ),
        "master_metadata_album_album_name": (
            catalog.albums[track.album_id].name if track else "Unknown album"
        ),
        "spotify_track_uri": f"spotify:track:{track_id}",
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "incognito_mode": False,
    }
    entry.update(dict.fromkeys(_NULL_FIELDS))
    entry.update(overrides)
    return entry


def podcast_entry(end: datetime, ms_played: int = 600_000) -> Entry:
    """A podcast episode (no track fields)."""
    entry = music_entry(Catalog(), "x", end, ms_played)
    entry.update(
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
        episode_name="Episode 12",
        episode_show_name="A Show",
        spotify_episode_uri="spotify:episode:0Q86acNRm6V9GYx55SXKwf",
    )
    return entry


def audiobook_entry(end: datetime, ms_played: int = 900_000) -> Entry:
    """An audiobook chapter."""
    entry = podcast_entry(end, ms_played)
    entry.update(
        episode_name=None,
        episode_show_name=None,
        spotify_episode_uri=None,
        audiobook_title="A Book",
        audiobook_uri="spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe",
        audiobook_chapter_uri="spotify:chapter:4pLtbq4Xbh3W9ks6Q9wAcq",
        audiobook_chapter_title="Chapter 1",
    )
    return entry


def local_entry(end: datetime, ms_played: int = 200_000) -> Entry:
    """A local file: names but no Spotify URI."""
    entry = podcast_entry(end, ms_played)
    entry.update(
        episode_name=None,
        episode_show_name=None,
        spotify_episode_uri=None,
        master_metadata_track_name="Demo tape",
        master_metadata_album_artist_name="Me",
        master_metadata_album_album_name="Garage",
    )
    return entry


MALFORMED: tuple[Any, ...] = (
    42,
    None,
    "not an entry",
    [1, 2],
    {},
    {"ts": "yesterday", "ms_played": 200_000, "spotify_track_uri": "spotify:track:abc"},
    {"ts": "2024-01-01T10:00:00", "ms_played": 200_000},  # no zone
    {"ts": "2024-01-01T10:00:00Z", "ms_played": "200000"},
    {"ts": "2024-01-01T10:00:00Z", "ms_played": -5},
    {
        "ts": "0001-01-01T00:00:00+01:00",
        "ms_played": 200_000,
        "spotify_track_uri": "spotify:track:abc",
    },
    {"ts": "9999-12-31T23:59:59Z", "ms_played": 200_000, "spotify_track_uri": "spotify:track:abc"},
)


@dataclass(slots=True)
class GeneratedExport:
    """Entries in file order and what an import must store from them."""

    entries: list[Any] = field(default_factory=list)
    expected: set[Key] = field(default_factory=set)
    skipped: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # same track within 30 s inside the export itself

    def skip(self, reason: str) -> None:
        """Count a skipped entry."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def generate_export(
    catalog: Catalog,
    start: datetime,
    plays: int,
    *,
    seed: int = 1,
    noise: bool = True,
    track_ids: Sequence[str] | None = None,
) -> GeneratedExport:
    """``plays`` music plays from ``start`` on, 31 s to 6 min apart, with noise mixed in.

    Noise (when asked): plays shorter than 30 s, podcast episodes, audiobook chapters,
    local files, malformed entries and the same track again within 30 s (one play).
    """
    rng = random.Random(seed)  # noqa: S311 -- test data
    pool = list(track_ids if track_ids is not None else sorted(catalog.tracks))
    export = GeneratedExport()
    moment = start.replace(microsecond=0)
    malformed = 0
    while len(export.expected) < plays:
        moment += timedelta(seconds=rng.randint(31, 360))
        roll = rng.random() if noise else 1.0
        if roll < 0.04:
            export.entries.append(
                music_entry(catalog, rng.choice(pool), moment, rng.randint(0, 29_999))
            )
            export.skip("too_short")
        elif roll < 0.06:
            export.entries.append(podcast_entry(moment))
            export.skip("podcast")
        elif roll < 0.07:
            export.entries.append(audiobook_entry(moment))
            export.skip("audiobook")
        elif roll < 0.08:
            export.entries.append(local_entry(moment))
            export.skip("no_track_id")
        elif roll < 0.09:
            export.entries.append(MALFORMED[malformed % len(MALFORMED)])
            malformed += 1
            export.skip("malformed")
        else:
            track_id = rng.choice(pool)
            export.entries.append(
                music_entry(catalog, track_id, moment, rng.randint(30_000, 400_000))
            )
            export.expected.add((track_id, moment))
            if noise and rng.random() < 0.03:  # reported twice, a few seconds apart
                moment += timedelta(seconds=rng.randint(1, 29))
                export.entries.append(music_entry(catalog, track_id, moment, 45_000))
                export.duplicates += 1
    return export


type Stamp = Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class RealPlay:
    """A play as it happened. The export reports its end (``ts``, whole seconds) and the time
    listened; Spotify's live ``played_at`` marks its start or its end, depending on the client."""

    track_id: str
    start: datetime
    ms_played: int
    paused_ms: int = 0  # time spent paused between start and end

    @property
    def end(self) -> datetime:
        """When playback stopped."""
        return self.start + timedelta(milliseconds=self.ms_played + self.paused_ms)

    @property
    def ts(self) -> datetime:
        """The export's ``ts``: the end, cut to whole seconds."""
        return self.end.replace(microsecond=0)

    def stamp(self, mode: Stamp) -> datetime:
        """The live ``played_at`` (millisecond precision) under one stamping mode."""
        moment = self.start if mode == "start" else self.end
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def entry(self, catalog: Catalog) -> Entry:
        """Its export entry."""
        return music_entry(catalog, self.track_id, self.end, self.ms_played)


def one_after_another(
    start: datetime, spec: Sequence[tuple[str, int, int] | tuple[str, int, int, int]]
) -> list[RealPlay]:
    """Plays in a row from ``start``: (track id, ms played, ms of silence after it[, ms
    paused in the middle])."""
    plays: list[RealPlay] = []
    moment = start
    for track_id, ms_played, gap, *paused in spec:
        play = RealPlay(track_id, moment, ms_played, *paused)
        plays.append(play)
        moment = play.end + timedelta(milliseconds=gap)
    return plays


def write_export(directory: Path, entries: Sequence[Any], per_file: int) -> list[Path]:
    """Write Streaming_History_Audio_<n>.json files of ``per_file`` entries each."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index, first in enumerate(range(0, len(entries), per_file)):
        path = directory / f"Streaming_History_Audio_2024_{index}.json"
        # Spotify's files are pretty-printed UTF-8.
        path.write_text(
            json.dumps(list(entries[first : first + per_file]), indent=2, ensure_ascii=False),
            encoding="utf-8",
        )
        paths.append(path)
    return paths
