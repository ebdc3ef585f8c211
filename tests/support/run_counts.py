"""A pytest plugin that prints, at the end of the run, how many cases each fuzz entry point ran and
how many cells of the permission matrix were checked.

A fuzz test records ``record_property("fuzz_cases", json.dumps({"entry": ..., "cases": ...,
"seconds": ...}))``, a permission-matrix test ``record_property("permission_cells", json.dumps(
{"row": ..., "database": ..., "cells": ...}))``; the properties travel with the test reports (also
from pytest-xdist workers to the controller), and this plugin adds a "fuzz cases" and a
"permission matrix" section to the terminal summary, so the CI log shows the counts. Registered by
``pytest_plugins`` in tests/conftest.py (pytest reads that variable only in the root conftest).
"""

from __future__ import annotations

import json

import pytest

PROPERTY = "fuzz_cases"
PERMISSION_PROPERTY = "permission_cells"
# The entries of this run (one pytest session per process; under xdist the controller's).
_SESSION_ENTRIES: list[dict] = []
_PERMISSION_ROWS: list[dict] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name in (PROPERTY, PERMISSION_PROPERTY):
            entry = json.loads(value) if isinstance(value, str) else dict(value)
            entry["outcome"] = report.outcome
            (_SESSION_ENTRIES if name == PROPERTY else _PERMISSION_ROWS).append(entry)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _PERMISSION_ROWS:
        terminalreporter.section("permission matrix")
        for database in sorted({r["database"] for r in _PERMISSION_ROWS}):
            rows = [r for r in _PERMISSION_ROWS if r["database"] == database]
            failed = sum(r["outcome"] == "failed" for r in rows)
            terminalreporter.write_line(f"{database:<12} {len(rows):>4} rows (service × subject) "
                                        f"{sum(r['cells'] for r in rows):>5} cells (× role)  {failed} rows failed")
    if not _SESSION_ENTRIES:
        return
    terminalreporter.section("fuzz cases")
    groups: dict[str, list[dict]] = {}
    for entry in _SESSION_ENTRIES:
        groups.setdefault(entry.get("group", entry["entry"]), []).append(entry)
    for entry in _SESSION_ENTRIES:
        refused = f" ({entry['refused']} refused)" if "refused" in entry else ""
        terminalreporter.write_line(f"{entry['entry']:<48} {entry['cases']:>7} cases {entry.get('seconds', 0):>7.1f} s"
                                    f" {entry.get('cpu', 0):>7.1f} s CPU  {entry['outcome']}{refused}")
    for group, entries in groups.items():
        if len(entries) > 1:
            terminalreporter.write_line(_total(f"{group} (total over {len(entries)})", entries))
    terminalreporter.write_line(_total("all fuzz entry points", _SESSION_ENTRIES))


def _total(label: str, entries: list[dict]) -> str:
    return (f"{label:<48} {sum(e['cases'] for e in entries):>7} cases {sum(e.get('seconds', 0) for e in entries):>7.1f} s"
            f" {sum(e.get('cpu', 0) for e in entries):>7.1f} s CPU")
