"""Fail when any module of the integration is below the per-module coverage bar.

    python scripts/coverage_check.py COVERAGE_DATA_FILE [MINIMUM]

Reads the data file one pin's pytest run wrote (scripts/test sets COVERAGE_FILE) with the
configuration in pyproject.toml (branch coverage on), and prints every module of
custom_components/spotify_scrobbler, engine/ included, whose branch-aware coverage is below
MINIMUM percent (default 95), then exits 1. A total above the bar can hide a weak module;
this is why the check is per module.

scripts/test runs it only after a full-suite run: when its arguments merely change pytest's
output (-q, -v, -s, -x, --tb=..., -r..., -p PLUGIN). Any other argument (a test path, -k, -m,
--no-cov, ...) may run part of the suite, whose coverage says nothing, so the check is skipped.
"""

import json
import sys
import tempfile
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "spotify_scrobbler"
DEFAULT_MINIMUM = 95.0


def module_coverage(data_file: Path) -> dict[str, float]:
    """Branch-aware percent covered of each module of the package found in the data file."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=True)
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        try:
            cov.json_report(outfile=str(out))
        except NoDataError:
            return {}
        report = json.loads(out.read_text(encoding="utf-8"))
    found: dict[str, float] = {}
    for name, entry in report["files"].items():
        path = Path(name).resolve()
        if path.is_relative_to(PACKAGE):
            found[str(path.relative_to(PACKAGE))] = float(entry["summary"]["percent_covered"])
    return found


def main(argv: list[str]) -> int:
    """Print the modules under the bar; 0 when there are none."""
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    data_file = Path(argv[1])
    minimum = float(argv[2]) if len(argv) == 3 else DEFAULT_MINIMUM
    if not data_file.exists():
        print(f"coverage check: no data file {data_file}", file=sys.stderr)
        return 1
    found = module_coverage(data_file)
    # A module the run never imported is missing from the data file: it counts as 0 %.
    for path in sorted(PACKAGE.rglob("*.py")):
        found.setdefault(str(path.relative_to(PACKAGE)), 0.0)
    low = {name: pct for name, pct in sorted(found.items()) if pct < minimum}
    lowest = min(found.items(), key=lambda item: item[1])
    if not low:
        print(
            f"coverage check: all {len(found)} modules >= {minimum:g} % "
            f"(lowest {lowest[0]} {lowest[1]:.1f} %)"
        )
        return 0
    print(f"coverage check: {len(low)} module(s) below {minimum:g} % (branch-aware):")
    for name, pct in low.items():
        print(f"  {name}: {pct:.1f} %")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
