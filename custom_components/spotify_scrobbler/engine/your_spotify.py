"""Sharing the database with Your Spotify (server 1.8 to 1.20): its formats and first start.

Read from Your Spotify's server code (``apps/server/src``: database/schemas, migrations,
routes/oauth.ts, spotify/looper.ts), never copied:

* On every start it runs each migration its ``migrations`` document does not list as done.
  On a database it never ran on, ``spotify-auth`` deletes every user without Spotify
  tokens (ours have none, by design) with all their plays. So when the database has no
  ``migrations`` document yet, this module writes one that lists every migration as done,
  and the ``globalpreferences`` and ``privatedatas`` documents those migrations create
  (its login hangs without the first and cannot sign a session without the second).
* Users this integration creates look like Your Spotify's own ``createUser``; users that
  exist are only read: their username, settings (blacklist included) and tokens are Your
  Spotify's.
* ``blacklistedBy`` is an array (``["artist"]``); any value at all hides a play from its
  statistics, so it is absent on plays that are not blacklisted.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

type Document = dict[str, Any]

BLACKLISTED_BY: Final = ["artist"]
# Version of what this integration writes, kept on its users (scrobbler.format): 2 is the
# array blacklistedBy (1 wrote the string "artist", which Your Spotify cannot update).
FORMAT: Final = 2

# Your Spotify's migration titles (the keys of its migration map, ".js" included), in order.
MIGRATION_TITLES: Final = (
    "1618162835253-add_global_preferences.js",
    "1620176626899-add_nb_elements.js",
    "1620235555105-add_best_metric_type.js",
    "1645792294977-spotify-auth.js",
    "1645792294980-admins.js",
    "1645792294981-darkmode.js",
    "1645792294982-fix_first_listened_at.js",
    "1708973485300-create_private_data.js",
    "1708973485301-add_metadata_to_infos.js",
    "1708973485302-add_language_to_user.js",
)

# What Your Spotify's createUser writes, defaults included (its login reads them).
USER_DEFAULTS: Final[Document] = {
    "admin": False,
    "accessToken": "",
    "refreshToken": "",
    "expiresIn": 0,
    "tracks": [],
    "lastImport": None,
    "publicToken": None,
}
SETTINGS_DEFAULTS: Final[Document] = {
    "historyLine": False,
    "preferredStatsPeriod": "month",
    "nbElements": 10,
    "metricUsed": "number",
    "darkMode": "follow",
    "blacklistedArtists": [],
    "dateFormat": "default",
}


def new_user(spotify_id: str, username: str, blacklist: Sequence[str], *, admin: bool) -> Document:
    """A ``users`` document as Your Spotify would create it at its first login."""
    return {
        **USER_DEFAULTS,
        "username": username,
        "spotifyId": spotify_id,
        "admin": admin,
        "lastTimestamp": 0,
        "settings": {**SETTINGS_DEFAULTS, "blacklistedArtists": list(blacklist)},
        # What we seeded is ours to undo: an artist removed from the option later is not
        # "Your Spotify's own blacklist" just because we copied it there.
        "scrobbler": {"format": FORMAT, "seededBlacklist": list(blacklist)},
    }


def missing_user_fields(doc: Document) -> Document:
    """``$set`` of the defaults a user document lacks (users older versions of us wrote).

    Only absent fields: whatever Your Spotify (or the user) set stays as it is.
    """
    missing = {key: value for key, value in USER_DEFAULTS.items() if key not in doc}
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        missing["settings"] = dict(SETTINGS_DEFAULTS)
    else:
        missing.update(
            {f"settings.{k}": v for k, v in SETTINGS_DEFAULTS.items() if k not in settings}
        )
    return missing


async def prepare_for_your_spotify(db: AsyncDatabase[Document]) -> bool:
    """Make a database Your Spotify never started on safe for its first start.

    Returns whether anything was written. A database Your Spotify created has its
    ``migrations`` document and is left alone.
    """
    if await db["migrations"].find_one({}, {"_id": 1}) is not None:
        return False
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    if await db["globalpreferences"].find_one({}, {"_id": 1}) is None:
        await db["globalpreferences"].insert_one(
            {"allowRegistrations": True, "allowAffinity": True}
        )
    if await db["privatedatas"].find_one({}, {"_id": 1}) is None:
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        await db["privatedatas"].insert_one({"jwtPrivateKey": key})
    await db["migrations"].update_one(
        {},
        {
            "$setOnInsert": {
                "lastRun": MIGRATION_TITLES[-1],
                "migrations": [{"title": title, "timestamp": now_ms} for title in MIGRATION_TITLES],
            }
        },
        upsert=True,
    )
    return True


async def upgrade_plays(db: AsyncDatabase[Document], owner: ObjectId) -> int:
    """Rewrite this integration's string ``blacklistedBy`` as Your Spotify's array."""
    result = await db["infos"].update_many(
        {"owner": owner, "blacklistedBy": {"$type": "string"}},
        {"$set": {"blacklistedBy": BLACKLISTED_BY}},
    )
    return result.modified_count
