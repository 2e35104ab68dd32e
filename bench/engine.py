"""The engine modules, imported without running the integration's ``__init__``.

``custom_components/spotify_scrobbler/__init__.py`` imports Home Assistant; the engine
modules (spotify, scrobbler, store, models) do not. A bare package object pointing at the
integration's directory lets Python import those modules alone.
"""

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

PACKAGE = "custom_components.spotify_scrobbler"
ENGINE_DIR = Path(__file__).resolve().parent.parent / "custom_components" / "spotify_scrobbler"


def _install_bare_package() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [str(ENGINE_DIR)]
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)


_install_bare_package()

from custom_components.spotify_scrobbler.engine.known_metadata import KnownMetadata  # noqa: E402
from custom_components.spotify_scrobbler.engine.models import CycleResult  # noqa: E402
from custom_components.spotify_scrobbler.engine.scrobbler import Scrobbler  # noqa: E402
from custom_components.spotify_scrobbler.engine.spotify import (  # noqa: E402
    BatchSupport,
    RequestGate,
    SpotifyClient,
)
from custom_components.spotify_scrobbler.engine.store import Account, ScrobbleStore  # noqa: E402

__all__ = [
    "Account",
    "BatchSupport",
    "CycleResult",
    "KnownMetadata",
    "RequestGate",
    "ScrobbleStore",
    "Scrobbler",
    "SpotifyClient",
]
