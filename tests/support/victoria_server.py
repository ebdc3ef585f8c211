"""A real VictoriaMetrics (single node) for tests: start, import samples through its import API,
flush, stop.

Needs Debian's ``victoria-metrics`` package (``/usr/bin/victoria-metrics``, 1.79 tested). It speaks
the Prometheus query API, so the portal's Prometheus adapter reads it unchanged; samples go in
through ``/api/v1/import/prometheus`` (the text exposition format with millisecond timestamps), which
is far faster than promtool's backfill.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.prometheus_server import ServerProcess, free_port


def find_binary() -> str | None:
    """The ``victoria-metrics`` path, or None when it is missing."""
    return shutil.which("victoria-metrics")


def exposition_from_openmetrics(text: str) -> str:
    """OpenMetrics sample lines (timestamps in seconds) as Prometheus text exposition lines
    (timestamps in milliseconds); comments and ``# EOF`` dropped."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value, ts = line.rsplit(" ", 2)
        out.append(f"{head} {value} {int(round(float(ts) * 1000))}")
    return "\n".join(out) + "\n"


@dataclass
class VictoriaMetricsServer(ServerProcess):
    """A victoria-metrics process with its own storage folder."""

    log_name = "victoria.log"

    workdir: Path
    binary: str
    port: int = 0
    process: subprocess.Popen | None = None
    # VictoriaMetrics' range selectors are left-open, (t - d, t], like Prometheus 3's.
    left_open_ranges: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()  # more command-line flags (query limits of a large benchmark)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start on a free port and wait until ``/health`` answers."""
        self.port = self.port or free_port()
        log = (self.workdir / "victoria.log").open("wb")
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            [self.binary, f"-storageDataPath={self.workdir / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        self.timings["start_s"] = time.monotonic() - t0
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"victoria-metrics not ready after {timeout_s}s: {self.log_tail()}")

    def import_openmetrics(self, text: str, extra_labels: dict[str, str] | None = None) -> None:
        """Import OpenMetrics sample lines through the import API and make them searchable now;
        ``extra_labels`` are added to every series (the import API's ``extra_label``), as a central
        store's remote write adds a cluster's external labels."""
        t0 = time.monotonic()
        body = exposition_from_openmetrics(text).encode()
        query = urllib.parse.urlencode([("extra_label", f"{k}={v}") for k, v in (extra_labels or {}).items()])
        request = urllib.request.Request(f"{self.url}/api/v1/import/prometheus" + (f"?{query}" if query else ""),
                                         data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=120) as resp:
            if resp.status not in (200, 204):
                raise RuntimeError(f"import answered {resp.status}")
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=60):
            pass
        self.timings["import_s"] = time.monotonic() - t0
