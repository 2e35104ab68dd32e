"""The repair issues of one account: raised and cleared from what setup and cycles find."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine.pending import PendingPlays
from .engine.spotify import SpotifyAuthError, SpotifyForbiddenError
from .engine.store import IndexReport
from .repairs import (
    ISSUE_DUPLICATE_PLAYS,
    ISSUE_FOREIGN_INDEX,
    ISSUE_GAP,
    ISSUE_MONGODB_UNREACHABLE,
    ISSUE_OTHER_SCROBBLER,
    ISSUE_OUTBOX_FULL,
    ISSUE_PREMIUM_REQUIRED,
    ISSUE_REAUTH_REQUIRED,
    clear_issue,
    issue_id,
    raise_issue,
)

if TYPE_CHECKING:
    from . import SpotifyScrobblerConfigEntry

_LOGGER = logging.getLogger(__name__)

MONGODB_REPAIR_AFTER: Final = timedelta(minutes=15)  # one blip is no issue
# The other-scrobbler issue goes once no play of another scrobbler was seen for this long
# (whoever polls first stores a play: with both running, it is seen within hours).
OTHER_SCROBBLER_QUIET: Final = timedelta(days=7)


class AccountRepairs:
    """Keeps an account's repair issues in line with its state."""

    def __init__(self, hass: HomeAssistant, entry: SpotifyScrobblerConfigEntry) -> None:
        """Issues of ``entry``."""
        self.hass = hass
        self.entry = entry

    def index_report(self, report: IndexReport) -> None:
        """What kept the unique (owner, played_at) index from being built, if anything."""
        hass, entry = self.hass, self.entry
        if report.duplicate_plays:
            _LOGGER.warning(
                "%s: %s plays share their instant with another play; the unique index that "
                "makes writes idempotent cannot be built until they are cleaned up",
                entry.title,
                report.duplicate_plays,
            )
            raise_issue(hass, ISSUE_DUPLICATE_PLAYS, entry, count=str(report.duplicate_plays))
        else:
            clear_issue(hass, ISSUE_DUPLICATE_PLAYS, entry)
        if report.foreign_index is not None:
            _LOGGER.warning(
                "%s: the index %s on infos (owner, played_at) is not unique and was not created "
                "by this integration; the unique index that makes writes idempotent cannot be "
                "built beside it",
                entry.title,
                report.foreign_index,
            )
            raise_issue(hass, ISSUE_FOREIGN_INDEX, entry, index=report.foreign_index)
        else:
            clear_issue(hass, ISSUE_FOREIGN_INDEX, entry)

    def cycle_outcome(
        self,
        storage_error: Exception | None,
        fetch_error: Exception | None,
        pending: PendingPlays,
    ) -> None:
        """Clear what a cycle shows to be over, raise what it shows to be wrong."""
        hass, entry = self.hass, self.entry
        if storage_error is None:
            clear_issue(hass, ISSUE_MONGODB_UNREACHABLE, entry)
        if fetch_error is None:
            clear_issue(hass, ISSUE_PREMIUM_REQUIRED, entry)
            clear_issue(hass, ISSUE_REAUTH_REQUIRED, entry)
        elif isinstance(fetch_error, SpotifyAuthError):
            raise_issue(hass, ISSUE_REAUTH_REQUIRED, entry)
        elif isinstance(fetch_error, SpotifyForbiddenError):
            raise_issue(hass, ISSUE_PREMIUM_REQUIRED, entry)
        if pending.refused_since is None:
            clear_issue(hass, ISSUE_OUTBOX_FULL, entry)
        else:
            raise_issue(
                hass,
                ISSUE_OUTBOX_FULL,
                entry,
                count=str(len(pending)),
                since=local_minutes(pending.refused_since),
            )

    def mongodb_failed(self, since: datetime | None) -> datetime:
        """Raise the MongoDB repair once an outage has lasted MONGODB_REPAIR_AFTER.

        Returns when the outage started: ``since``, or now for a new one. The start is
        kept in the outbox, so a restart during the outage neither hides nor delays it.
        """
        now = dt_util.utcnow()
        since = since or now
        if now - since >= MONGODB_REPAIR_AFTER:
            raise_issue(
                self.hass,
                ISSUE_MONGODB_UNREACHABLE,
                self.entry,
                since=local_minutes(since),
                minutes=str(int(MONGODB_REPAIR_AFTER.total_seconds() // 60)),
            )
        return since

    def gap(self, start: datetime, end: datetime) -> None:
        """Spotify's 50-play window no longer reaches back to the last stored play.

        One issue per account, updated with the latest gap and how many there were.
        """
        _LOGGER.warning(
            "%s: plays between %s and %s may be missing (Spotify only keeps the last 50)",
            self.entry.title,
            start.isoformat(timespec="seconds"),
            end.isoformat(timespec="seconds"),
        )
        known = ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id(ISSUE_GAP, self.entry))
        placeholders = (known.translation_placeholders or {}) if known else {}
        try:
            count = int(placeholders.get("count", "0")) + 1
        except ValueError:
            count = 1
        # Deleted first so that a gap after the user ignored the issue shows again.
        clear_issue(self.hass, ISSUE_GAP, self.entry)
        raise_issue(
            self.hass,
            ISSUE_GAP,
            self.entry,
            severity=ir.IssueSeverity.WARNING,
            start=local_minutes(start),
            end=local_minutes(end),
            count=str(count),
        )

    def other_scrobbler(self, foreign_plays: int) -> None:
        """Plays another program had stored first (a cycle that wrote successfully).

        One issue per account, kept across restarts with the count and the last sighting;
        removed once none was seen for OTHER_SCROBBLER_QUIET.
        """
        issue = ISSUE_OTHER_SCROBBLER
        known = ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id(issue, self.entry))
        data = (known.data or {}) if known else {}
        now = dt_util.utcnow()
        if not foreign_plays:
            if known is not None:
                last_seen = dt_util.parse_datetime(str(data.get("last_seen", "")))
                if last_seen is None or now - last_seen >= OTHER_SCROBBLER_QUIET:
                    clear_issue(self.hass, issue, self.entry)
            return
        count = foreign_plays + _int(data.get("count"))
        if known is None:
            _LOGGER.warning(
                "%s: %s plays were already stored by another program scrobbling this account "
                "(Your Spotify, or another Home Assistant); each play is still stored once",
                self.entry.title,
                foreign_plays,
            )
        raise_issue(
            self.hass,
            issue,
            self.entry,
            severity=ir.IssueSeverity.WARNING,
            data={"count": count, "last_seen": now.isoformat()},
            count=str(count),
            last_seen=local_minutes(now),
        )


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def local_minutes(moment: datetime) -> str:
    """An instant as repairs show it: local time, to the minute."""
    return dt_util.as_local(moment).strftime("%Y-%m-%d %H:%M")
