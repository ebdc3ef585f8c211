"""Pure builders of every PromQL query the portal sends, with escaping of values that come from people.

Nothing here talks to a server: each function returns a query string, so the queries can be
read, unit-tested and counted. :mod:`core.metrics.prometheus` sends them and decodes the answers.

Label normalisation is done **in PromQL** (``label_replace``), not in the decoder, because the
grouping (``sum by (...)``) happens on the server: two series of the same GPU and namespace must
fall into the same group whichever label style they arrived with. After :func:`normalise`:

* ``namespace`` = ``exported_namespace`` when that label is present and non-empty, else ``namespace``
  (dcgm-exporter's Helm chart scrapes with ``honor_labels: false``, so the workload's namespace
  arrives as ``exported_namespace`` and ``namespace`` holds the exporter's own namespace);
* ``pod`` = ``exported_pod`` likewise; ``hostname`` = ``Hostname`` when present, else ``hostname``.

The source labels are kept, so ``label_replace`` never produces two series with one label set.

Daily aggregates use range functions over the raw samples of the day — ``sum_over_time``,
``count_over_time``, ``max_over_time``, ``min_over_time`` — evaluated at the day's last
millisecond over a ``86399999ms`` window. Prometheus 2.x range selectors include both ends, so
the window is exactly ``[00:00, 24:00)`` at millisecond resolution: the same half-open day and
the same samples the offline rollup reads from Parquet. (Prometheus 3 made ranges left-open; pass
``left_open=True`` there and the window becomes ``86400000ms``.) We deliberately avoid:

* ``avg_over_time`` per series followed by ``avg by``: a GPU that changed pods within a namespace
  has several series, and an average of averages would weight them wrongly; ``sum / count``
  aggregated by the group is the exact mean of the samples;
* subqueries (``[1d:60s]``): they resample at aligned steps, pick up the 5-minute lookback after
  a series ends (backfilled data has no staleness markers) and miss or repeat jittered scrapes;
* ``increase()`` for energy: it extrapolates to the window edges. Energy is ``max − min`` of the
  counter per series (= last − first, the counter being monotonic between reboots), summed over
  the group's series. This equals :mod:`core.metrics.rollup`'s sum of consecutive deltas except
  at series boundaries: when a pod or namespace changes on a GPU, the rollup credits the interval
  between the old series' last sample and the new one's first to the new namespace, which range
  functions (one series at a time) cannot see — at most one scrape interval of energy per pod
  change. Taking ``max − min`` over the whole group instead would catch it but would credit a
  namespace with everything in between when a GPU leaves it and comes back the same day, which
  pooled clusters do all the time. A counter reset inside a series is also not corrected.

Memory occupancy is ``FB_USED / (FB_USED + FB_FREE)`` per sample. ``FB_USED + FB_FREE`` is
constant for a GPU (framebuffer total minus the driver's fixed reservation), so the mean of the
ratio equals ``Σused / (Σused + Σfree)`` and the peak equals ``max(used) · n / (Σused + Σfree)``
— which range functions compute without a subquery. The daily query returns those sums and the
decoder divides (one query either way, but a shorter URL).

Queries go out as GET (prometheus-api-client 0.7.2 puts the query in the URL even for POST), so
their length matters: the longest one, the daily query, is about 5 KB URL-encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence

PROF_UTIL = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
DEV_UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
POWER = "DCGM_FI_DEV_POWER_USAGE"
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"

KSM_REQUESTS = "kube_pod_container_resource_requests"
KSM_PHASE = "kube_pod_status_phase"
KSM_QUOTA = "kube_resourcequota"
KSM_ALLOCATABLE = "kube_node_status_allocatable"
GPU_RESOURCE = "nvidia_com_gpu"
GPU_QUOTA_RESOURCE = "requests.nvidia.com/gpu"

# Group keys after normalisation. ``UUID`` and ``modelName`` are dcgm-exporter's own labels.
DAILY_KEYS: tuple[str, ...] = ("UUID", "gpu", "hostname", "modelName", "namespace")
LATEST_KEYS: tuple[str, ...] = ("UUID", "gpu", "hostname", "modelName", "namespace", "pod")
SERIES_KEYS: tuple[str, ...] = ("UUID", "hostname", "modelName", "namespace")

# The label that tells the parts of a combined query apart (see :func:`combine`).
STAT = "stat"

DAY_MS = 86_400_000
# Prometheus rejects a range query when (end - start) / step > 11,000; stay clearly below.
MAX_POINTS_PER_SERIES = 10_000

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


# --------------------------------------------------------------------------- escaping


def escape_value(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL string: backslash, double quote and
    control characters escaped, so the string can neither end early nor change meaning."""
    out = []
    for ch in str(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def quote(value: str) -> str:
    """``value`` as a PromQL string literal (double-quoted, escaped)."""
    return f'"{escape_value(value)}"'


def regex_escape(value: str) -> str:
    """``value`` with RE2 metacharacters escaped (like Go's ``regexp.QuoteMeta``), so a ``=~``
    matcher built from it matches exactly that text (Prometheus anchors regexes at both ends)."""
    return _REGEX_META.sub(r"\\\1", str(value))


def _check_label(name: str) -> str:
    if not _LABEL_NAME.match(name):
        raise ValueError(f"not a Prometheus label name: {name!r}")
    return name


def _check_metric(name: str) -> str:
    if not _METRIC_NAME.match(name):
        raise ValueError(f"not a Prometheus metric name: {name!r}")
    return name


def matcher(label: str, value: str) -> str:
    """An equality matcher ``label="value"`` with the value escaped."""
    return f"{_check_label(label)}={quote(value)}"


def regex_matcher(label: str, values: Iterable[str]) -> str:
    """A ``label=~"a|b"`` matcher matching exactly the given values (each regex- then string-escaped)."""
    alternatives = "|".join(regex_escape(v) for v in values)
    return f"{_check_label(label)}=~{quote(alternatives)}"


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}`` — always with braces, even empty (``metric{}``), so that :func:`scoped` can
    find every selector of a query."""
    _check_metric(metric)
    inner = ",".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}"


def scoped(query: str, label: str, value: str) -> str:
    """``query`` with the matcher ``label="value"`` added to every selector: how one cluster is read
    from a central store (Thanos Query, Mimir, a VictoriaMetrics cluster) that holds every cluster's
    series, told apart by ``label`` (an external label such as ``cluster``).

    Every selector of this module's queries is written by :func:`selector` and so has braces; outside
    string literals a ``{`` only ever opens a selector's matchers in PromQL, so the matcher goes right
    after each such brace. String literals (label values, regexes, ``label_replace`` arguments) are
    skipped, escapes included.
    """
    scope = matcher(label, value)
    out, i, n = [], 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "\"'`":  # a string literal: copy it whole (backquoted strings have no escapes)
            j = i + 1
            while j < n and query[j] != ch:
                j += 2 if ch != "`" and query[j] == "\\" else 1
            out.append(query[i:j + 1])
            i = j + 1
            continue
        out.append(ch)
        if ch == "{":
            out.append(scope if query[i + 1:].lstrip().startswith("}") else scope + ",")
        i += 1
    return "".join(out)


def by(keys: Sequence[str]) -> str:
    """The ``by (...)`` clause for ``keys``."""
    return "by (" + ", ".join(_check_label(k) for k in keys) + ")"


# --------------------------------------------------------------------------- normalisation


def normalise(expr: str, *, pod: bool = True) -> str:
    """``expr`` with ``namespace``/``pod``/``hostname`` taken from ``exported_namespace``/
    ``exported_pod``/``Hostname`` when those are present (see the module docstring).
    ``pod=False`` leaves ``pod`` alone, for queries that do not group by it (shorter URLs)."""
    e = f'label_replace({expr}, "namespace", "$1", "exported_namespace", "(.+)")'
    if pod:
        e = f'label_replace({e}, "pod", "$1", "exported_pod", "(.+)")'
    return f'label_replace({e}, "hostname", "$1", "Hostname", "(.+)")'


def namespace_selector(metric: str, namespace: str | None, *extra: str) -> str:
    """Series of ``metric`` whose *normalised* namespace is ``namespace`` (all when None).

    ``{exported_namespace="ns"}`` catches the Helm-chart label style; ``{namespace="ns",
    exported_namespace=""}`` the plain style (``=""`` also matches a missing label), so a series
    whose ``namespace`` is only the exporter's own namespace is never taken for a workload's.
    """
    branches = namespace_selectors(metric, namespace, *extra)
    return branches[0] if len(branches) == 1 else "(" + " or ".join(branches) + ")"


def namespace_selectors(metric: str, namespace: str | None, *extra: str) -> list[str]:
    """The plain selectors whose union is :func:`namespace_selector` (a range ``[r]`` can only
    follow a plain selector, so range functions are applied to each branch)."""
    if namespace is None:
        return [selector(metric, *extra)]
    exported = selector(metric, matcher("exported_namespace", namespace), *extra)
    plain = selector(metric, matcher("namespace", namespace), 'exported_namespace=""', *extra)
    return [exported, plain]


def combine(parts: Sequence[tuple[str, str]]) -> str:
    """One query returning several results, each tagged with a ``stat`` label: ``parts`` are
    ``(stat name, expression)``. One round trip per question instead of one per figure."""
    tagged = []
    for name, expr in parts:
        _check_label(name)
        tagged.append(f'label_replace({expr}, "{STAT}", "{name}", "", "")')
    return "\n  or ".join(tagged)


# --------------------------------------------------------------------------- daily window


@dataclass(frozen=True)
class DayWindow:
    """Where and over what range a day's range functions are evaluated."""

    eval_time: datetime  # the day's last millisecond (UTC)
    range_ms: int

    @property
    def range(self) -> str:
        """The range as a PromQL duration, e.g. ``86399999ms``."""
        return f"{self.range_ms}ms"


def day_window(day: date, *, left_open: bool = False) -> DayWindow:
    """The window covering exactly ``[day 00:00, next day 00:00)`` UTC (see the module docstring)."""
    end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    return DayWindow(eval_time=end - timedelta(milliseconds=1), range_ms=DAY_MS if left_open else DAY_MS - 1)


def _over(func: str, metric: str, rng: str, namespace: str | None = None) -> str:
    parts = [f"{func}({sel}[{rng}])" for sel in namespace_selectors(metric, namespace)]
    return normalise(parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")", pod=False)


def daily_gpu_stats(window: DayWindow, *, namespace: str | None = None) -> str:
    """The day's per GPU × namespace figures in one query (``stat`` label on each result):

    ``mean_util``, ``peak_util`` and ``samples`` with the PROF → DEV fallback done here with
    ``or`` (PROF ratio where the group has it, else DEV percent / 100); the memory parts
    ``used_sum``, ``free_sum``, ``used_max``, ``used_n`` (the decoder forms ``mean_mem`` =
    used_sum / (used_sum + free_sum) and ``peak_mem`` = used_max · used_n / (used_sum + free_sum):
    sending parts instead of ratios keeps the URL short); ``energy_mj`` (max − min of the counter
    per series, summed over the group's series).
    """
    r, k = window.range, by(DAILY_KEYS)

    def agg(op: str, func: str, metric: str) -> str:
        return f"{op} {k} ({_over(func, metric, r, namespace)})"

    prof_n, dev_n = agg("sum", "count_over_time", PROF_UTIL), agg("sum", "count_over_time", DEV_UTIL)
    spread = [f"(max_over_time({sel}[{r}]) - min_over_time({sel}[{r}]))" for sel in namespace_selectors(ENERGY, namespace)]
    energy = f"sum {k} ({normalise(' or '.join(spread), pod=False)})"
    return combine([
        ("mean_util", f"({agg('sum', 'sum_over_time', PROF_UTIL)} / {prof_n})"
                      f" or ({agg('sum', 'sum_over_time', DEV_UTIL)} / {dev_n} / 100)"),
        ("peak_util", f"({agg('max', 'max_over_time', PROF_UTIL)}) or ({agg('max', 'max_over_time', DEV_UTIL)} / 100)"),
        ("samples", f"({prof_n}) or ({dev_n})"),
        ("used_sum", agg("sum", "sum_over_time", FB_USED)),
        ("free_sum", agg("sum", "sum_over_time", FB_FREE)),
        ("used_max", agg("max", "max_over_time", FB_USED)),
        ("used_n", agg("sum", "count_over_time", FB_USED)),
        ("energy_mj", energy),
    ])


# --------------------------------------------------------------------------- instant / range


def _util(keys: Sequence[str], namespace: str | None, *, pod: bool = True) -> str:
    k = by(keys)
    prof = f"max {k} ({normalise(namespace_selector(PROF_UTIL, namespace), pod=pod)})"
    dev = f"max {k} ({normalise(namespace_selector(DEV_UTIL, namespace), pod=pod)})"
    return f"({prof}) or ({dev} / 100)"


def latest_samples(*, namespace: str | None = None) -> str:
    """The last sample of each GPU (instant query; Prometheus' 5-minute lookback applies):
    ``util``, ``fb_used_mib``, ``fb_free_mib``, ``power_w`` and ``ts`` (the sample's timestamp)."""
    k = by(LATEST_KEYS)

    def last(metric: str) -> str:
        return f"max {k} ({normalise(namespace_selector(metric, namespace))})"

    ts_prof = f"max {k} ({normalise(f'timestamp({namespace_selector(PROF_UTIL, namespace)})')})"
    ts_dev = f"max {k} ({normalise(f'timestamp({namespace_selector(DEV_UTIL, namespace)})')})"
    return combine([
        ("util", _util(LATEST_KEYS, namespace)),
        ("fb_used_mib", last(FB_USED)),
        ("fb_free_mib", last(FB_FREE)),
        ("power_w", last(POWER)),
        ("ts", f"({ts_prof}) or ({ts_dev})"),
    ])


def gpu_series(*, namespace: str | None = None) -> str:
    """Per-GPU curves for a range query: ``util`` (with the PROF → DEV fallback), ``mem``
    (used / (used + free)), ``power_w``."""
    k = by(SERIES_KEYS)

    def agg(metric: str) -> str:
        return f"max {k} ({normalise(namespace_selector(metric, namespace), pod=False)})"

    return combine([
        ("util", _util(SERIES_KEYS, namespace, pod=False)),
        ("mem", f"{agg(FB_USED)} / ({agg(FB_USED)} + {agg(FB_FREE)})"),
        ("power_w", agg(POWER)),
    ])


def range_chunks(start: datetime, end: datetime, step_s: int,
                 max_points: int = MAX_POINTS_PER_SERIES) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end]`` into consecutive windows of at most ``max_points`` evaluation points
    each (the next window starts one step after the previous one ends), so no range query hits
    Prometheus' 11,000-points-per-series limit and no point is fetched twice."""
    if step_s <= 0:
        raise ValueError("step must be positive")
    if end < start:
        raise ValueError("end before start")
    if max_points < 1:
        raise ValueError("max_points must be >= 1")
    step = timedelta(seconds=step_s)
    span = step * (max_points - 1)
    chunks, t = [], start
    while t <= end:
        chunk_end = min(t + span, end)
        chunks.append((t, chunk_end))
        t = chunk_end + step
    return chunks


