"""The demo behind scripts/demo: a real Home Assistant with the integration set up end to end.

Nothing here is used by the integration, the tests or CI. Three commands, each run by
scripts/demo in the chosen Home Assistant's virtualenv (PYTHONPATH holds the repository):

* ``hass``: Home Assistant itself, with the fake Spotify of tests/spotify_fake.py served from a
  thread of the same process. The integration's endpoint constants are pointed at the fake
  before HA starts (as the tests' fixture does), so the production code runs unchanged.
* ``drive``: what a user does in the UI, through HA's public REST and websocket APIs (the
  steps shared with scripts/verify_ha.py are in ha_client.py): onboarding, the Spotify app's
  credentials, the config flow (OAuth consent through the fake's /authorize redirect to HA's
  callback, then the MongoDB step), the history import action on a generated year of extended
  streaming history, and the README's dashboard.
* ``screenshot``: the dashboard rendered by headless Chromium, driven over the DevTools
  protocol with the user's tokens in localStorage (as the frontend keeps them after a login).
"""

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import random
import re
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from ha_client import Json, Ws, add_account, onboard, promote_http, state_of, websocket

from tests.export_fake import music_entry, write_export
from tests.spotify_fake import Catalog, FakeSpotify, listening_day

USER_ID = "myspotifyid"  # the README's example account, so its dashboard YAML works verbatim
DISPLAY_NAME = "Demo Listener"
DASHBOARD = "dashboard-spotify"  # a dashboard's URL path needs a hyphen
HISTORY_DAYS = 400
SEED = 2026


# --------------------------------------------------------------------------- listening data


def demo_catalog() -> Catalog:
    """The catalogue both the fake Spotify and the generated export use."""
    return Catalog.generate(n_tracks=600, n_albums=200, n_artists=90, seed=SEED)


def daily_minutes(rng: random.Random, day: datetime) -> float:
    """A plausible listener: more at weekends, a winter high, a summer holiday without music."""
    if datetime(day.year, 7, 20, tzinfo=UTC) <= day < datetime(day.year, 8, 3, tzinfo=UTC):
        return 0.0
    season = 1 + 0.35 * math.cos((day.timetuple().tm_yday - 15) / 365 * 2 * math.pi)
    weekend = 1.5 if day.weekday() >= 5 else 1.0
    if rng.random() < 0.06:  # a quiet day now and then
        return 0.0
    return max(0.0, rng.gauss(95, 30) * season * weekend)


def history_entries(catalog: Catalog, first_day: datetime, last_day: datetime) -> list[Any]:
    """Export entries, one listening session or two a day, from first_day to last_day."""
    rng = random.Random(SEED)
    track_ids = sorted(catalog.tracks)
    favourites = rng.sample(track_ids, 60)
    entries: list[Any] = []
    day = first_day
    while day <= last_day:
        budget_ms = daily_minutes(rng, day) * 60_000
        sessions = [(7.5, 0.3), (18.0, 0.7)] if day.weekday() < 5 else [(11.0, 0.5), (20.0, 0.5)]
        for start_hour, share in sessions:
            moment = day + timedelta(hours=start_hour + rng.uniform(-1, 1.5))
            spent = 0.0
            while spent < budget_ms * share:
                pool = favourites if rng.random() < 0.5 else track_ids
                track = catalog.tracks[rng.choice(pool)]
                # Most plays run to the end; some are skipped after a while.
                played = track.duration_ms if rng.random() < 0.8 else rng.randint(30_000, 90_000)
                moment += timedelta(milliseconds=played + rng.randint(500, 3000))
                entries.append(music_entry(catalog, track.id, moment, played))
                spent += played
        day += timedelta(days=1)
    return entries


# --------------------------------------------------------------------------- hass


def run_hass(config: Path) -> int:
    """Serve the fake Spotify, point the integration at it, then run Home Assistant."""
    # Imported here: the integration's modules import Home Assistant, which only `hass` needs.
    import homeassistant.__main__ as ha_main  # noqa: PLC0415

    from custom_components import spotify_scrobbler  # noqa: PLC0415
    from custom_components.spotify_scrobbler import (  # noqa: PLC0415
        application_credentials,
        config_flow,
    )

    now = datetime.now(UTC)
    catalog = demo_catalog()
    # Today's listening so far, for the live loop to scrobble (all of it has already happened).
    today = listening_day(catalog, now - timedelta(hours=5), plays=40, hours=4.5, seed=SEED)
    fake = FakeSpotify(catalog, today.plays, user_id=USER_ID, display_name=DISPLAY_NAME)
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        await fake.start()
        ready.set()
        await asyncio.Event().wait()  # until the process ends

    threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True).start()
    if not ready.wait(10):
        print("the fake Spotify did not start", file=sys.stderr)
        return 1
    print(f"fake Spotify on {fake.base_url}", file=sys.stderr, flush=True)

    # Where the tests' fixture points them too: the modules that read the endpoints.
    endpoints = (
        (spotify_scrobbler, "SPOTIFY_API_BASE", fake.api_url),
        (config_flow, "SPOTIFY_API_BASE", fake.api_url),
        (application_credentials, "SPOTIFY_AUTHORIZE_URL", fake.authorize_url),
        (application_credentials, "SPOTIFY_TOKEN_URL", fake.token_url),
    )
    for module, name, value in endpoints:
        setattr(module, name, value)

    sys.argv = ["hass", "-c", str(config), "--skip-pip"]
    return ha_main.main()


