"""Pylint checks for the Home Assistant conventions this integration follows.

HA core enforces these with pylint plugins of its own that are not published as a package, so
this is the project's own, smaller version of the checks that matter here (float("inf") is
pylint's own consider-math-not-float, from the code_style extension). Loaded through
`[tool.pylint.main]` in pyproject.toml; `scripts/test` runs it on the integration.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from astroid import nodes
from pylint.checkers import BaseChecker

if TYPE_CHECKING:
    from pylint.lint import PyLinter

PACKAGE = "custom_components.spotify_scrobbler"

# What HA users see in their log: everything above debug.
VISIBLE_LEVELS = frozenset({"info", "warning", "error", "exception", "critical"})
VISIBLE_LEVEL_NAMES = frozenset({"INFO", "WARNING", "ERROR", "CRITICAL", "FATAL"})
LOGGER_NAME = re.compile(r"_?logger$", re.IGNORECASE)

# Entry points HA calls with the config entry, and the argument position it arrives at; a
# typed entry (`FooConfigEntry = ConfigEntry[FooData]`) is what hassfest's runtime-data rule
# asks for once strict-typing is done.
ENTRY_ARGUMENT: dict[str, int] = {
    "async_setup_entry": 1,
    "async_unload_entry": 1,
    "async_remove_entry": 1,
    "async_migrate_entry": 1,
    "async_remove_config_entry_device": 1,
    "async_get_config_entry_diagnostics": 1,
    "async_get_device_diagnostics": 1,
}
TYPED_ENTRY = re.compile(r"^[A-Za-z]+ConfigEntry$")


def _in_package(node: nodes.NodeNG) -> bool:
    """Whether the node's module is part of the integration (the checks are HA's, not ours)."""
    module = node.root()
    return module.name.startswith(PACKAGE) or "/custom_components/" in (module.file or "")


def _is_logger(node: nodes.NodeNG) -> bool:
    """`_LOGGER`, `LOGGER`, `logger`, `self.logger`, `self._logger`."""
    name = None
    if isinstance(node, nodes.Name):
        name = node.name
    elif isinstance(node, nodes.Attribute):
        name = node.attrname
    return name is not None and LOGGER_NAME.search(name) is not None


def _logged_message(call: nodes.Call) -> nodes.Const | None:
    """The message constant of a log call at a level users see, else None."""
    func = call.func
    if not isinstance(func, nodes.Attribute) or not _is_logger(func.expr):
        return None
    args = list(call.args)
    if func.attrname == "log":
        # logger.log(logging.WARNING, "...") is visible; a computed level is not judged.
        if len(args) < 2:
            return None
        level = args[0]
        if not (isinstance(level, nodes.Attribute) and level.attrname in VISIBLE_LEVEL_NAMES):
            return None
        args = args[1:]
    elif func.attrname not in VISIBLE_LEVELS or not args:
        return None
    message = args[0]
    if isinstance(message, nodes.Const) and isinstance(message.value, str) and message.value:
        return message
    return None


class HassConventionsChecker(BaseChecker):
    """Log message style, logger names, imports and typed config entries."""

    name = "hass-conventions"
    msgs: ClassVar[dict[str, tuple[str, str, str]]] = {
        "C9501": (
            "Log message above debug should start with a capital letter: %r",
            "hass-logger-capital",
            "HA's convention for what users read in their log: rephrase, or lower to debug.",
        ),
        "C9502": (
            "Log message should not end with a period: %r",
            "hass-logger-period",
            "HA's convention: log lines are not sentences with a full stop.",
        ),
        "W9504": (
            "Import %r relatively (from .%s import ...)",
            "hass-relative-import",
            "A custom integration must work whatever the name of the folder it is installed in.",
        ),
        "W9505": (
            "Name the module's logger with logging.getLogger(__name__)",
            "hass-logger-name",
            "HA's logger settings (manifest loggers, logger: in YAML) rely on module names.",
        ),
        "W9506": (
            "%s should take the typed config entry (SpotifyScrobblerConfigEntry), not %s",
            "hass-typed-config-entry",
            "hassfest's runtime-data rule asks for it once strict-typing is done.",
        ),
    }

    def visit_call(self, node: nodes.Call) -> None:
        """Log calls and getLogger."""
        if not _in_package(node):
            return
        if (message := _logged_message(node)) is not None:
            text = str(message.value)
            if text[0].isalpha() and text[0].islower():
                self.add_message("hass-logger-capital", node=node, args=(text,))
            if text.endswith(".") and not text.endswith(".."):
                self.add_message("hass-logger-period", node=node, args=(text,))
        func = node.func
        if (
            isinstance(func, nodes.Attribute)
            and func.attrname == "getLogger"
            and isinstance(func.expr, nodes.Name)
            and func.expr.name == "logging"
            and not (
                len(node.args) == 1
                and isinstance(node.args[0], nodes.Name)
                and node.args[0].name == "__name__"
            )
        ):
            self.add_message("hass-logger-name", node=node)

    def visit_importfrom(self, node: nodes.ImportFrom) -> None:
        """`from custom_components.spotify_scrobbler.x import y` inside the integration."""
        if _in_package(node) and node.level in (None, 0) and node.modname.startswith(PACKAGE):
            rest = node.modname.removeprefix(PACKAGE).lstrip(".")
            self.add_message("hass-relative-import", node=node, args=(node.modname, rest))

    def visit_import(self, node: nodes.Import) -> None:
        """`import custom_components.spotify_scrobbler.x` inside the integration."""
        if not _in_package(node):
            return
        for modname, _alias in node.names:
            if modname.startswith(PACKAGE):
                rest = modname.removeprefix(PACKAGE).lstrip(".")
                self.add_message("hass-relative-import", node=node, args=(modname, rest))

    def visit_asyncfunctiondef(self, node: nodes.AsyncFunctionDef) -> None:
        """Module-level entry points that receive the config entry."""
        if (
            _in_package(node)
            and isinstance(node.parent, nodes.Module)
            and (position := ENTRY_ARGUMENT.get(node.name)) is not None
        ):
            self._check_entry_annotation(node, position)

    def visit_functiondef(self, node: nodes.FunctionDef) -> None:
        """A config flow's async_get_options_flow(config_entry)."""
        if (
            _in_package(node)
            and node.name == "async_get_options_flow"
            and isinstance(node.parent, nodes.ClassDef)
        ):
            self._check_entry_annotation(node, 0)

    def _check_entry_annotation(self, node: nodes.FunctionDef, position: int) -> None:
        arguments = node.args.args or []
        if len(arguments) <= position:
            return
        annotation = node.args.annotations[position]
        if isinstance(annotation, nodes.Name) and TYPED_ENTRY.match(annotation.name):
            return
        shown = annotation.as_string() if annotation is not None else "no annotation"
        self.add_message("hass-typed-config-entry", node=node, args=(node.name, shown))


def register(linter: PyLinter) -> None:
    """Pylint's plugin entry point."""
    linter.register_checker(HassConventionsChecker(linter))
