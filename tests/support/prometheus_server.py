"""A real Prometheus server for tests: backfill OpenMetrics text with promtool, start, wait, stop.

Needs Debian's ``prometheus`` package (``prometheus`` and ``promtool`` on PATH, 2.42 tested).
:func:`find_binaries` returns None when they are missing, so callers can fail (CI) or skip.

Also a tiny HTTP server that misbehaves on purpose (answers 500, an error JSON, garbage, or
sleeps past the client's timeout), for the outage tests.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MINIMAL_CONFIG = """# No scrape targets: the TSDB holds only backfilled blocks.
global:
  scrape_interval: 1h
  evaluation_interval: 1h
scrape_configs: []
"""


def find_binaries() -> tuple[str, str] | None:
    """``(prometheus, promtool)`` paths, or None when either is missing."""
    prom, tool = shutil.which("prometheus"), shutil.which("promtool")
    return (prom, tool) if prom and tool else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """What the test servers share: the process they started, its log file, and stopping it."""

    workdir: Path
    process: subprocess.Popen | None
    log_name = "server.log"

    def stop(self) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / self.log_name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class PrometheusServer(ServerProcess):
    """A Prometheus process serving a TSDB built from OpenMetrics text."""

    log_name = "prometheus.log"

    workdir: Path
    prometheus: str
    promtool: str
    retention: str = "60d"
    port: int = 0
    process: subprocess.Popen | None = None
    # Prometheus 2.x range selectors include their left end, [t - d, t] (3.x made them left-open).
    left_open_ranges: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, openmetrics: str) -> None:
        """Write ``openmetrics`` and turn it into TSDB blocks with promtool."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        source = self.workdir / "fixture.om"
        source.write_text(openmetrics, encoding="utf-8")
        t0 = time.monotonic()
        result = subprocess.run([self.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
                                capture_output=True, text=True, timeout=300)
        self.timings["backfill_s"] = time.monotonic() - t0
        if result.returncode != 0:
            raise RuntimeError(f"promtool backfill failed ({result.returncode}): {result.stderr or result.stdout}")

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server on a free port and wait until ``/-/ready`` answers 200."""
        config = self.workdir / "prometheus.yml"
        config.write_text(MINIMAL_CONFIG, encoding="utf-8")
        self.port = self.port or free_port()
        log = (self.workdir / "prometheus.log").open("wb")
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            [self.prometheus, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.tsdb.retention.time={self.retention}",
             "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        self.timings["start_s"] = time.monotonic() - t0
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout_s}s: {self.log_tail()}")



class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        self.server.hits += 1  # type: ignore[attr-defined]
        if mode == "slow":
            time.sleep(self.server.delay_s)  # type: ignore[attr-defined]
            body, status = b'{"status":"success","data":{"resultType":"vector","result":[]}}', 200
        elif mode == "500":
            body, status = b"<html>internal error</html>", 500
        elif mode == "bad_data":
            body = json.dumps({"status": "error", "errorType": "bad_data",
                               "error": "exceeded maximum resolution of 11,000 points per timeseries"}).encode()
            status = 400
        elif mode == "canned":
            body, status = self.server.body, 200  # type: ignore[attr-defined]
        elif mode == "garbage":
            body, status = b"<html>a login page from some proxy</html>", 200
        else:
            body, status = b'{"status":"success","data":{"resultType":"vector","result":[]}}', 200
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class MisbehavingServer:
    """An HTTP server on 127.0.0.1 answering every request per ``mode``: "slow" (sleeps
    ``delay_s`` before answering), "500", "bad_data" (Prometheus error JSON, HTTP 400), "garbage"
    (HTML with 200), "canned" (``body`` with 200) or "ok" (empty vector)."""

    def __init__(self, mode: str, delay_s: float = 3.0, body: bytes = b"") -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.mode = mode  # type: ignore[attr-defined]
        self.httpd.delay_s = delay_s  # type: ignore[attr-defined]
        self.httpd.hits = 0  # type: ignore[attr-defined]
        self.httpd.body = body  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def hits(self) -> int:
        return self.httpd.hits  # type: ignore[attr-defined]

    def __enter__(self) -> "MisbehavingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