# --------------------------------------------------------------------------- drive


async def total_plays(ws: Ws) -> float:
    """Sum of the hourly plays statistic: what the graphs add up."""
    statistic = f"spotify_scrobbler:{USER_ID}_plays"
    result = await ws.call(
        "recorder/statistics_during_period",
        start_time="2000-01-01T00:00:00Z",
        statistic_ids=[statistic],
        period="month",
        types=["change"],
    )
    return float(sum(row.get("change") or 0 for row in result.get(statistic, [])))


async def import_history(
    session: aiohttp.ClientSession, ws: Ws, url: str, token: str, *, entry_id: str, export: Path
) -> None:
    """Run the import action and wait until its progress sensor reports it finished."""
    await ws.call(
        "call_service",
        domain="spotify_scrobbler",
        service="import_history",
        service_data={"config_entry_id": entry_id, "path": str(export)},
    )
    registry = await ws.call("config/entity_registry/list")
    sensor = next(
        e["entity_id"]
        for e in registry
        if e["config_entry_id"] == entry_id
        and e["entity_id"].startswith("sensor.")
        and "import" in e["entity_id"]
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = await state_of(session, url, token, sensor)
        status = state["attributes"].get("status")
        if status == "finished":
            print(f"import: {json.dumps(state['attributes'])}", file=sys.stderr)
            return
        if status == "failed":
            raise RuntimeError(f"the import failed: {state['attributes']}")
        await asyncio.sleep(1)
    raise RuntimeError("the import did not finish within 10 minutes")


def dashboard_config(readme: str) -> Json:
    """The README's dashboard example, as the one view of the default dashboard."""
    from homeassistant.util.yaml import parse_yaml  # noqa: PLC0415

    section = readme[readme.index("## Long-term statistics") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    if block is None:
        raise RuntimeError("no YAML example in the README's Long-term statistics section")
    return {
        "title": "Spotify",
        "views": [{"title": "Listening", "path": "listening", "cards": [parse_yaml(block[1])]}],
    }


def write_history(config: Path) -> tuple[Path, int]:
    """A year of extended streaming history in HA's media folder (an allowed path)."""
    now = datetime.now(UTC)
    last_day = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=1)
    first_day = last_day - timedelta(days=HISTORY_DAYS)
    entries = history_entries(demo_catalog(), first_day, last_day)
    export = config / "media" / "spotify_export"
    write_export(export, entries, per_file=5000)  # Spotify splits exports in files like this
    print(
        f"generated {len(entries)} plays from {first_day:%Y-%m-%d} to {last_day:%Y-%m-%d}",
        file=sys.stderr,
    )
    return export, len(entries)


async def drive(url: str, mongodb: str, export: Path, expected: int, dashboard: Json) -> Json:
    """Set everything up as a user would, check the statistics add up; the login's tokens."""
    async with aiohttp.ClientSession() as session:
        tokens = await onboard(session, url)
        async with websocket(session, url, tokens.access_token) as ws:
            await promote_http(ws)
            entry_id = await add_account(session, ws, url, tokens.access_token, mongodb)
            print(f"config entry {entry_id} set up", file=sys.stderr)
            await import_history(
                session, ws, url, tokens.access_token, entry_id=entry_id, export=export
            )
            await ws.call(
                "lovelace/dashboards/create",
                url_path=DASHBOARD,
                title="Spotify",
                icon="mdi:spotify",
                show_in_sidebar=True,
                require_admin=False,
                mode="storage",
            )
            await ws.call("lovelace/config/save", url_path=DASHBOARD, config=dashboard)
            # The statistics are rebuilt after the import in the background; wait until stable.
            total, deadline = -1.0, time.monotonic() + 300
            while time.monotonic() < deadline:
                total = await total_plays(ws)
                if total >= expected:
                    break
                await asyncio.sleep(2)
            print(
                f"statistics: {total:.0f} plays recorded "
                f"({expected} imported, the rest scrobbled live today)",
                file=sys.stderr,
            )
            if total < expected:
                raise RuntimeError("the statistics do not hold every imported play")
    return tokens.local_storage()


# --------------------------------------------------------------------------- screenshot


async def cdp_page(session: aiohttp.ClientSession, devtools: str) -> str:
    """The websocket URL of the browser's first page, once it listens."""
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{devtools}/json/list") as response:
                pages = [t for t in await response.json() if t["type"] == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
        await asyncio.sleep(0.2)
    raise RuntimeError("Chromium's DevTools endpoint did not answer")


async def screenshot(
    devtools: str, url: str, tokens: Json, width: int, height: int
) -> tuple[bytes, int]:
    """Log in through localStorage, open the dashboard, wait for both charts, save a PNG."""
    ids = itertools.count(1)
    async with aiohttp.ClientSession() as session:
        page = await cdp_page(session, devtools)
        async with session.ws_connect(page, max_msg_size=0) as socket:

            async def send(method: str, **params: Any) -> Json:
                message_id = next(ids)
                await socket.send_json({"id": message_id, "method": method, "params": params})
                while True:
                    answer = await socket.receive_json(timeout=60)
                    if answer.get("id") == message_id:
                        if "error" in answer:
                            raise RuntimeError(f"{method}: {answer['error']}")
                        return dict(answer["result"])

            await send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            script = (
                f"if (location.origin === {json.dumps(url)}) "
                f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))});"
            )
            await send("Page.enable")  # scripts for new documents only run with it
            await send("Page.addScriptToEvaluateOnNewDocument", source=script)
            await send("Page.navigate", url=f"{url}/{DASHBOARD}/listening")
            # Charts live deep in shadow roots; wait until both have drawn something.
            probe = """(() => {
                const found = [];
                const walk = (root) => root.querySelectorAll('*').forEach((el) => {
                    if (el.tagName === 'STATISTICS-CHART') found.push(el);
                    if (el.shadowRoot) walk(el.shadowRoot);
                });
                walk(document);
                const drawn = found.filter((chart) => {
                    const inner = [];
                    const look = (root) => root.querySelectorAll('*').forEach((el) => {
                        if (['CANVAS', 'svg', 'SVG'].includes(el.tagName)) inner.push(el);
                        if (el.shadowRoot) look(el.shadowRoot);
                    });
                    look(chart.shadowRoot || chart);
                    return inner.length > 0;
                });
                return drawn.length;
            })()"""
            deadline = time.monotonic() + 90
            drawn = 0
            while time.monotonic() < deadline:
                result = await send("Runtime.evaluate", expression=probe, returnByValue=True)
                drawn = int(result["result"].get("value") or 0)
                if drawn >= 2:
                    break
                await asyncio.sleep(1)
            if drawn >= 2:
                await asyncio.sleep(3)  # the charts' entry animation
            shot = await send("Page.captureScreenshot", format="png")
    return base64.b64decode(shot["data"]), drawn


