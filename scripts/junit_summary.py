"""Print "N passed, M failed" for a pytest JUnit XML report (used by scripts/test)."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> None:
    """Summarise the report named on the command line."""
    report = Path(sys.argv[1])
    if not report.exists():
        print("0 passed, 0 failed (pytest wrote no report)")
        return
    passed = failed = skipped = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    # pytest can fail a run with every test passing (e.g. syrupy's unused snapshots).
    exit_code = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if exit_code and not failed:
        line += f" (pytest exit code {exit_code})"
    print(line)


if __name__ == "__main__":
    main()
