"""MongoDB access for the benchmark: one client whose command events are counted."""

import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

type Document = dict[str, Any]
type Database = AsyncDatabase[Document]

# Connection handshake, authentication and monitoring: not round trips of the application.
NOT_COUNTED = frozenset(
    {
        "hello",
        "ismaster",
        "ping",
        "endsessions",
        "saslstart",
        "saslcontinue",
        "authenticate",
        "getnonce",
        "buildinfo",
    }
)


@dataclass(slots=True)
class Command:
    """One command the driver sent (a round trip to the server)."""

    database: str
    name: str
    target: str  # collection (or other first argument) of the command
    duration_ms: float | None = None
    ok: bool = True


@dataclass(slots=True)
class CommandLog(CommandListener):
    """Every counted command, in order; durations filled in when the answer arrives."""

    commands: list[Command] = field(default_factory=list)
    _pending: dict[tuple[int, Any], Command] = field(default_factory=dict)

    def started(self, event: CommandStartedEvent) -> None:
        """Record a command (CommandStartedEvent = one request sent to the server)."""
        if event.command_name.lower() in NOT_COUNTED:
            return
        target = event.command.get(event.command_name)
        command = Command(event.database_name, event.command_name, str(target))
        self.commands.append(command)
        self._pending[event.request_id, event.connection_id] = command

    def succeeded(self, event: CommandSucceededEvent) -> None:
        """Attach the duration."""
        command = self._pending.pop((event.request_id, event.connection_id), None)
        if command is not None:
            command.duration_ms = event.duration_micros / 1000

    def failed(self, event: CommandFailedEvent) -> None:
        """Attach the duration and mark the failure."""
        command = self._pending.pop((event.request_id, event.connection_id), None)
        if command is not None:
            command.duration_ms = event.duration_micros / 1000
            command.ok = False

    def mark(self) -> int:
        """A position to count from."""
        return len(self.commands)

    def since(self, mark: int, database: str) -> list[Command]:
        """Commands sent to ``database`` after ``mark``."""
        return [c for c in self.commands[mark:] if c.database == database]


def breakdown(commands: list[Command]) -> str:
    """'find infos x1, update users x2, ...' in order of first appearance."""
    counts = Counter(f"{c.name} {c.target}" for c in commands)
    return ", ".join(f"{key} x{n}" for key, n in counts.items())


def mongodb_uri() -> str:
    """The server scripts/bench started (or the user's)."""
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        raise SystemExit("MONGODB_URI is not set: run the benchmark through scripts/bench")
    return uri


def make_client(log: CommandLog) -> AsyncMongoClient[Document]:
    """A client like the integration's (tz-aware), with the command log attached."""
    return AsyncMongoClient(
        mongodb_uri(), tz_aware=True, serverSelectionTimeoutMS=5_000, event_listeners=[log]
    )


def database_name(label: str) -> str:
    """A fresh database name for this run."""
    return f"bench_{secrets.token_hex(3)}_{label}"