# --------------------------------------------------------------------------- main


def main() -> int:
    """Dispatch to a command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    hass = commands.add_parser("hass")
    hass.add_argument("--config", type=Path, required=True)
    drive_cmd = commands.add_parser("drive")
    drive_cmd.add_argument("--url", required=True)
    drive_cmd.add_argument("--mongodb", required=True)
    drive_cmd.add_argument("--config", type=Path, required=True)
    drive_cmd.add_argument("--tokens", type=Path, required=True)
    shot = commands.add_parser("screenshot")
    shot.add_argument("--devtools", required=True)
    shot.add_argument("--url", required=True)
    shot.add_argument("--tokens", type=Path, required=True)
    shot.add_argument("--out", type=Path, required=True)
    shot.add_argument("--size", default="1280x900")
    args = parser.parse_args()

    if args.command == "hass":
        return run_hass(args.config)
    if args.command == "drive":
        export, expected = write_history(args.config)
        dashboard = dashboard_config(Path("README.md").read_text(encoding="utf-8"))
        tokens = asyncio.run(drive(args.url, args.mongodb, export, expected, dashboard))
        args.tokens.write_text(json.dumps(tokens), encoding="utf-8")
        return 0
    width, height = (int(part) for part in args.size.split("x"))
    tokens = json.loads(args.tokens.read_text(encoding="utf-8"))
    png, drawn = asyncio.run(screenshot(args.devtools, args.url, tokens, width, height))
    if drawn < 2:
        failed = args.out.with_suffix(".failed.png")
        failed.write_bytes(png)
        print(f"only {drawn} chart(s) rendered within 90 s; the page: {failed}", file=sys.stderr)
        return 1
    args.out.write_bytes(png)
    print(f"screenshot: {args.out} ({args.out.stat().st_size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
