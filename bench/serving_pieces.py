"""How long the daily service-request rollup's queries take at N services, asked whole or in
pieces (data/serving_metrics.yaml ``query_piece_s``), against a real metrics store:
`python -m bench.serving_pieces [--store prometheus|victoria] [--concurrency 1,4] 100 [300 ...]`.

One day of 1-minute vLLM counters and latency histograms per service goes into the store —
Prometheus by promtool backfill (needs `prometheus` and `promtool`; 300 services take about a
minute), or a single-node VictoriaMetrics through its import API (Debian's `victoria-metrics`; much
faster, so 1,000 services are practical) — and :func:`core.metrics.serving_rollup.day_parts` reads
it three times for each concurrency (queries in flight at once, ``COMPUTELOOP_PROMETHEUS_CONCURRENCY``);
the median is printed with the number of queries, for the configured piece and for one whole-day
query.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from unittest import mock

from core.clock import utc_today
from core.metrics import serving
from core.metrics.prometheus import PrometheusSource
from core.metrics.serving_rollup import day_parts
from tests.support.prometheus_server import PrometheusServer, find_binaries
from tests.support.victoria_server import VictoriaMetricsServer, find_binary

BUCKETS = ("0.3", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")


def openmetrics(services: int, start: datetime, steps: int, first: int = 0) -> str:
    """Counters (as gauges: promtool backfills them) of ``services`` namespaces (``svc-<first>``
    onwards), one per minute."""
    rng, lines = random.Random(1 + first), []
    stamps = [int((start + timedelta(minutes=k)).timestamp()) for k in range(steps)]
    for metric in ("vllm:request_success_total", "vllm:e2e_request_latency_seconds_sum",
                   "vllm:e2e_request_latency_seconds_count"):
        lines.append(f"# TYPE {metric} gauge")
        for i in range(services):
            value = 0.0
            for ts in stamps:
                value += rng.randint(0, 50)
                lines.append(f'{metric}{{namespace="svc-{first + i}",pod="p-{first + i}"}} {value} {ts}')
    bucket = "vllm:e2e_request_latency_seconds_bucket"
    lines.append(f"# TYPE {bucket} gauge")
    for i in range(services):
        for j, le in enumerate(BUCKETS):
            value = 0.0
            for ts in stamps:
                value += j * 5 + rng.randint(0, 3)
                lines.append(f'{bucket}{{namespace="svc-{first + i}",pod="p-{first + i}",le="{le}"}} {value} {ts}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _median_read(source: PrometheusSource, day) -> tuple[float, int]:
    times = []
    for _ in range(3):
        source.reset_query_count()
        started = time.perf_counter()
        day_parts(source, day)
        times.append(time.perf_counter() - started)
    return sorted(times)[1], source.query_count


IMPORT_CHUNK = 50  # services per import request to VictoriaMetrics (about 60 MB of text)


@contextmanager
def filled_store(store: str, services: int, start: datetime, folder: Path) -> Iterator[object]:
    """A running store holding one day of ``services``' samples from ``start``."""
    if store == "victoria":
        server = VictoriaMetricsServer(folder, find_binary() or "victoria-metrics")
        server.start()
        started = time.perf_counter()
        for first in range(0, services, IMPORT_CHUNK):
            server.import_openmetrics(openmetrics(min(IMPORT_CHUNK, services - first), start, 1440, first))
        print(f"{services} services imported into VictoriaMetrics in {time.perf_counter() - started:.1f} s", flush=True)
    else:
        server = PrometheusServer(folder, *find_binaries(), retention="30d")
        server.backfill(openmetrics(services, start, 1440))
        server.start()
    try:
        yield server
    finally:
        server.stop()


def run(services: int, store: str = "prometheus", concurrencies: tuple[int, ...] = (1,)) -> None:
    day = utc_today() - timedelta(days=2)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    configured = serving.load_settings()
    with tempfile.TemporaryDirectory() as folder, filled_store(store, services, start, Path(folder)) as server:
        for concurrency in concurrencies:
            source = PrometheusSource({"hq": server.url}, timeout=120, retries=0,
                                      left_open_ranges=server.left_open_ranges, concurrency=concurrency)
            for piece in (configured.query_piece_s, 86400):
                settings = dataclasses.replace(configured, query_piece_s=piece)
                with mock.patch.object(serving, "load_settings", return_value=settings):
                    total, queries = _median_read(source, day)
                print(f"{store}, {services} services, pieces of {piece} s, {concurrency} in flight: {queries} queries, "
                      f"{total:.2f} s a day, {total / queries:.2f} s a query", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving_pieces", description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", type=int, default=[100], help="numbers of services (default 100)")
    parser.add_argument("--store", choices=("prometheus", "victoria"), default="prometheus")
    parser.add_argument("--concurrency", default="1", help="queries in flight at once, comma-separated (default 1)")
    args = parser.parse_args(argv)
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    for n in args.services:
        run(n, args.store, concurrencies)


if __name__ == "__main__":
    main()
