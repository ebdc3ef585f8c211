"""The Prometheus-compatible metrics source (Prometheus, Thanos, VictoriaMetrics) behind :class:`MetricsSource`.

One server per cluster (HQ and provinces), or one central store for all of them (Thanos Query,
Mimir, a VictoriaMetrics cluster: the same API) whose series carry a label naming their cluster —
``COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL``, e.g. ``cluster``; then every cluster is listed with the
store's URL and each query for a cluster gets the matcher ``cluster="<name>"`` on every selector
(:func:`core.metrics.promql.scoped`). Every question is **one query per server** whatever
the number of GPUs or namespaces — the queries (:mod:`core.metrics.promql`) aggregate with
``by (...)`` and combine their figures with a ``stat`` label — except range queries, which are
split into chunks below Prometheus' 11,000-points-per-series limit. :attr:`PrometheusSource.query_count`
counts what was sent, for tests and benchmarks.

Errors are translated here, at the boundary: connection failures, timeouts, HTTP errors,
Prometheus error JSON and non-JSON answers all become :class:`MetricsUnavailable` naming the
cluster and URL. An empty result is an empty frame, never an error. :func:`with_last_good` turns
an outage into the last good frame plus its age, for "as of … (stale)" banners.

The decoders (``decode_*``) are pure functions from the API's JSON ``result`` list to frames or
typed records, so they are tested without a server.

Settings (read by :func:`prometheus_settings` when called): ``COMPUTELOOP_PROMETHEUS_URLS``
(``cluster=url`` pairs, comma-separated; empty = offline source), ``COMPUTELOOP_PROMETHEUS_TIMEOUT_S``
(default 10), ``COMPUTELOOP_PROMETHEUS_RETRIES`` (connection retries, default 1),
``COMPUTELOOP_PROMETHEUS_EXPORTER_NAMESPACES`` (default ``gpu-operator,nvidia-gpu-operator``) and
``COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL`` (empty: one server per cluster).
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Sequence

import polars as pl
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from core.clock import utc_now
from core.errors import ComputeLoopError, InputError
from core.i18n import Msg
from core.metrics import promql
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA, SERVING_STATS_SCHEMA

DEFAULT_EXPORTER_NAMESPACES: tuple[str, ...] = ("gpu-operator", "nvidia-gpu-operator")
# At most this many queries in flight at once per source (clusters and pieces of a window), whatever
# the setting says: a central store serves every province's portal too.
MAX_CONCURRENCY = 16

LATEST_SCHEMA: dict[str, pl.DataType] = {k: v for k, v in SAMPLE_SCHEMA.items() if k != "energy_mj"}
SERIES_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"), "cluster": pl.Utf8, "uuid": pl.Utf8, "hostname": pl.Utf8, "model": pl.Utf8,
    "namespace": pl.Utf8, "util": pl.Float64, "mem": pl.Float64, "power_w": pl.Float64,
}
REQUESTS_SCHEMA: dict[str, pl.DataType] = {"cluster": pl.Utf8, "namespace": pl.Utf8, "gpus": pl.Float64}
QUOTA_SCHEMA: dict[str, pl.DataType] = {"cluster": pl.Utf8, "namespace": pl.Utf8, "hard": pl.Float64, "used": pl.Float64}
ALLOCATABLE_SCHEMA: dict[str, pl.DataType] = {"cluster": pl.Utf8, "node": pl.Utf8, "gpus": pl.Float64}

MJ_PER_KWH = 3.6e9


# --------------------------------------------------------------------------- errors


class MetricsUnavailable(ComputeLoopError):
    """A metrics server could not answer: unreachable, timed out, HTTP error, error JSON, or not
    Prometheus at all. ``cluster`` and ``url`` name the server; when several servers were asked,
    ``partial`` holds the frame built from those that answered and ``failures`` every failure."""

    def __init__(self, key: str, *, cluster: str, url: str, **params: Any) -> None:
        self.cluster = cluster
        self.url = url
        self.partial: pl.DataFrame | None = None
        self.failures: list[MetricsUnavailable] = [self]
        super().__init__(key, cluster=cluster, url=url, **params)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PrometheusSettings:
    """The Prometheus part of the configuration."""

    servers: dict[str, str]
    timeout_s: float = 10.0
    retries: int = 1
    exporter_namespaces: tuple[str, ...] = DEFAULT_EXPORTER_NAMESPACES
    left_open_ranges: bool = False
    concurrency: int = 4
    cluster_label: str = ""  # the label telling clusters apart in a central store; "" = a server per cluster


def parse_servers(text: str) -> dict[str, str]:
    """``"hq=http://a:9090, js=http://b:9090"`` → ``{"hq": ..., "js": ...}``; a single bare URL
    becomes cluster ``default``. :class:`InputError` on anything else."""
    text = (text or "").strip()
    if not text:
        return {}
    if "=" not in text and "," not in text and re.match(r"^https?://", text):
        return {"default": text.rstrip("/")}
    servers: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        cluster, sep, url = entry.partition("=")
        cluster, url = cluster.strip(), url.strip().rstrip("/")
        if not sep or not cluster or not re.match(r"^https?://\S+$", url) or cluster in servers:
            raise InputError("prometheus.bad_urls_setting", field="COMPUTELOOP_PROMETHEUS_URLS", entry=entry)
        servers[cluster] = url
    return servers


def _number(env: str, default: str, cast: Callable[[str], float]) -> Any:
    raw = os.environ.get(env, default).strip() or default
    try:
        value = cast(raw)
    except ValueError:
        raise InputError("prometheus.bad_number_setting", field=env, value=raw) from None
    if value < 0 or (cast is float and value == 0):
        raise InputError("prometheus.bad_number_setting", field=env, value=raw)
    return value


def prometheus_settings() -> PrometheusSettings:
    """Read the Prometheus settings from the environment now (see the module docstring)."""
    namespaces = os.environ.get("COMPUTELOOP_PROMETHEUS_EXPORTER_NAMESPACES", ",".join(DEFAULT_EXPORTER_NAMESPACES))
    return PrometheusSettings(
        servers=parse_servers(os.environ.get("COMPUTELOOP_PROMETHEUS_URLS", "")),
        timeout_s=_number("COMPUTELOOP_PROMETHEUS_TIMEOUT_S", "10", float),
        retries=_number("COMPUTELOOP_PROMETHEUS_RETRIES", "1", int),
        exporter_namespaces=tuple(n.strip() for n in namespaces.split(",") if n.strip()),
        left_open_ranges=_ranges(os.environ.get("COMPUTELOOP_PROMETHEUS_RANGES", "closed")),
        concurrency=min(MAX_CONCURRENCY, max(1, _number("COMPUTELOOP_PROMETHEUS_CONCURRENCY", "4", int))),
        cluster_label=_cluster_label(os.environ.get("COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL", "")),
    )


def _cluster_label(value: str) -> str:
    """The central store's cluster label, checked as a Prometheus label name; "" when unset."""
    value = value.strip()
    if value and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", value):
        raise InputError("prometheus.bad_label_setting", field="COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL", value=value)
    return value


