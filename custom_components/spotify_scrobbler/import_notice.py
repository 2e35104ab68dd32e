"""The persistent notification a finished (or stopped) history import leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from .engine.export_entries import SKIP_REASONS, ImportCounts

_SKIP_LABELS: Final = {
    "podcast": "podcast episodes",
    "audiobook": "audiobook chapters",
    "too_short": "played less than 30 s",
    "no_track_id": "without a Spotify track id (local files)",
    "malformed": "malformed entries",
}


def import_summary(
    progress: dict[str, Any], counts: ImportCounts, *, failed: bool, to_enrich: bool
) -> str:
    """Markdown: what was imported, skipped and unreadable, and what happens next."""
    skipped = sum(counts.skipped.values())
    lines = [
        (
            f"**{counts.imported}** plays imported from {len(progress['files'])} file(s) "
            f"({counts.read} entries read)."
        ),
        f"Already stored (duplicates): {counts.duplicates}.",
        f"Skipped: {skipped}"
        + (
            " ("
            + ", ".join(
                f"{_SKIP_LABELS[reason]}: {counts.skipped.get(reason, 0)}"
                for reason in SKIP_REASONS
                if counts.skipped.get(reason, 0)
            )
            + ")."
            if skipped
            else "."
        ),
    ]
    if counts.blacklisted:
        lines.insert(
            1,
            f"Of them, {counts.blacklisted} are plays of blacklisted artists: stored, but not "
            "counted in the totals, statistics or top lists.",
        )
    lines.extend(
        f"Could not read {Path(f['path']).name}: {f['error']}"
        for f in progress["files"]
        if f.get("error")
    )
    if failed:
        lines.append(
            f"The import stopped: MongoDB failed ({progress['error']}). Run the action "
            "again with the same path to continue where it stopped."
        )
    elif to_enrich:
        lines.append(
            "Album and artist details of new tracks are fetched from Spotify in the "
            "background, a few requests a minute."
        )
    return "\n\n".join(lines)
