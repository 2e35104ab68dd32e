"""A MongoDB wire-protocol proxy that loses replies on purpose.

It sits between the integration and FerretDB and forwards every message. Scripted rules
make it lose the reply to the next command of a kind (the write reached MongoDB, the
acknowledgement did not: the client's connection is closed), or send a command twice and
answer with the second reply (what a driver's retried write sees: duplicate keys).
"""

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from typing import Any, Literal

import bson
from pymongo.uri_parser import parse_uri

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode


@dataclass
class Rule:
    """What to do with the next ``times`` commands ``command`` on ``collection``."""

    command: str
    collection: str
    action: Literal["lose_reply", "send_twice"]
    times: int = 1


def command_of(body: bytes) -> tuple[str, str] | None:
    """(command name, collection) of an OP_MSG body (after the header), if it has one."""
    if len(body) < 5 or body[4] != 0:  # flagBits, then a kind-0 section first
        return None
    (size,) = struct.unpack_from("<i", body, 5)
    doc = bson.decode(body[5 : 5 + size])
    name = next(iter(doc), None)
    if name is None:
        return None
    target = doc[name]
    return str(name), target if isinstance(target, str) else ""


class MongoProxy:
    """127.0.0.1:<port> → 127.0.0.1:<upstream_port>, with scripted reply faults."""

    def __init__(self, upstream_host: str, upstream_port: int, userinfo: str = "") -> None:
        """Forward to FerretDB (or any MongoDB) at ``upstream_host:upstream_port``."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.userinfo = userinfo
        self.rules: list[Rule] = []
        self.applied: list[tuple[str, str, str]] = []  # (action, command, collection)
        self.record_commands = False  # keep every command forwarded in ``commands``
        self.commands: list[dict[str, Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.down = False  # MongoDB unreachable: every connection is dropped at once
        # MongoDB hung (SIGSTOP): connections stay open, commands are held, nothing answers;
        # once thawed the held commands reach the server, late.
        self._thawed = asyncio.Event()
        self._thawed.set()

    @property
    def uri(self) -> str:
        """A direct connection with short timeouts."""
        credentials = f"{self.userinfo}@" if self.userinfo else ""
        return (
            f"mongodb://{credentials}127.0.0.1:{self.port}/"
            "?directConnection=true&serverSelectionTimeoutMS=1500"
        )

    def lose_reply(self, command: str, collection: str, times: int = 1) -> None:
        """The next ``times`` such commands are executed, their replies never arrive."""
        self.rules.append(Rule(command, collection, "lose_reply", times))

    def send_twice(self, command: str, collection: str, times: int = 1) -> None:
        """The next ``times`` such commands run twice; the client gets the second reply."""
        self.rules.append(Rule(command, collection, "send_twice", times))

    def set_down(self, *, down: bool = True) -> None:
        """Make MongoDB unreachable (like a killed server) or reachable again."""
        self.down = down
        if down:
            for writer in list(self._writers):
                writer.close()

    @property
    def frozen(self) -> bool:
        """Whether commands are held (a hung server)."""
        return not self._thawed.is_set()

    def set_frozen(self, *, frozen: bool = True) -> None:
        """Hang MongoDB like SIGSTOP does, or let it go on (the held commands then run)."""
        if frozen:
            self._thawed.clear()
        else:
            self._thawed.set()

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        self.down = True
        if self._server is not None:
            self._server.close()
        while self._tasks or self._writers:
            for writer in list(self._writers):
                writer.close()
            self._writers.clear()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
                self._tasks.discard(task)
        if self._server is not None:
            with contextlib.suppress(OSError):
                await self._server.wait_closed()

    def _log(self, body: bytes) -> None:
        if len(body) >= 5 and body[4] == 0:
            (size,) = struct.unpack_from("<i", body, 5)
            self.commands.append(bson.decode(body[5 : 5 + size]))

    def _take(self, body: bytes) -> Rule | None:
        if self.record_commands:
            self._log(body)
        found = command_of(body)
        if found is None:
            return None
        for rule in self.rules:
            if (rule.command, rule.collection) == found:
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                self.applied.append((rule.action, *found))
                return rule
        return None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if self.down:
            client_w.close()
            self._tasks.discard(task)
            return
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        self._writers.add(server_w)
        lose: set[int] = set()
        skip_first: set[int] = set()
        pump = asyncio.create_task(self._replies(server_r, client_w, lose, skip_first))
        self._tasks.add(pump)
        try:
            while True:
                message = await _read_message(client_r)
                if message is None:
                    break
                _, request_id, _, op_code = HEADER.unpack_from(message)
                rule = self._take(message[HEADER.size :]) if op_code == OP_MSG else None
                if rule is not None and rule.action == "lose_reply":
                    lose.add(request_id)
                await self._thawed.wait()
                if rule is not None and rule.action == "send_twice":
                    skip_first.add(request_id)
                    server_w.write(message)
                server_w.write(message)
                await server_w.drain()
        except OSError, asyncio.IncompleteReadError:
            pass
        finally:
            for writer in (client_w, server_w):
                writer.close()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pump
            self._tasks.discard(pump)
            self._tasks.discard(task)
            self._writers.discard(client_w)
            self._writers.discard(server_w)

    @staticmethod
    async def _replies(
        server_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        lose: set[int],
        skip_first: set[int],
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while (message := await _read_message(server_r)) is not None:
                _, _, response_to, _ = HEADER.unpack_from(message)
                if response_to in skip_first:
                    skip_first.discard(response_to)
                    continue
                if response_to in lose:
                    # Executed by the server, never acknowledged: the client sees the
                    # connection drop.
                    client_w.close()
                    return
                client_w.write(message)
                await client_w.drain()


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    (length,) = struct.unpack_from("<i", header)
    return header + await reader.readexactly(length - HEADER.size)


def proxy_for(uri: str) -> MongoProxy:
    """A proxy (not started) in front of the first server of ``uri``, with its credentials."""
    parsed = parse_uri(uri)
    host, port = parsed["nodelist"][0]
    userinfo = f"{parsed['username']}:{parsed['password']}" if parsed["username"] else ""
    return MongoProxy(host, port, userinfo)
