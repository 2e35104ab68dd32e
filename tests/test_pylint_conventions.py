"""scripts/pylint/hass_conventions.py: the HA conventions scripts/test holds the code to."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pylint")  # installed from requirements/lint.txt (the lint virtualenv)

REPO = Path(__file__).resolve().parent.parent

BAD = '''"""A module breaking each convention once."""

import logging

from custom_components.spotify_scrobbler.const import DOMAIN
from homeassistant.config_entries import ConfigEntry, ConfigFlow

_LOGGER = logging.getLogger(DOMAIN)
LIMIT = float("inf")


async def async_setup_entry(hass: object, entry: ConfigEntry) -> bool:
    """Set up."""
    _LOGGER.warning("lower case start")
    _LOGGER.error("A full stop.")
    _LOGGER.debug("lower case is fine at debug")
    _LOGGER.info("%s: a prefixed message starts with its placeholder", DOMAIN)
    _LOGGER.log(logging.WARNING, "lower case through log()")
    return True


class Flow(ConfigFlow, domain=DOMAIN):
    """A flow."""

    @staticmethod
    def async_get_options_flow(config_entry: ConfigEntry) -> None:
        """Options."""
'''


def test_each_convention_is_reported(tmp_path: Path) -> None:
    module = tmp_path / "custom_components" / "spotify_scrobbler" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(BAD)
    run = subprocess.run(  # noqa: S603  # our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "pylint",
            f"--rcfile={REPO / 'pyproject.toml'}",
            "--output-format=json",
            "--disable=all",
            "--enable=hass-conventions,consider-math-not-float",
            str(module),
        ],
        cwd=REPO,  # the init-hook finds scripts/pylint from the repository root
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted((m["symbol"], m["line"]) for m in json.loads(run.stdout))
    assert found == [
        ("consider-math-not-float", 9),
        ("hass-logger-capital", 14),
        ("hass-logger-capital", 18),
        ("hass-logger-name", 8),
        ("hass-logger-period", 15),
        ("hass-relative-import", 5),
        ("hass-typed-config-entry", 12),
        ("hass-typed-config-entry", 26),
    ], run.stderr