def points(start: datetime, end: datetime, step_s: int) -> int:
    """Evaluation points of a range query over ``[start, end]`` at ``step_s``."""
    return int((end - start).total_seconds() // step_s) + 1


# --------------------------------------------------------------------------- kube-state-metrics


def _norm_ksm(expr: str) -> str:
    # kube-state-metrics scraped with honor_labels false renames the object's namespace/pod too.
    e = f'label_replace({expr}, "namespace", "$1", "exported_namespace", "(.+)")'
    return f'label_replace({e}, "pod", "$1", "exported_pod", "(.+)")'


def running_gpu_requests() -> str:
    """GPUs requested by running pods, by namespace. Completed pods keep reporting their
    requests, so the requests are joined with ``kube_pod_status_phase{phase="Running"} == 1``."""
    requests = _norm_ksm(selector(KSM_REQUESTS, matcher("resource", GPU_RESOURCE)))
    running = f"max by (namespace, pod) ({_norm_ksm(selector(KSM_PHASE, matcher('phase', 'Running')))} == 1)"
    return f"sum by (namespace) ({requests} * on (namespace, pod) group_left () {running})"


def gpu_quotas() -> str:
    """``hard`` and ``used`` GPU quota (``requests.nvidia.com/gpu``) by namespace."""
    quota = _norm_ksm(selector(KSM_QUOTA, matcher("resource", GPU_QUOTA_RESOURCE)))
    return f"sum by (namespace, type) ({quota})"


def allocatable_gpus() -> str:
    """Allocatable GPUs by node."""
    return f"sum by (node) ({selector(KSM_ALLOCATABLE, matcher('resource', GPU_RESOURCE))})"


# --------------------------------------------------------------------------- service requests (QPS, latency)


@dataclass(frozen=True)
class ServingExporter:
    """One kind of inference server's request metrics (``data/serving_metrics.yaml``): the
    completed-requests counter and the end-to-end latency histogram's base name (seconds)."""

    id: str
    requests: str
    latency: str
    label_filters: tuple[tuple[str, str], ...] = ()

    def selector(self, metric: str) -> str:
        """``metric`` with this exporter's extra matchers (values escaped)."""
        return selector(metric, *(matcher(k, v) for k, v in self.label_filters))


@dataclass(frozen=True)
class ServingWindow:
    """Where and over what ranges a window's serving figures are evaluated.

    The window is ``[start, end)`` (UTC). Counters are read as ``max − min`` per series over a range
    that also holds the sample one ``step_s`` before ``start`` (the increase into the window's first
    sample belongs to the window, as the offline row ending at that sample does); the peak and the
    points are a subquery at ``step_s`` over exactly the window's steps. Prometheus 2.x ranges are
    closed, 3.x left-open (``left_open=True``), as for :func:`day_window`.
    """

    eval_time: datetime
    counter_range_ms: int
    peak_range_ms: int
    step_s: int
    seconds: float


def serving_window(start: datetime, end: datetime, step_s: int, *, left_open: bool = False) -> ServingWindow:
    """The :class:`ServingWindow` of ``[start, end)`` at ``step_s``."""
    if step_s <= 0:
        raise ValueError("step must be positive")
    if end <= start:
        raise ValueError("end must be after start")
    window_ms = int(round((end - start).total_seconds() * 1000))
    pad = 0 if left_open else -1
    return ServingWindow(eval_time=end - timedelta(milliseconds=1), counter_range_ms=window_ms + step_s * 1000 + pad,
                         peak_range_ms=window_ms + pad, step_s=step_s, seconds=window_ms / 1000.0)


def normalise_namespace(expr: str, labels: Sequence[str]) -> str:
    """``expr`` with ``namespace`` taken from the first of ``labels`` that is present and non-empty
    (``labels`` ends with the plain ``namespace``; e.g. ``exported_namespace, namespace``)."""
    out = expr
    for label in reversed([_check_label(x) for x in labels if x != "namespace"]):
        out = f'label_replace({out}, "namespace", "$1", "{label}", "(.+)")'
    return out


def _increase(sel: str, rng: str) -> str:
    # max − min of a counter over the range: no extrapolation (unlike increase()); see the module
    # docstring on energy for why (a reset inside the range is not corrected).
    return f"(max_over_time({sel}[{rng}]) - min_over_time({sel}[{rng}]))"


def _first_exporter(parts: Sequence[str], presence: Sequence[str]) -> str:
    """One expression taking, per namespace, the part of the first exporter the namespace exports:
    ``p1 or on (namespace) (p2 unless on (namespace) r1) or …``."""
    out = f"({parts[0]})"
    for i in range(1, len(parts)):
        before = " or ".join(f"({r})" for r in presence[:i])
        out += f" or on (namespace) (({parts[i]}) unless on (namespace) ({before}))"
    return out


def serving_stats(window: ServingWindow, exporters: Sequence[ServingExporter], *, namespace_labels: Sequence[str],
                  quantile: float = 0.99) -> str:
    """A window's request figures per namespace in one query (``stat`` label on each result):

    ``requests`` (completed requests in the window), ``latency_sum_s`` and ``latency_count`` (the
    latency histogram's ``_sum``/``_count`` increases: mean = sum / count), ``latency_q_s`` (the
    ``quantile`` of the latency over the window: ``histogram_quantile`` of the bucket increases
    ``sum by (namespace, le)``), ``qps_peak`` (the highest per-namespace request rate between two
    consecutive samples, ``irate``, evaluated every ``step_s``) and ``points`` (the steps at which
    the namespace had a rate and a sample of its own: coverage). Each namespace is read from the first exporter it exports.
    """
    if not exporters:
        raise ValueError("at least one exporter is needed")
    if not 0 <= quantile <= 1:
        raise ValueError("quantile must be between 0 and 1")
    crng, step = f"{window.counter_range_ms}ms", window.step_s

    def ns(expr: str) -> str:
        return normalise_namespace(expr, namespace_labels)

    def total(metric: str, keys: str = "namespace") -> str:
        return f"sum by ({keys}) ({ns(_increase(metric, crng))})"

    requests = [total(e.selector(e.requests)) for e in exporters]
    rates = [f"sum by (namespace) ({ns(f'irate({e.selector(e.requests)}[{2 * step}s])')})" for e in exporters]
    pick = lambda parts: _first_exporter(parts, requests)  # noqa: E731 - one-line helper
    buckets = [total(e.selector(e.latency + "_bucket"), "namespace, le") for e in exporters]
    # Only at steps where the namespace has a sample of its own (irate keeps answering for one step
    # after a series ends or pauses, from the two samples before): the points are then the offline
    # rows' instants.
    fresh = " or ".join(f"(sum by (namespace) ({ns(f'count_over_time({e.selector(e.requests)}[{step * 1000 - 1}ms])')}))"
                        for e in exporters)
    inner = f"({_first_exporter(rates, rates)}) and on (namespace) ({fresh})"
    sub = f"[{window.peak_range_ms}ms:{step}s]"
    return combine([
        ("requests", pick(requests)),
        ("latency_sum_s", pick([total(e.selector(e.latency + "_sum")) for e in exporters])),
        ("latency_count", pick([total(e.selector(e.latency + "_count")) for e in exporters])),
        ("latency_q_s", pick([f"histogram_quantile({quantile!r}, {b})" for b in buckets])),
        ("qps_peak", f"max_over_time(({inner}){sub})"),
        ("points", f"count_over_time(({inner}){sub})"),
    ])