def _ranges(value: str) -> bool:
    """True for left-open range selectors ('open'); 'closed' (the default) for Prometheus 2.x."""
    value = value.strip().lower() or "closed"
    if value not in ("open", "closed"):
        raise InputError("error.choice", field="COMPUTELOOP_PROMETHEUS_RANGES", value=value, choices="open, closed")
    return value == "open"


def source_from_settings(settings: PrometheusSettings | None = None) -> "PrometheusSource | None":
    """A :class:`PrometheusSource` for the configured servers, or None when none is configured."""
    s = settings or prometheus_settings()
    if not s.servers:
        return None
    return PrometheusSource(s.servers, s.timeout_s, retries=s.retries, exporter_namespaces=s.exporter_namespaces,
                            left_open_ranges=s.left_open_ranges, concurrency=s.concurrency,
                            cluster_label=s.cluster_label)


# --------------------------------------------------------------------------- model names


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def model_mapper() -> Callable[[str], str]:
    """A function mapping DCGM ``modelName`` to a catalog id (``data/dcgm_models.yaml``, then the
    catalog's ids/aliases without a leading "NVIDIA "/"Tesla "); unknown names are returned as is."""
    from core.datafiles import load_yaml
    from core.estimation.catalog import load_catalog

    try:
        table = {_norm_name(k): str(v) for k, v in ((load_yaml("dcgm_models.yaml") or {}).get("models") or {}).items()}
    except InputError:
        table = {}
    catalog = load_catalog()
    cache: dict[str, str] = {}

    def lookup(name: str) -> str:
        if name in cache:
            return cache[name]
        found = table.get(_norm_name(name))
        if found is None:
            for candidate in (name, re.sub(r"^(nvidia\s+)?(tesla\s+)?", "", name.strip(), flags=re.I)):
                try:
                    found = catalog.get(candidate).id
                    break
                except InputError:
                    continue
        cache[name] = found or name
        return cache[name]

    return lookup


