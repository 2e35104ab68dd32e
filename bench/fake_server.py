"""The Spotify fake in a process of its own, serving the timed '50 new plays' windows.

Used for the timed cycles, so that the fake's own work (rendering payloads) neither runs on
the measured event loop nor competes for its GIL. Prints the API base URL, then reads
commands from standard input until EOF:

    now <unix ms>   set the fake's clock (answers "ok")
"""

import asyncio
import contextlib
import sys

from bench.workload import standard_catalog, timed_windows
from tests.spotify_fake import FakeSpotify, from_unix_ms


async def serve(windows: int) -> None:
    """Serve until stdin reaches EOF."""
    catalog = standard_catalog()
    plays = [play for window in timed_windows(catalog, windows) for play in window.plays]
    fake = FakeSpotify(catalog, plays)
    await fake.start()
    print(fake.api_url, flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, _, argument = line.strip().partition(" ")
            if command == "now":
                fake.now = from_unix_ms(int(argument))
                print("ok", flush=True)
            else:
                print(f"error: unknown command {command!r}", flush=True)
    finally:
        await fake.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        asyncio.run(serve(int(sys.argv[1])))
