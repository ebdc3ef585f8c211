"""Run every benchmark on one core and print a Markdown table (copied into the README)."""

from __future__ import annotations

import os
import platform
import sys

from bench import estimation


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the targets are for one core
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores (pinned to 1)\n")
    print("| benchmark | median | target | |")
    print("|---|---:|---:|---|")
    failed = 0
    for name, ms, target in estimation.run():
        ok = ms <= target
        failed += not ok
        print(f"| {name} | {ms:.2f} ms | < {target:.0f} ms | {'ok' if ok else 'MISSED'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
