"""A FerretDB process of a test's own, to kill and restart (scripts/test builds the binary)."""

import asyncio
import contextlib
import os
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FerretDBProcess:
    """One embedded-FerretDB server on a fixed port and data directory."""

    def __init__(self, binary: str, data_dir: Path, *extra_args: str) -> None:
        """Configure (not start) the server; restarts keep the port and the data."""
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.extra_args = extra_args
        self._process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        """A URI with short timeouts, so that a killed server fails fast."""
        return f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=1500"

    async def start(self) -> None:
        """Start and wait until the port accepts connections."""
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "-listen",
            f"127.0.0.1:{self.port}",
            "-dir",
            str(self.data_dir),
            *self.extra_args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(200):
            if self._process.returncode is not None:
                raise RuntimeError(f"FerretDB exited with {self._process.returncode}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("FerretDB did not start listening within 10 s")

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crash or a pulled plug."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None


def launcher_path() -> str | None:
    """The binary scripts/test exported, if it exists."""
    path = os.environ.get("FERRETDB_LAUNCHER")
    return path if path and os.access(path, os.X_OK) else None