# --------------------------------------------------------------------------- pure decoders


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(float(seconds), 3), tz=timezone.utc)


def _workload(labels: Mapping[str, str], exporter_namespaces: Iterable[str]) -> tuple[str, str]:
    """(namespace, pod) after normalisation; the exporter's own namespace means an idle GPU."""
    ns, pod = labels.get("namespace", ""), labels.get("pod", "")
    if ns in set(exporter_namespaces):
        return "", ""
    return ns, pod


def _pivot(result: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[tuple, dict[str, float | None]]:
    rows: dict[tuple, dict[str, float | None]] = {}
    for item in result:
        labels = item.get("metric", {})
        key = tuple(labels.get(k, "") for k in keys)
        rows.setdefault(key, {})[labels.get(promql.STAT, "")] = _float(item.get("value", [None, None])[1])
    return rows


def decode_daily(result: Sequence[Mapping[str, Any]], *, cluster: str, day: date, step_s: int,
                 model_of: Callable[[str], str] = lambda m: m,
                 exporter_namespaces: Iterable[str] = DEFAULT_EXPORTER_NAMESPACES) -> pl.DataFrame:
    """Rows of :data:`ROLLUP_SCHEMA` from the answer to :func:`promql.daily_gpu_stats`, with the
    definitions of :mod:`core.metrics.rollup` (``used_gpu_hours`` = Σ util × step / 3600,
    ``allocated_gpu_hours`` 0 for the idle namespace "", ``coverage`` per GPU over all namespaces).
    Energy is the sum over the group's series of (max − min) of the counter: it misses the one
    scrape interval at each series boundary (pod or namespace change) that the offline rollup
    credits to the new namespace, and a counter reset within a series (see core.metrics.promql)."""
    expected = 86_400 // step_s
    out = []
    for key, stats in _pivot(result, promql.DAILY_KEYS).items():
        labels = dict(zip(promql.DAILY_KEYS, key))
        namespace, _ = _workload(labels, exporter_namespaces)
        samples = int(stats.get("samples") or 0)
        mean_util = stats.get("mean_util")
        allocated = samples * step_s / 3600.0 if namespace else 0.0
        energy = stats.get("energy_mj")
        used_sum, free_sum, used_max, used_n = (stats.get(k) for k in ("used_sum", "free_sum", "used_max", "used_n"))
        total = None if used_sum is None or free_sum is None else used_sum + free_sum
        mean_mem = used_sum / total if total else None
        peak_mem = used_max * used_n / total if total and used_max is not None and used_n else None
        out.append({
            "day": day, "cluster": cluster, "hostname": labels["hostname"], "uuid": labels["UUID"],
            "model": model_of(labels["modelName"]), "namespace": namespace,
            "mean_util": mean_util, "peak_util": stats.get("peak_util"),
            "mean_mem": mean_mem, "peak_mem": peak_mem,
            "allocated_gpu_hours": allocated,
            "used_gpu_hours": (mean_util or 0.0) * samples * step_s / 3600.0,
            "energy_kwh": None if energy is None else energy / MJ_PER_KWH,
            "samples": samples, "expected_samples": expected, "coverage": None,
        })
    frame = pl.DataFrame(out, schema=ROLLUP_SCHEMA)
    # coverage, as in core.metrics.rollup: the GPU's samples of the day in any namespace / expected
    return (frame.with_columns(coverage=pl.col("samples").sum().over("cluster", "uuid").cast(pl.Float64) / expected)
            .sort("cluster", "uuid", "namespace"))


def decode_latest(result: Sequence[Mapping[str, Any]], *, cluster: str, model_of: Callable[[str], str] = lambda m: m,
                  exporter_namespaces: Iterable[str] = DEFAULT_EXPORTER_NAMESPACES) -> pl.DataFrame:
    """Rows of :data:`LATEST_SCHEMA` (one per GPU) from the answer to :func:`promql.latest_samples`."""
    out = []
    for key, stats in _pivot(result, promql.LATEST_KEYS).items():
        labels = dict(zip(promql.LATEST_KEYS, key))
        if stats.get("ts") is None:
            continue  # memory or power without any utilisation series: not a GPU sample
        namespace, pod = _workload(labels, exporter_namespaces)
        out.append({
            "ts": _ts(stats["ts"]), "cluster": cluster, "hostname": labels["hostname"], "gpu": labels["gpu"],
            "uuid": labels["UUID"], "model": model_of(labels["modelName"]), "namespace": namespace, "pod": pod,
            "util": stats.get("util"), "fb_used_mib": stats.get("fb_used_mib"), "fb_free_mib": stats.get("fb_free_mib"),
            "power_w": stats.get("power_w"),
        })
    return pl.DataFrame(out, schema=LATEST_SCHEMA).sort("cluster", "hostname", "gpu")


def decode_series(result: Sequence[Mapping[str, Any]], *, cluster: str, model_of: Callable[[str], str] = lambda m: m,
                  exporter_namespaces: Iterable[str] = DEFAULT_EXPORTER_NAMESPACES) -> pl.DataFrame:
    """Rows of :data:`SERIES_SCHEMA` from the (matrix) answer to :func:`promql.gpu_series`."""
    rows: dict[tuple, dict[str, Any]] = {}
    for item in result:
        labels = item.get("metric", {})
        stat = labels.get(promql.STAT, "")
        if stat not in ("util", "mem", "power_w"):
            continue
        namespace, _ = _workload(labels, exporter_namespaces)
        for t, raw in item.get("values", []):
            key = (float(t), labels.get("UUID", ""), labels.get("hostname", ""), labels.get("modelName", ""), namespace)
            row = rows.setdefault(key, {"ts": _ts(t), "cluster": cluster, "uuid": key[1], "hostname": key[2],
                                        "model": model_of(key[3]), "namespace": namespace})
            row[stat] = _float(raw)
    frame = pl.DataFrame(list(rows.values()), schema=SERIES_SCHEMA) if rows else pl.DataFrame(schema=SERIES_SCHEMA)
    return frame.sort("cluster", "uuid", "namespace", "ts")


@dataclass(frozen=True)
class GpuRequest:
    """GPUs requested by the running pods of one namespace."""

    cluster: str
    namespace: str
    gpus: float


@dataclass(frozen=True)
class GpuQuota:
    """The GPU ResourceQuota (``requests.nvidia.com/gpu``) of one namespace."""

    cluster: str
    namespace: str
    hard: float | None
    used: float | None


@dataclass(frozen=True)
class NodeGpus:
    """Allocatable GPUs of one node."""

    cluster: str
    node: str
    gpus: float


def decode_gpu_requests(result: Sequence[Mapping[str, Any]], *, cluster: str) -> list[GpuRequest]:
    """Records from the answer to :func:`promql.running_gpu_requests`."""
    out = [GpuRequest(cluster, item["metric"].get("namespace", ""), _float(item["value"][1]) or 0.0) for item in result]
    return sorted(out, key=lambda r: r.namespace)


def decode_gpu_quotas(result: Sequence[Mapping[str, Any]], *, cluster: str) -> list[GpuQuota]:
    """Records from the answer to :func:`promql.gpu_quotas` (``hard``/``used`` by ``type``)."""
    by_ns: dict[str, dict[str, float | None]] = {}
    for item in result:
        labels = item["metric"]
        by_ns.setdefault(labels.get("namespace", ""), {})[labels.get("type", "")] = _float(item["value"][1])
    return [GpuQuota(cluster, ns, v.get("hard"), v.get("used")) for ns, v in sorted(by_ns.items())]


def decode_allocatable(result: Sequence[Mapping[str, Any]], *, cluster: str) -> list[NodeGpus]:
    """Records from the answer to :func:`promql.allocatable_gpus`."""
    out = [NodeGpus(cluster, item["metric"].get("node", ""), _float(item["value"][1]) or 0.0) for item in result]
    return sorted(out, key=lambda r: r.node)


def decode_serving(result: Sequence[Mapping[str, Any]], *, cluster: str) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(cluster, namespace): {stat: value}}`` from the answer to :func:`promql.serving_stats`
    (NaN, e.g. a quantile without observations, becomes None)."""
    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for item in result:
        labels = item.get("metric", {})
        stat = labels.get(promql.STAT, "")
        if stat:
            out.setdefault((cluster, labels.get("namespace", "")), {})[stat] = _float(item["value"][1])
    return out


def _records_frame(records: Sequence[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([r.__dict__ for r in records], schema=schema) if records else pl.DataFrame(schema=schema)


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class QueryRecord:
    """One query sent (kept for tests, benchmarks and debugging)."""

    cluster: str
    kind: str  # "instant" or "range"
    query: str
    points: int = 1


class PrometheusSource:
    """:class:`~core.metrics.schema.MetricsSource` over one Prometheus-compatible server per cluster.

    Args:
        servers: cluster id → base URL (``http://prometheus.hq:9090``).
        timeout: seconds per HTTP request (also sent to the server as the query timeout).
        retries: connection retries (not read timeouts, not HTTP errors: a slow server is not
            asked twice).
        exporter_namespaces: namespaces that only mean "the exporter's own" (idle GPU) under the
            ``exported_namespace`` label style.
        model_of: DCGM ``modelName`` → catalog id; default :func:`model_mapper` (lazily built).
        left_open_ranges: True for Prometheus ≥ 3 (left-open range selectors).
        max_points: points per series per range query (must stay below 11,000).

    Raises (every method): :class:`MetricsUnavailable` naming the failing server.
    """

    def __init__(self, servers: Mapping[str, str], timeout: float = 10.0, *, retries: int = 1,
                 exporter_namespaces: Iterable[str] = DEFAULT_EXPORTER_NAMESPACES,
                 model_of: Callable[[str], str] | None = None, left_open_ranges: bool = False,
                 max_points: int = promql.MAX_POINTS_PER_SERIES, concurrency: int = 4,
                 cluster_label: str = "") -> None:
        if not servers:
            raise ValueError("at least one Prometheus server is needed")
        if not 1 <= max_points < 11_000:
            raise ValueError("max_points must be between 1 and 10,999")
        self.servers = {c: u.rstrip("/") for c, u in servers.items()}
        self.timeout = timeout
        self.retries = retries
        self.exporter_namespaces = tuple(exporter_namespaces)
        self.left_open_ranges = left_open_ranges
        self.max_points = max_points
        self.concurrency = min(MAX_CONCURRENCY, max(1, int(concurrency)))
        self.cluster_label = cluster_label
        self._model_of = model_of
        self._clients: dict[str, PrometheusConnect] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._count: Counter[str] = Counter()
        self.log: deque[QueryRecord] = deque(maxlen=200)

    # ---- counting

    @property
    def query_count(self) -> int:
        """Queries sent so far (all servers, failed ones included)."""
        with self._lock:
            return sum(self._count.values())

    def queries_by_cluster(self) -> dict[str, int]:
        """Queries sent so far per cluster."""
        with self._lock:
            return dict(self._count)

    def reset_query_count(self) -> None:
        """Zero the counters and forget the log."""
        with self._lock:
            self._count.clear()
            self.log.clear()

    # ---- plumbing

    def model_of(self, name: str) -> str:
        """Catalog id of a DCGM ``modelName``."""
        if self._model_of is None:
            self._model_of = model_mapper()
        return self._model_of(name)

    def _client(self, cluster: str) -> PrometheusConnect:
        with self._lock:
            client = self._clients.get(cluster)
            if client is None:
                # Retry connecting only. read=False re-raises a read timeout as itself (read=0 would
                # turn it into a ConnectionError); HTTP errors come back as responses to decode.
                retry = Retry(total=self.retries, connect=self.retries, read=False, status=0, other=0,
                              backoff_factor=0.2, allowed_methods=None, raise_on_status=False)
                session = requests.Session()
                session.hooks["response"].append(self._remember_response)
                client = PrometheusConnect(url=self.servers[cluster], retry=retry, session=session,
                                           timeout=self.timeout, method="GET")
                self._clients[cluster] = client
            return client

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.response = response

    def _record(self, cluster: str, kind: str, query: str, points: int = 1) -> None:
        with self._lock:
            self._count[cluster] += 1
            self.log.append(QueryRecord(cluster, kind, query, points))

    def _translate(self, cluster: str, exc: Exception) -> MetricsUnavailable:
        url = self.servers[cluster]
        if isinstance(exc, requests.exceptions.InvalidJSONError):  # a RequestException, but the server did answer
            return MetricsUnavailable("prometheus.bad_response", cluster=cluster, url=url, reason=_short(exc))
        if isinstance(exc, requests.exceptions.Timeout):
            return MetricsUnavailable("prometheus.timeout", cluster=cluster, url=url, seconds=f"{self.timeout:g}")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return MetricsUnavailable("prometheus.unreachable", cluster=cluster, url=url, reason=_short(exc))
        if isinstance(exc, PrometheusApiClientException):
            response = getattr(self._local, "response", None)
            status = getattr(response, "status_code", "?")
            try:
                body = response.json() if response is not None else None
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("status") == "error":
                return MetricsUnavailable("prometheus.query_error", cluster=cluster, url=url,
                                          error_type=str(body.get("errorType", status)), reason=str(body.get("error", ""))[:300])
            text = response.text if response is not None else str(exc)
            return MetricsUnavailable("prometheus.http_error", cluster=cluster, url=url, status=status,
                                      reason=_short(text) or getattr(response, "reason", ""))
        if isinstance(exc, requests.exceptions.RequestException):
            return MetricsUnavailable("prometheus.unreachable", cluster=cluster, url=url, reason=_short(exc))
        return MetricsUnavailable("prometheus.bad_response", cluster=cluster, url=url, reason=_short(exc))

    def _call(self, cluster: str, send: Callable[[PrometheusConnect], Any]) -> list[dict]:
        self._local.response = None
        try:
            result = send(self._client(cluster))
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError, KeyError, TypeError) as exc:
            raise self._translate(cluster, exc) from exc
        if not isinstance(result, list):
            raise MetricsUnavailable("prometheus.bad_response", cluster=cluster, url=self.servers[cluster],
                                     reason=f"unexpected result {type(result).__name__}")
        return result

    def _scoped(self, cluster: str, query: str) -> str:
        """``query`` as sent for ``cluster``: limited to its series when one store holds every cluster."""
        return promql.scoped(query, self.cluster_label, cluster) if self.cluster_label else query

    def instant(self, cluster: str, query: str, at: datetime | None = None) -> list[dict]:
        """Run one instant query on ``cluster``'s server; the raw ``result`` list."""
        query = self._scoped(cluster, query)
        self._record(cluster, "instant", query)
        params = {"timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{_aware(at).timestamp():.3f}"
        return self._call(cluster, lambda c: c.custom_query(query, params=params))

    def range(self, cluster: str, query: str, start: datetime, end: datetime, step_s: int) -> list[dict]:
        """Run a range query on ``cluster``'s server, split into chunks of at most
        :attr:`max_points` points per series; the results of all chunks, concatenated."""
        query = self._scoped(cluster, query)
        out: list[dict] = []
        for lo, hi in promql.range_chunks(_aware(start), _aware(end), step_s, self.max_points):
            self._record(cluster, "range", query, promql.points(lo, hi, step_s))
            out.extend(self._call(cluster, lambda c: c.custom_query_range(
                query, start_time=lo, end_time=hi, step=str(step_s), params={"timeout": f"{self.timeout:g}s"})))
        return out

    def _each_server(self, fetch: Callable[[str], pl.DataFrame], schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """``fetch`` on every server at once; frames concatenated. On failure: MetricsUnavailable
        for the first failing cluster (in configuration order) with the rest as ``partial``."""
        clusters = list(self.servers)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(clusters))) as pool:
            futures = {c: pool.submit(fetch, c) for c in clusters}
        frames, failures = [], []
        for cluster in clusters:
            try:
                frames.append(futures[cluster].result())
            except MetricsUnavailable as exc:
                failures.append(exc)
        frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
        if failures:
            first = failures[0]
            first.partial = frame
            first.failures = failures
            raise first
        return frame

    # ---- MetricsSource

    def daily_gpu_stats(self, day: date, *, step_s: int = 60) -> pl.DataFrame:
        """Rows of :data:`ROLLUP_SCHEMA` for ``day`` (UTC), one per GPU × namespace; one query per server."""
        window = promql.day_window(day, left_open=self.left_open_ranges)
        query = promql.daily_gpu_stats(window)

        def fetch(cluster: str) -> pl.DataFrame:
            result = self.instant(cluster, query, at=window.eval_time)
            return decode_daily(result, cluster=cluster, day=day, step_s=step_s, model_of=self.model_of,
                                exporter_namespaces=self.exporter_namespaces)

        return self._each_server(fetch, ROLLUP_SCHEMA)

    def latest(self, at: datetime | None = None) -> pl.DataFrame:
        """The last sample per GPU at or before ``at`` (within Prometheus' 5-minute lookback):
        :data:`LATEST_SCHEMA` columns; one query per server."""
        query = promql.latest_samples()

        def fetch(cluster: str) -> pl.DataFrame:
            return decode_latest(self.instant(cluster, query, at=at), cluster=cluster, model_of=self.model_of,
                                 exporter_namespaces=self.exporter_namespaces)

        return self._each_server(fetch, LATEST_SCHEMA)

    def series(self, start: datetime, end: datetime, *, step_s: int, namespace: str | None = None) -> pl.DataFrame:
        """Per-GPU samples (:data:`SERIES_SCHEMA`) between ``start`` and ``end`` at ``step_s``,
        optionally for one namespace (escaped); one query per server per 10,000 steps."""
        query = promql.gpu_series(namespace=namespace)

        def fetch(cluster: str) -> pl.DataFrame:
            return decode_series(self.range(cluster, query, start, end, step_s), cluster=cluster,
                                 model_of=self.model_of, exporter_namespaces=self.exporter_namespaces)

        return self._each_server(fetch, SERIES_SCHEMA)

    def serving_stats(self, start: datetime, end: datetime) -> pl.DataFrame:
        """QPS and latency per cluster × namespace over ``[start, end)``
        (:data:`~core.metrics.schema.SERVING_STATS_SCHEMA`, see :mod:`core.metrics.serving`): one
        query per server whatever the number of services."""
        from core.metrics.serving import load_settings, stats_from_prometheus

        cfg = load_settings()
        window = promql.serving_window(_aware(start), _aware(end), cfg.peak_step_s, left_open=self.left_open_ranges)
        query = promql.serving_stats(window, cfg.exporters, namespace_labels=cfg.namespace_labels, quantile=cfg.quantile)

        def fetch(cluster: str) -> pl.DataFrame:
            parts = decode_serving(self.instant(cluster, query, at=window.eval_time), cluster=cluster)
            return stats_from_prometheus(parts, step_s=cfg.peak_step_s, window_s=window.seconds)

        return self._each_server(fetch, SERVING_STATS_SCHEMA)

    # ---- kube-state-metrics

    def gpu_requests(self, at: datetime | None = None) -> pl.DataFrame:
        """GPUs requested by running pods, by cluster and namespace (:data:`REQUESTS_SCHEMA`)."""
        query = promql.running_gpu_requests()
        return self._each_server(lambda c: _records_frame(decode_gpu_requests(self.instant(c, query, at), cluster=c),
                                                          REQUESTS_SCHEMA), REQUESTS_SCHEMA)

    def gpu_quotas(self, at: datetime | None = None) -> pl.DataFrame:
        """GPU quota hard/used by cluster and namespace (:data:`QUOTA_SCHEMA`)."""
        query = promql.gpu_quotas()
        return self._each_server(lambda c: _records_frame(decode_gpu_quotas(self.instant(c, query, at), cluster=c),
                                                          QUOTA_SCHEMA), QUOTA_SCHEMA)

    def allocatable_gpus(self, at: datetime | None = None) -> pl.DataFrame:
        """Allocatable GPUs by cluster and node (:data:`ALLOCATABLE_SCHEMA`)."""
        query = promql.allocatable_gpus()
        return self._each_server(lambda c: _records_frame(decode_allocatable(self.instant(c, query, at), cluster=c),
                                                          ALLOCATABLE_SCHEMA), ALLOCATABLE_SCHEMA)

    def close(self) -> None:
        """Close the HTTP sessions."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _short(value: Any, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text[:limit]


# --------------------------------------------------------------------------- stale fallback


@dataclass(frozen=True)
class Fetched:
    """A frame and how fresh it is: ``stale`` when the fetch failed and the last good frame is shown."""

    frame: pl.DataFrame
    as_of: datetime
    age: timedelta
    stale: bool
    error: MetricsUnavailable | None = field(default=None, compare=False)

    def banner(self) -> Msg | None:
        """The "as of … (stale)" message for pages, or None when fresh."""
        if not self.stale:
            return None
        return Msg("prometheus.stale", {"as_of": self.as_of.strftime("%Y-%m-%d %H:%M UTC"),
                                        "minutes": int(self.age.total_seconds() // 60)})


def with_last_good(fetch: Callable[[], pl.DataFrame], cache: MutableMapping[str, tuple[pl.DataFrame, datetime]],
                   *, key: str = "default", now: datetime | None = None) -> Fetched:
    """Call ``fetch``; remember its frame in ``cache[key]``. When it raises
    :class:`MetricsUnavailable`, return the last good frame (``stale=True``, with its age and the
    error) — or re-raise when there is none."""
    now = _aware(now or utc_now())
    try:
        frame = fetch()
    except MetricsUnavailable as exc:
        if key not in cache:
            raise
        frame, as_of = cache[key]
        return Fetched(frame, as_of, now - as_of, True, exc)
    cache[key] = (frame, now)
    return Fetched(frame, now, timedelta(0), False)
