"""The check behind scripts/verify-ha: the integration set up end to end on a running HA.

Run by scripts/verify-ha against a Home Assistant started with ``scripts/demo.py hass`` (the
fake Spotify of tests/spotify_fake.py in the same process) and a fresh FerretDB. Everything
goes through HA's public HTTP and websocket APIs, as the UI does: onboarding, the Spotify
app's credentials, the config flow over /api/config/config_entries/flow (OAuth consent, then
the MongoDB step), then the entry must be loaded, its entities registered and available, the
first cycle's plays stored (total plays above 0) and its long-term statistics written, an
automation saved as the UI editor does must load (the default configuration's includes), and a
reload must bring the entry back. Last, HA's log must hold no error of the integration. Prints
one line, PASS or FAIL, and what it saw.
"""

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from ha_client import DOMAIN, Ws, add_account, checked, onboard, promote_http, websocket

TIMEOUT = 120.0
# Always logged for a custom integration: not a finding.
UNTESTED = "has not been tested by Home Assistant"


async def entry_state(ws: Ws, entry_id: str) -> str:
    """The config entry's state as the UI shows it (loaded, setup_retry...)."""
    entries = await ws.call("config_entries/get", domain=DOMAIN)
    return next((str(e["state"]) for e in entries if e["entry_id"] == entry_id), "missing")


async def wait_loaded(ws: Ws, entry_id: str) -> None:
    """Until the entry is loaded; raises with the last state after TIMEOUT."""
    deadline, state = time.monotonic() + TIMEOUT, ""
    while time.monotonic() < deadline:
        if (state := await entry_state(ws, entry_id)) == "loaded":
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the entry is {state!r}, not loaded, after {TIMEOUT:.0f} s")


async def states(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    """entity_id -> state object, from GET /api/states."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{url}/api/states", headers=headers) as response:
        return {s["entity_id"]: s for s in await checked(response)}


async def wait_for(what: str, probe: Any) -> Any:
    """Until the coroutine function probe returns something true; raises after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(1)
    raise RuntimeError(f"{what} within {TIMEOUT:.0f} s")


async def check_statistics(ws: Ws) -> int:
    """The long-term statistics the integration writes (the recorder of default_config)."""

    async def ours() -> list[str]:
        listed = await ws.call("recorder/list_statistic_ids", statistic_type="sum")
        return [s["statistic_id"] for s in listed if s["statistic_id"].startswith(f"{DOMAIN}:")]

    return len(await wait_for("no long-term statistics of the integration", ours))


async def check_automation(session: aiohttp.ClientSession, url: str, token: str) -> None:
    """Save an automation as the UI editor does: it must load (automations.yaml included)."""
    headers = {"Authorization": f"Bearer {token}"}
    automation = {
        "id": "verify_ha",
        "alias": "verify-ha",
        "description": "",
        "triggers": [{"trigger": "event", "event_type": "verify_ha"}],
        "conditions": [],
        "actions": [],
        "mode": "single",
    }
    async with session.post(
        f"{url}/api/config/automation/config/verify_ha", json=automation, headers=headers
    ) as response:
        await checked(response)

    async def loaded() -> bool:
        return any(
            eid.startswith("automation.") and s["attributes"].get("id") == "verify_ha"
            for eid, s in (await states(session, url, token)).items()
        )

    await wait_for("the automation saved in the UI did not load", loaded)


async def verify(url: str, mongodb: str) -> str:
    """Drive everything; a summary of what was seen (raises on the first failure)."""
    started = time.monotonic()
    took: list[str] = []  # how long each step took, for the summary

    def lap(step: str) -> None:
        took.append(f"{step} {time.monotonic() - started:.0f} s")

    async with aiohttp.ClientSession() as session:
        tokens = await onboard(session, url)
        token = tokens.access_token
        async with websocket(session, url, token) as ws:
            await promote_http(ws)
            entry_id = await add_account(session, ws, url, token, mongodb)
            lap("flow")
            await wait_loaded(ws, entry_id)
            lap("loaded")
            registry = await ws.call("config/entity_registry/list")
            ours = {e["entity_id"]: e for e in registry if e.get("config_entry_id") == entry_id}
            if not ours:
                raise RuntimeError("the loaded entry registered no entities")
            total_plays = next(
                (eid for eid, e in ours.items() if str(e["unique_id"]).endswith("_total_plays")),
                None,
            )
            if total_plays is None:
                raise RuntimeError(f"no total plays sensor among {sorted(ours)}")
            # The first cycle fetches the fake's plays of today and stores them in MongoDB.
            deadline, seen = time.monotonic() + TIMEOUT, {}
            while time.monotonic() < deadline:
                seen = await states(session, url, token)
                value = seen.get(total_plays, {}).get("state", "")
                if re.fullmatch(r"\d+(\.\d+)?", value) and float(value) > 0:
                    break
                await asyncio.sleep(1)
            else:
                value = seen.get(total_plays, {}).get("state")
                raise RuntimeError(f"{total_plays} is {value!r}, no plays stored")
            lap("plays")
            statistics = await check_statistics(ws)
            await check_automation(session, url, token)
            missing = [eid for eid in ours if eid not in seen]
            unavailable = [eid for eid in ours if seen.get(eid, {}).get("state") == "unavailable"]
            if missing or unavailable:
                raise RuntimeError(f"entities without a state {missing}, unavailable {unavailable}")
            headers = {"Authorization": f"Bearer {token}"}
            reload = f"{url}/api/config/config_entries/entry/{entry_id}/reload"
            async with session.post(reload, headers=headers) as response:
                await checked(response)
            await wait_loaded(ws, entry_id)
            lap("reloaded")
    return (
        f"config flow -> entry loaded, {len(ours)} entities available, "
        f"{total_plays} = {float(value):.0f}, {statistics} long-term statistics, "
        f"a UI automation saved and loaded, reload -> loaded "
        f"(after {', '.join(took)})"
    )


def log_findings(log_file: Path) -> tuple[list[str], list[str]]:
    """Errors and warnings in HA's log that name the integration (tracebacks included)."""
    errors: list[str] = []
    warnings: list[str] = []
    record: list[str] = []

    def flush() -> None:
        text = "\n".join(record)
        if DOMAIN in text and UNTESTED not in text:
            if " ERROR " in record[0] or " CRITICAL " in record[0]:
                errors.append(text)
            elif " WARNING " in record[0]:
                warnings.append(text)
        record.clear()

    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) and record:
            flush()
        record.append(line)
    if record:
        flush()
    return errors, warnings


def main() -> int:
    """Verify, check the log, print PASS or FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the HA version, for the report")
    parser.add_argument("--url", required=True)
    parser.add_argument("--mongodb", required=True)
    parser.add_argument("--log", type=Path, required=True, help="HA's home-assistant.log")
    args = parser.parse_args()
    try:
        summary = asyncio.run(verify(args.url, args.mongodb))
    except Exception as err:  # noqa: BLE001  # any failure is the verdict
        print(f"FAIL Home Assistant {args.version}: {err}")
        return 1
    errors, warnings = log_findings(args.log)
    for finding in warnings:
        print(f"  warning in HA's log: {finding}", file=sys.stderr)
    if errors:
        print(f"FAIL Home Assistant {args.version}: {len(errors)} error(s) in HA's log:")
        for finding in errors:
            print(f"  {finding}")
        return 1
    print(f"PASS Home Assistant {args.version}: {summary}; {len(warnings)} warning(s) in the log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
