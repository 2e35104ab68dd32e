"""The engine is Home Assistant-free, and every module stays one room of one job."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "custom_components" / "spotify_scrobbler"
ENGINE = PACKAGE / "engine"
MAX_LINES = 500


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, relative level) of every import statement, wherever it is in the file."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("path", sorted(ENGINE.glob("*.py")), ids=lambda p: p.name)
def test_engine_module_imports_no_home_assistant(path: Path) -> None:
    """Neither Home Assistant itself nor the glue package around the engine."""
    for module, level in _imported_modules(path):
        assert not module.startswith("homeassistant"), f"{path.name} imports {module}"
        assert level <= 1, f"{path.name} reaches out of the engine ({'.' * level}{module})"
        assert not module.startswith("custom_components"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_module_stays_small(path: Path) -> None:
    """Past ~500 lines a module is doing more than one job."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"
