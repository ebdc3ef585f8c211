"""The built-in load tester: sweep an HTTP endpoint over concurrency levels and write the plain
CSV curve (``concurrency,qps,mean_ms,p50_ms,p90_ms,p95_ms,p99_ms,errors``) that
:mod:`core.estimation.loadtest_formats` reads.

Closed loop: at each level N worker threads each send one request, wait for the answer, and send
the next. It is bounded on every side: a level stops at its duration or its request count,
whichever comes first; every request has a timeout; the whole sweep has a hard cap. Only the
standard library is used. Loopback URLs only unless ``allow_remote`` is set.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from core.errors import InputError
from core.text import csv_row

CSV_COLUMNS: tuple[str, ...] = ("concurrency", "qps", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "errors")
MODES: tuple[str, ...] = ("json", "openai")

# Bounds that keep one command from turning into a runaway process.
MAX_CONCURRENCY = 512
MAX_LEVELS = 32
MAX_DURATION_S = 600.0
MAX_TIMEOUT_S = 300.0
HARD_CAP_S = 1800.0  # the whole sweep, whatever the arguments

OPENAI_PROMPT = "Say hello in one short sentence."


@dataclass(frozen=True)
class LevelResult:
    """Measurements of one concurrency level."""

    concurrency: int
    requests: int
    errors: int
    elapsed_s: float
    latencies_ms: tuple[float, ...] = field(repr=False, default=())

    @property
    def qps(self) -> float:
        """Successful requests per second over the level's wall time."""
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def stats(self) -> dict[str, float | None]:
        """Mean and percentiles (ms) of the successful requests; None when there were none."""
        lat = sorted(self.latencies_ms)
        if not lat:
            return {k: None for k in ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")}
        return {
            "mean_ms": sum(lat) / len(lat),
            "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
            "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
        }

    def row(self) -> dict[str, Any]:
        """The CSV row of this level."""
        return {"concurrency": self.concurrency, "qps": self.qps, **self.stats(), "errors": self.errors}


@dataclass(frozen=True)
class SweepResult:
    """All levels of a sweep and whether the hard cap cut it short."""

    levels: tuple[LevelResult, ...]
    skipped_levels: tuple[int, ...] = ()

    def to_csv(self) -> str:
        """The plain CSV curve."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(csv_row(CSV_COLUMNS))
        for level in self.levels:
            row = level.row()
            writer.writerow(csv_row(_fmt(row[c]) for c in CSV_COLUMNS))
        return out.getvalue()

    def as_dict(self) -> dict:
        """Plain dict for JSON output."""
        return {
            "levels": [{**lvl.row(), "requests": lvl.requests, "elapsed_s": round(lvl.elapsed_s, 3)} for lvl in self.levels],
            "skipped_levels": list(self.skipped_levels),
        }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear-interpolation percentile (numpy's default method) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = (len(sorted_values) - 1) * pct / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


# ---------------------------------------------------------------------------------------------
# validation


def check_url(url: str, *, allow_remote: bool = False) -> str:
    """The URL if it is http(s) and loopback (or ``allow_remote``); InputError naming ``url`` otherwise."""
    parsed = urllib.parse.urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError("error.loadtest_bad_url", field="url", value=url)
    if allow_remote:
        return url
    host = parsed.hostname
    loopback = host.lower() == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False  # a host name: resolving it would already leave the machine
    if not loopback:
        raise InputError("error.loadtest_remote_refused", field="url", host=host)
    return url


def build_request(url: str, *, mode: str, body: str | None, model: str | None) -> tuple[str, bytes]:
    """(final URL, request body bytes) for ``mode``; a ``body`` that is not JSON is an InputError."""
    if mode not in MODES:
        raise InputError("error.loadtest_bad_mode", field="mode", value=mode, known=", ".join(MODES))
    if mode == "openai":
        parsed = urllib.parse.urlsplit(url)
        if parsed.path in ("", "/"):
            url = urllib.parse.urlunsplit(parsed._replace(path="/v1/completions"))
        payload: Any = {"model": model or "default", "prompt": OPENAI_PROMPT, "max_tokens": 16, "temperature": 0}
        if body:
            payload.update(_json_body(body))
        return url, json.dumps(payload).encode()
    return url, json.dumps(_json_body(body)).encode() if body else b"{}"


def _json_body(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InputError("error.loadtest_bad_body", field="body", detail=exc.msg) from None


# ---------------------------------------------------------------------------------------------
# running


def _opener() -> urllib.request.OpenerDirector:
    # No proxies: an http_proxy variable must not route loopback traffic elsewhere.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _send(opener: urllib.request.OpenerDirector, url: str, data: bytes, timeout: float, mode: str) -> bool:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as response:
            payload = response.read()
            if not 200 <= response.status < 300:
                return False
    except (urllib.error.URLError, OSError, ValueError):
        return False
    if mode == "openai":
        try:
            return "choices" in json.loads(payload)
        except (ValueError, TypeError):
            return False
    return True


def run_level(
    url: str, concurrency: int, *, duration_s: float, max_requests: int, timeout_s: float,
    mode: str = "json", data: bytes = b"{}", deadline: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LevelResult:
    """Run one level: ``concurrency`` workers until ``duration_s`` or ``max_requests`` (first wins)."""
    start = clock()
    stop_at = start + duration_s
    if deadline is not None:
        stop_at = min(stop_at, deadline)
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    errors = 0

    def worker() -> None:
        nonlocal issued, errors
        opener = _opener()
        while True:
            with lock:
                if issued >= max_requests or clock() >= stop_at:
                    return
                issued += 1
            t0 = clock()
            ok = _send(opener, url, data, timeout_s, mode)
            elapsed_ms = (clock() - t0) * 1000.0
            with lock:
                if ok:
                    latencies.append(elapsed_ms)
                else:
                    errors += 1

    threads = [threading.Thread(target=worker, name=f"loadtest-{concurrency}-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    # A worker can overrun the stop time by at most one request, itself bounded by its timeout.
    join_until = stop_at + timeout_s + 5.0
    for thread in threads:
        thread.join(max(0.0, join_until - clock()))
    end = clock()
    with lock:
        return LevelResult(
            concurrency=concurrency, requests=issued, errors=errors, elapsed_s=end - start,
            latencies_ms=tuple(latencies),
        )


def run_sweep(
    url: str, levels: list[int], *, duration_s: float = 20.0, max_requests: int = 100_000,
    timeout_s: float = 30.0, mode: str = "json", body: str | None = None, model: str | None = None,
    allow_remote: bool = False, hard_cap_s: float = HARD_CAP_S,
    progress: Callable[[LevelResult], None] | None = None,
) -> SweepResult:
    """Sweep ``url`` over ``levels`` one level at a time; bounded by the per-level limits and a hard cap.

    Raises:
        InputError: a non-loopback URL without ``allow_remote``, a bad mode or body, or limits
            outside the documented bounds (each names its field).
    """
    check_url(url, allow_remote=allow_remote)
    validate_limits(levels=levels, duration_s=duration_s, max_requests=max_requests, timeout_s=timeout_s)
    final_url, data = build_request(url, mode=mode, body=body, model=model)
    deadline = time.perf_counter() + min(hard_cap_s, HARD_CAP_S)
    results: list[LevelResult] = []
    skipped: list[int] = []
    for level in levels:
        if time.perf_counter() >= deadline:
            skipped.append(level)
            continue
        result = run_level(
            final_url, level, duration_s=duration_s, max_requests=max_requests, timeout_s=timeout_s,
            mode=mode, data=data, deadline=deadline,
        )
        results.append(result)
        if progress:
            progress(result)
    return SweepResult(levels=tuple(results), skipped_levels=tuple(skipped))


def validate_limits(*, levels: list[int], duration_s: float, max_requests: int, timeout_s: float) -> None:
    """InputError naming the field when a limit is outside the tester's bounds."""
    if not levels or len(levels) > MAX_LEVELS or any(not 1 <= c <= MAX_CONCURRENCY for c in levels):
        raise InputError(
            "error.loadtest_bad_levels", field="concurrency", value=",".join(map(str, levels)),
            max_levels=MAX_LEVELS, max_concurrency=MAX_CONCURRENCY,
        )
    if len(set(levels)) != len(levels):
        raise InputError(
            "error.loadtest_bad_levels", field="concurrency", value=",".join(map(str, levels)),
            max_levels=MAX_LEVELS, max_concurrency=MAX_CONCURRENCY,
        )
    for name, value, high in (("duration", duration_s, MAX_DURATION_S), ("timeout", timeout_s, MAX_TIMEOUT_S)):
        if not 0 < value <= high:
            raise InputError("error.loadtest_limit", field=name, value=value, high=high)
    if max_requests < 1:
        raise InputError("error.loadtest_limit", field="max_requests", value=max_requests, high="-")
