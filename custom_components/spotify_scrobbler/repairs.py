"""Repair issues of an account: Spotify access, MongoDB, gaps, the play index, other writers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

ISSUE_PREMIUM_REQUIRED: Final = "premium_required"
ISSUE_REAUTH_REQUIRED: Final = "reauth_required"
ISSUE_MONGODB_UNREACHABLE: Final = "mongodb_unreachable"
ISSUE_GAP: Final = "plays_may_be_missing"
ISSUE_OUTBOX_FULL: Final = "outbox_full"
ISSUE_DUPLICATE_PLAYS: Final = "duplicate_plays"
ISSUE_FOREIGN_INDEX: Final = "foreign_play_index"
ISSUE_OTHER_SCROBBLER: Final = "other_scrobbler"

LEARN_MORE: Final = {
    ISSUE_PREMIUM_REQUIRED: "https://developer.spotify.com/documentation/web-api/concepts/quota-modes",
    ISSUE_DUPLICATE_PLAYS: "https://github.com/spotify-scrobbler/spotify_scrobbler#duplicate-plays-in-mongodb",
    ISSUE_FOREIGN_INDEX: "https://github.com/spotify-scrobbler/spotify_scrobbler#duplicate-plays-in-mongodb",
    ISSUE_OTHER_SCROBBLER: "https://github.com/spotify-scrobbler/spotify_scrobbler#another-scrobbler-on-the-same-account",
}


def issue_id(issue: str, entry: ConfigEntry, suffix: str = "") -> str:
    """One issue of a kind per account (and per suffix, e.g. a gap's start)."""
    return f"{issue}_{entry.entry_id}{suffix}"


def raise_issue(
    hass: HomeAssistant,
    issue: str,
    entry: ConfigEntry,
    *,
    suffix: str = "",
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
    data: dict[str, str | int | float | None] | None = None,
    **placeholders: str,
) -> None:
    """Create (or refresh) the account's issue; with ``data`` it survives a restart."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(issue, entry, suffix),
        data=data,
        is_persistent=data is not None,
        is_fixable=False,
        severity=severity,
        translation_key=issue,
        translation_placeholders={"account": entry.title, **placeholders},
        learn_more_url=LEARN_MORE.get(issue),
    )


def clear_issue(hass: HomeAssistant, issue: str, entry: ConfigEntry) -> None:
    """Remove the account's issue once the cause is gone."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(issue, entry))
