"""How rollups cut a period and keep sums: whole UTC years, months and days, packed sums.

Nothing here imports Home Assistant or touches MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from .models import to_unix_ms

type Sums = dict[str, list[int]]  # id -> [plays, listening ms]

# Where a kind's id sits in a day's play entry [track, primary artist, album, duration ms].
KIND_FIELDS: Final[dict[str, int]] = {"tracks": 0, "artists": 1, "albums": 2}
DAY: Final = timedelta(days=1)


def utc(moment: datetime) -> datetime:
    """Aware UTC (BSON dates read without ``tz_aware`` are naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_start(moment: datetime) -> datetime:
    """The UTC day an instant falls in."""
    return utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one ``start`` opens."""
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def pack(sums: Sums) -> str:
    r"""``id\tplays\tms`` lines (Spotify ids hold neither tabs nor newlines)."""
    return "\n".join(f"{key}\t{plays}\t{ms}" for key, (plays, ms) in sums.items())


def unpack(packed: object, into: Sums) -> None:
    """Add packed sums to ``into``."""
    if not isinstance(packed, str) or not packed:
        return
    for line in packed.split("\n"):
        key, plays, ms = line.split("\t")
        row = into.setdefault(key, [0, 0])
        row[0] += int(plays)
        row[1] += int(ms)


def add_entries(entries: Iterable[list[Any]], into: dict[str, Sums]) -> None:
    """Count play entries into per-kind sums."""
    for entry in entries:
        for kind, index in KIND_FIELDS.items():
            key = entry[index]
            if isinstance(key, str) and "\t" not in key and "\n" not in key:
                row = into[kind].setdefault(key, [0, 0])
                row[0] += 1
                row[1] += int(entry[3])


def empty_sums() -> dict[str, Sums]:
    """No sums yet, for each kind."""
    return {kind: {} for kind in KIND_FIELDS}


@dataclass(slots=True, frozen=True)
class Piece:
    """Part of a period: a whole year ("y"), month ("m") or day ("d"), or part of a day."""

    level: Literal["y", "m", "d", "part"]
    start: datetime
    low_ms: int = 0  # for "part": the instants kept
    high_ms: int = 0


def needs_months(cut: Iterable[Piece], dirty: object) -> bool:
    """Whether a cut reads the sums of a ``dirty`` month (``YYYY-MM``), or of its year."""
    months = {m for m in dirty if isinstance(m, str)} if isinstance(dirty, list) else set()
    for piece in cut:
        if piece.level == "m" and f"{piece.start:%Y-%m}" in months:
            return True
        if piece.level == "y" and any(m.startswith(f"{piece.start:%Y}-") for m in months):
            return True
    return False


def pieces(start: datetime, end: datetime) -> list[Piece]:
    """[start, end) as the fewest whole years, months and days, and partial days."""
    cut: list[Piece] = []
    moment = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while moment < end:
        day = day_start(moment)
        if moment != day or day + DAY > end:
            high = min(end, day + DAY)
            cut.append(Piece("part", day, to_unix_ms(moment), to_unix_ms(high)))
            moment = high
        elif moment.day == 1 and moment.month == 1 and moment.replace(year=moment.year + 1) <= end:
            cut.append(Piece("y", moment))
            moment = moment.replace(year=moment.year + 1)
        elif moment.day == 1 and next_month(moment) <= end:
            cut.append(Piece("m", moment))
            moment = next_month(moment)
        else:
            cut.append(Piece("d", moment))
            moment += DAY
    return cut
