"""How long the daily service-request rollup's Prometheus queries take at N services, asked whole
or in pieces (data/serving_metrics.yaml ``query_piece_s``):
`python -m bench.serving_pieces 100 [300 ...]` (needs `prometheus` and `promtool`; backfilling
300 services takes about a minute).

One day of 1-minute vLLM counters and latency histograms per service is backfilled into a real
Prometheus; :func:`core.metrics.serving_rollup.day_parts` reads it three times and the median is
printed with the number of queries, for the configured piece and for one whole-day query.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

from core.clock import utc_today
from core.metrics import serving
from core.metrics.prometheus import PrometheusSource
from core.metrics.serving_rollup import day_parts
from tests.support.prometheus_server import PrometheusServer, find_binaries

BUCKETS = ("0.3", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")


def openmetrics(services: int, start: datetime, steps: int) -> str:
    """Counters (as gauges: promtool backfills them) of ``services`` namespaces, one per minute."""
    rng, lines = random.Random(1), []
    stamps = [int((start + timedelta(minutes=k)).timestamp()) for k in range(steps)]
    for metric in ("vllm:request_success_total", "vllm:e2e_request_latency_seconds_sum",
                   "vllm:e2e_request_latency_seconds_count"):
        lines.append(f"# TYPE {metric} gauge")
        for i in range(services):
            value = 0.0
            for ts in stamps:
                value += rng.randint(0, 50)
                lines.append(f'{metric}{{namespace="svc-{i}",pod="p-{i}"}} {value} {ts}')
    bucket = "vllm:e2e_request_latency_seconds_bucket"
    lines.append(f"# TYPE {bucket} gauge")
    for i in range(services):
        for j, le in enumerate(BUCKETS):
            value = 0.0
            for ts in stamps:
                value += j * 5 + rng.randint(0, 3)
                lines.append(f'{bucket}{{namespace="svc-{i}",pod="p-{i}",le="{le}"}} {value} {ts}')
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


def run(services: int) -> None:
    day = utc_today() - timedelta(days=2)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    configured = serving.load_settings()
    with tempfile.TemporaryDirectory() as folder:
        server = PrometheusServer(Path(folder), *find_binaries(), retention="30d")
        server.backfill(openmetrics(services, start, 1440))
        server.start()
        try:
            source = PrometheusSource({"hq": server.url}, timeout=120, retries=0)
            for piece in (configured.query_piece_s, 86400):
                settings = dataclasses.replace(configured, query_piece_s=piece)
                with mock.patch.object(serving, "load_settings", return_value=settings):
                    total, queries = _median_read(source, day)
                print(f"{services} services, pieces of {piece} s: {queries} queries, {total:.2f} s a day, "
                      f"{total / queries:.2f} s a query", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    for n in sys.argv[1:] or ["100"]:
        run(int(n))
