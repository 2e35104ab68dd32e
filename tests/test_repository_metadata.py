"""What HACS's validators and hassfest read from the repository, checked without GitHub.

The rules restated here are the ones HACS's action and hassfest document for a custom
integration; GitHub-side checks (description, topics, issues enabled) cannot be seen from the
repository and are not covered.
"""

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
INTEGRATION = REPO / "custom_components" / "spotify_scrobbler"
MANIFEST = json.loads((INTEGRATION / "manifest.json").read_text())

# hacs.json keys HACS 2 reads for an integration (render_readme is ignored since HACS 2).
HACS_JSON_KEYS = {
    "name",
    "homeassistant",
    "hacs",
    "content_in_root",
    "filename",
    "zip_release",
    "hide_default_branch",
    "country",
    "persistent_directory",
}

# The rules of HA's Integration Quality Scale as of hassfest's quality_scale.py (2026).
QUALITY_SCALE_RULES = {
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow",
    "config-flow-test-coverage",
    "dependency-transparency",
    "docs-actions",
    "docs-conditions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "docs-triggers",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    "devices",
    "diagnostics",
    "discovery",
    "discovery-update-info",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    "async-dependency",
    "inject-websession",
    "strict-typing",
}


def test_hacs_json() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text())
    assert isinstance(hacs["name"], str)
    assert set(hacs) <= HACS_JSON_KEYS


def test_manifest_has_what_hacs_and_hassfest_require() -> None:
    assert MANIFEST["domain"] == INTEGRATION.name
    for key in ("name", "version", "documentation", "issue_tracker"):
        assert isinstance(MANIFEST[key], str), key
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert MANIFEST["documentation"].startswith("https://")
    assert MANIFEST["issue_tracker"].startswith("https://")
    assert isinstance(MANIFEST["codeowners"], list)
    # hassfest: domain, name, then the other keys in alphabetical order.
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_loggers_are_the_libraries() -> None:
    """`loggers` names the requirements' loggers (HA shows them as the integration's)."""
    libraries = {re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0] for req in MANIFEST["requirements"]}
    assert MANIFEST["loggers"]
    assert set(MANIFEST["loggers"]) <= libraries
    assert not any(name.startswith("custom_components") for name in MANIFEST["loggers"])


def test_brand_licence_and_readme() -> None:
    """HACS's brands (local assets), information and licence checks."""
    assert (INTEGRATION / "brand" / "icon.png").is_file()
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License\n")
    assert "Copyright (c) 2026 The spotify_scrobbler developers" in licence
    assert "(LICENSE)" in (REPO / "README.md").read_text()


def test_quality_scale_lists_every_rule() -> None:
    """hassfest's schema: every rule once, todo/done, or exempt with a comment."""
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    assert set(rules) == QUALITY_SCALE_RULES
    for name, value in rules.items():
        if isinstance(value, str):
            assert value in {"todo", "done"}, name
        else:
            assert set(value) == {"status", "comment"}, name
            assert value["status"] in {"todo", "done", "exempt"}, name
            assert isinstance(value["comment"], str), name
