"""A FerretDB process of a test's own, to kill and restart (scripts/test builds the binary)."""

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FerretDBProcess:
    """One embedded-FerretDB server on a fixed port and data directory."""

    def __init__(
        self, binary: str, data_dir: Path, *extra_args: str, tls: tuple[Path, Path] | None = None
    ) -> None:
        """Configure (not start) the server; restarts keep the ports and the data.

        ``tls`` (certificate, key) adds a TLS listener on ``tls_port`` next to the plain one.
        """
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        if tls:
            cert, key = tls
            tls_args = ("-tls-listen", f"127.0.0.1:{self.tls_port}", "-tls-cert", str(cert))
            extra_args = (*extra_args, *tls_args, "-tls-key", str(key))
        self.extra_args = extra_args
        self._process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        """A URI with short timeouts, so that a killed server fails fast."""
        return f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=1500"

    async def start(self) -> None:
        """Start and wait until the ports accept connections."""
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
        ports = [port for port in (self.port, self.tls_port) if port is not None]
        for _ in range(200):
            if self._process.returncode is not None:
                raise RuntimeError(f"FerretDB exited with {self._process.returncode}")
            if all([await _accepts(port) for port in ports]):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("FerretDB did not start listening within 10 s")

    def freeze(self, *, frozen: bool = True) -> None:
        """SIGSTOP/SIGCONT: a hung server that keeps its connections open but never answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crash or a pulled plug."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None


async def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
        return True
    return False


def launcher_path() -> str | None:
    """The binary scripts/test exported, if it exists."""
    path = os.environ.get("FERRETDB_LAUNCHER")
    return path if path and os.access(path, os.X_OK) else None
