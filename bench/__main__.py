"""Run every benchmark and print a Markdown table (copied into the README).

`python -m bench` runs all; `python -m bench <group>` one (estimation, rollup, pages, prometheus).
Estimation targets are for one core, so that group is pinned to one CPU; the rollup, page and
Prometheus targets are for this 2-core machine, so they run on all cores. Every row is (name,
value, target), lower is better, the unit in the name.

* estimation — one estimate / recommendation (bench/estimation.py);
* rollup — a month of the demo fleet rolled up, polars vs pandas (bench/rollup.py), and a plain
  exporter's day, ours vs DuckDB (bench/rollup_duckdb.py);
* pages — server-side render time of every page with AppTest, demo fleet and a 10,000-GPU fleet
  (bench/pages.py, about 1.5 min);
* prometheus — queries per page and per rollup day at 100 and 1,000 allocations against a real
  Prometheus (bench/prometheus_queries.py, about 30 s; needs `prometheus` and `promtool`);
* browser — every page of every menu in Chromium, by URL and from the sidebar, on the data of
  `make run` (bench/browser.py, about 20 min; needs /usr/bin/chromium). With options
  (`python -m bench browser --fleet 10k --repeat 5 ...`, see `--help`) it prints its own table.
"""

from __future__ import annotations

import os
import platform
import sys

from bench import browser, estimation, pages, prometheus_queries, rollup


def _estimation_rows() -> list[tuple[str, float, float]]:
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if allowed:
        os.sched_setaffinity(0, {min(allowed)})
    try:
        return [(f"{name} (ms, 1 core)", ms, target) for name, ms, target in estimation.run()]
    finally:
        if allowed:
            os.sched_setaffinity(0, allowed)


GROUPS = {"estimation": _estimation_rows, "rollup": rollup.run, "pages": pages.run,
          "prometheus": prometheus_queries.run, "browser": browser.run}


def main(argv: list[str]) -> int:
    if argv[:1] == ["browser"] and len(argv) > 1:  # options: the browser bench's own table
        return browser.main(argv[1:])
    chosen = argv or list(GROUPS)
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        sys.stderr.write(f"unknown benchmark group(s): {', '.join(unknown)}; choose from {', '.join(GROUPS)}\n")
        return 2
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores\n")
    print("| benchmark | measured | target | |")
    print("|---|---:|---:|---|")
    failed = 0
    for group in chosen:
        for name, value, target in GROUPS[group]():
            ok = value <= target
            failed += not ok
            print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
