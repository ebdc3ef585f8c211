"""Building the monthly transparency report (算力资源晾晒报告): a pure function from inputs to a dict.

Inputs are plain values (a rollup frame, allocation and request dicts, the organisation, GPU
prices, settings), so the numbers can be checked against hand-computed fixtures. Definitions
(``hours`` of a rollup row = ``samples × 24 / expected_samples``, the time it was observed):

* **water level** — the figures of :mod:`core.capacity_figures`, each the mean over the month's
  days (up to the day the report is built, for the current month): total = GPUs of the scope's
  pools (data/org.yaml); allocated = GPUs the portal granted that counted on each day (from the
  allocations, never from the metrics); reserved = the unallocated GPUs of the reserve pools;
  available = total − allocated − reserved; in use = GPU-days whose mean utilisation reached
  ``water_level.in_use_util`` (data/metrics_thresholds.yaml), for the hours they were observed,
  ÷ (24 × days counted); in use without an allocation = those of namespaces no allocation owned
  that day. Per pool (a rollup row's pool is its node's, else the only pool of its cluster and
  GPU model; in-use rows that fit neither count in the totals and per model only, as
  ``unattributed_in_use``) and per GPU model. Beside them, ``portal_granted`` = GPUs allocated on
  the month's last day, and ``previous_month``: the allocation figures of the month before (total,
  allocated, reserved, available — from the allocations alone), to compare with.
* **utilisation** — GPU-hour weighted: Σ used GPU-hours / Σ allocated GPU-hours over rows with a
  namespace (``util_allocated``), and Σ used / Σ observed hours over every GPU (``util_fleet``).
  Memory: Σ mean_mem × hours / Σ hours (rows with a memory value, with a namespace).
* **queue wait** — approved (or adjusted) minus submitted, for requests decided in the month;
  **provisioning time** — active minus approved, for requests active in the month; **incidents**
  — every failed provisioning run in the month (audit events ``allocation.provision_failed``, and
  runs that died and were marked failed): a request that failed three times counts three times.
  Nothing else (node faults, preemptions) counts as an incident.
* **projects** — rollup namespaces mapped to projects through allocations (several namespaces of
  one project are summed); an unmapped namespace is shown as itself. Cost = allocated GPU-hours ×
  the catalog price of the GPU model; cost per useful GPU-hour = cost / used GPU-hours. Requested
  GPU-hours = requested GPUs × 24 × days of the allocation's window inside the month; without an
  allocation the gap is allocated − used from the metrics (``requested_source`` says which).
* **coverage** — Σ over (GPU, day) of the rollup coverage / (GPUs of the scope × days): a missing
  day or a scrape gap lowers it, and it is shown beside the numbers; it never counts as zero use.
* **trends** — changes against the previous month and the same month last year compare
  coverage-normalised totals (GPU-hours, energy, cost ÷ the month's coverage) and ratios as they
  are; when either month's coverage is below ``min_coverage_for_trends`` (the warnings' minimum,
  data/warning_thresholds.yaml ``min_coverage``) there is no change, only "insufficient data".
* **typical training jobs** (time–quality–energy) — the training allocations (demand type
  training, with a namespace) whose window overlaps the month, ranked by the allocated GPU-hours
  of their namespace in the month inside their window, the first ``typical_training_jobs`` of
  data/report_settings.yaml. For each: wall time = hours of the allocation's window from its first
  day to its end (release, or the end of its term) or the month's end, whichever is first;
  GPU-hours, energy and cost = the namespace's rollups over the same span (cost = allocated
  GPU-hours × the GPU model's price); the month's share beside them. Quality = the latest recorded
  training result (:mod:`core.reports.results`), else "not recorded"; with a baseline,
  improvement = value − baseline (higher is better) or baseline − value, and energy per unit of
  improvement = kWh / improvement when the improvement is positive.

Every ratio whose denominator is zero is ``None`` (shown "—"), never 0.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping

import polars as pl

from core import capacity_figures as cf
from core.clock import utc_today
from core.errors import InputError
from core.metrics.schema import ROLLUP_SCHEMA
from core.reports.scope import COMPANY
from core.org import Org

DAY_SECONDS = 86_400.0
SCHEMA_VERSION = 4  # 2: economics.training_jobs (time–quality–energy); 3: water level from the rollups,
#                     trends.comparison (coverage-normalised, insufficient data), incidents per failed run;
#                     4: water level from core.capacity_figures (allocated = the portal's grants, reserved,
#                     in use, in use without an allocation)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# --------------------------------------------------------------------------- small helpers


def parse_month(text: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``; :class:`InputError` (field "month") otherwise."""
    m = _MONTH.match(str(text or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise InputError("reports.bad_month", field="month", value=text)
    year, month = int(m.group(1)), int(m.group(2))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def shift_month(month: str, delta: int) -> str:
    """``month`` moved by ``delta`` months ('2026-01', -1 → '2025-12')."""
    first, _ = parse_month(month)
    index = first.year * 12 + first.month - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def check_scope(org: Org, scope: str) -> str:
    """``company`` or a unit id of the organisation (HQ or a province); :class:`InputError` otherwise."""
    if scope == COMPANY or scope in org.units:
        return scope
    raise InputError("error.choice", field="scope", value=scope, choices=", ".join([COMPANY, *org.units]))


def scope_clusters(org: Org, scope: str) -> set[str]:
    """Cluster ids inside ``scope``."""
    check_scope(org, scope)
    return {c.id for c in org.clusters.values() if scope == COMPANY or c.unit == scope}


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _hours(start: Any, end: Any) -> float | None:
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    return (end - start).total_seconds() / 3600.0


def _in_month(value: Any, first: date, last: date) -> bool:
    return isinstance(value, datetime) and first <= value.date() <= last


def _stats(values: list[float]) -> dict[str, Any]:
    """count, mean, median, p90 (nearest rank) and max of durations in hours."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"count": 0, "mean_h": None, "median_h": None, "p90_h": None, "max_h": None}
    n = len(xs)
    median = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    p90 = xs[max(0, -(-9 * n // 10) - 1)]
    return {"count": n, "mean_h": _r(sum(xs) / n, 4), "median_h": _r(median, 4), "p90_h": _r(p90, 4), "max_h": _r(xs[-1], 4)}


def _with_hours(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        hours=pl.col("samples").cast(pl.Float64) * 24.0 / pl.col("expected_samples").cast(pl.Float64))


def _empty_rollups() -> pl.DataFrame:
    return pl.DataFrame(schema=ROLLUP_SCHEMA)


def _price_of(prices: Mapping[str, tuple[float, bool]]) -> pl.Expr:
    mapping = {k: float(v[0]) for k, v in prices.items()}
    return pl.col("model").replace_strict(mapping, default=None, return_dtype=pl.Float64)


def _coverage(frame: pl.DataFrame, gpus_total: int, days: int) -> dict[str, Any]:
    per_gpu_day = frame.group_by("uuid", "day").agg(pl.col("coverage").first())
    expected = gpus_total * days
    observed = float(per_gpu_day["coverage"].sum()) if per_gpu_day.height else 0.0
    return {
        "metrics": _r(min(1.0, observed / expected), 4) if expected else None,
        "gpu_days_observed": _r(observed, 4), "gpu_days_expected": expected,
        "days_with_data": int(frame["day"].n_unique()) if frame.height else 0, "days": days,
        "gpus_seen": int(frame["uuid"].n_unique()) if frame.height else 0,
    }


# --------------------------------------------------------------------------- month summary (trends)


def month_summary(rollups: pl.DataFrame, *, month: str, prices: Mapping[str, tuple[float, bool]],
                  gpus_total: int) -> dict[str, Any] | None:
    """The headline figures of one month (used by trends and the annual summary); None without data.

    ``rollups`` must already be limited to the month and the scope.
    """
    first, last = parse_month(month)
    frame = rollups.filter(pl.col("day").is_between(first, last))
    if frame.height == 0:
        return None
    frame = _with_hours(frame).with_columns(price=_price_of(prices))
    alloc = frame.filter(pl.col("namespace") != "")
    allocated_h = float(alloc["allocated_gpu_hours"].sum())
    used_alloc = float(alloc["used_gpu_hours"].sum())
    costed = alloc.filter(pl.col("price").is_not_null())
    cost = float((costed["allocated_gpu_hours"] * costed["price"]).sum()) if costed.height else None
    return {
        "month": month,
        "gpu_hours_allocated": _r(allocated_h, 4),
        "gpu_hours_used": _r(float(frame["used_gpu_hours"].sum()), 4),
        "util_allocated": _r(_div(used_alloc, allocated_h)),
        "energy_kwh": _r(float(frame["energy_kwh"].sum()), 4),
        "cost": _r(cost, 2),
        "coverage": _coverage(frame, gpus_total, (last - first).days + 1)["metrics"],
    }


TREND_METRICS = ("gpu_hours_used", "gpu_hours_allocated", "util_allocated", "energy_kwh", "cost")
# Totals that grow with the observed share of the month; ratios (utilisation) do not.
_EXTENSIVE = frozenset({"gpu_hours_used", "gpu_hours_allocated", "energy_kwh", "cost"})


def _change(now: float | None, before: float | None) -> float | None:
    """Relative change (0.1 = +10 %); None when either side is missing or the base is 0."""
    if now is None or before is None or before == 0:
        return None
    return _r((now - before) / before)


def _normalised(summary: Mapping[str, Any], key: str) -> float | None:
    value, cov = summary.get(key), summary.get("coverage")
    if key not in _EXTENSIVE or value is None:
        return value
    return value / cov if cov else None


def comparison(now: Mapping[str, Any] | None, base: Mapping[str, Any] | None,
               min_coverage: float) -> dict[str, Any]:
    """Changes of :data:`TREND_METRICS` from ``base`` to ``now`` (two :func:`month_summary` values).

    Totals are compared coverage-normalised (total ÷ coverage: what a fully observed month would
    hold), ratios as they are. ``status``: ``ok``; ``no_data`` when either month has no data;
    ``insufficient_data`` when either month's coverage is below ``min_coverage`` — then every
    change is None rather than a percentage made of a few observed days.
    """
    cov_now, cov_base = (now or {}).get("coverage"), (base or {}).get("coverage")
    out = {"coverage": cov_now, "base_coverage": cov_base, "min_coverage": min_coverage}
    if now is None or base is None:
        return {**out, "status": "no_data", "changes": dict.fromkeys(TREND_METRICS)}
    if cov_now is None or cov_base is None or cov_now < min_coverage or cov_base < min_coverage:
        return {**out, "status": "insufficient_data", "changes": dict.fromkeys(TREND_METRICS)}
    return {**out, "status": "ok",
            "changes": {k: _change(_normalised(now, k), _normalised(base, k)) for k in TREND_METRICS}}


def _min_coverage(settings: Mapping[str, Any]) -> float:
    value = settings.get("min_coverage_for_trends")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError("error.data_entry_invalid", field="warning_thresholds.yaml", entry="min_coverage")
    return float(value)


# --------------------------------------------------------------------------- the report


def build_report(
    *,
    month: str,
    scope: str,
    rollups: pl.DataFrame,
    allocations: Iterable[Mapping[str, Any]],
    requests: Iterable[Mapping[str, Any]],
    org: Org,
    prices: Mapping[str, tuple[float, bool]],
    settings: Mapping[str, Any],
    history: Mapping[str, dict[str, Any] | None] | None = None,
    people: Mapping[str, str] | None = None,
    warnings: Mapping[str, Any] | None = None,
    reclaims: Mapping[str, Any] | None = None,
    built_at: datetime | None = None,
    focus: Mapping[str, str] | None = None,
    training_results: Mapping[int, list[dict[str, Any]]] | None = None,
    job_history: pl.DataFrame | None = None,
    node_pools: Mapping[str, str] | None = None,
    provision_failures: Iterable[Mapping[str, Any]] | None = None,
    cpu_rollups: pl.DataFrame | None = None,
    in_use_util: float | None = None,
) -> dict[str, Any]:
    """The report of ``month`` for ``scope`` as a JSON-ready dict (see the module docstring).

    Args:
        rollups: rows of :data:`ROLLUP_SCHEMA` (other months and clusters are ignored).
        allocations: dicts with ``request_id, pool, gpus, requested_gpus, status, namespace, starts_on,
            ends_on, released_on`` (dates or None), ``project, department, owner, demand_type``.
        requests: dicts with ``id, number, pool, project, submitted_at, approved_at, active_at,
            provisioning_failed_at`` (aware datetimes or None).
        prices: GPU model → (CNY per GPU-hour, is a placeholder).
        settings: data/report_settings.yaml.
        history: month → :func:`month_summary` (or None) for the trend months.
        people: person id → display name (owners of allocations).
        warnings, reclaims: ``{"available": bool, "items": [...]}`` from the warnings/reclaim
            tables; when absent the sections say "not available yet".
        focus: optional drill-down filter: ``{"cluster": id}``, ``{"model": id}`` or
            ``{"department": id}``.
        training_results: request id → recorded training results, oldest first
            (:func:`core.reports.results.results_of`).
        job_history: rollup rows (:data:`ROLLUP_SCHEMA`) of the training namespaces before the
            month, for the typical jobs' figures since their start (None: the month only).
        provision_failures: every failed provisioning run: dicts with ``request_id, at`` (aware
            datetime), ``step, attempt`` and ``cause`` (``failed``: a step failed; ``interrupted``:
            the run died and was marked failed); None: not known (incidents "not available").
        node_pools: hostname → pool id of the GPU nodes, to place rollup rows in pools (rows of
            other nodes go to the only pool of their cluster and GPU model, if there is one).
        cpu_rollups: stored CPU rollup rows (:func:`core.metrics.cpu.read_cpu_days`: ``day``,
            ``cluster``, ``namespace``, ``cpu_core_s``, ``covered_s``, ``cores_used_peak``,
            ``requested_core_s``); None or none in the month and scope: the CPU top list says
            "not collected".
        in_use_util: the utilisation from which a GPU counts as in use (None: the water level's,
            data/metrics_thresholds.yaml).

    Raises:
        InputError: bad month or scope.
    """
    first, last = parse_month(month)
    days = (last - first).days + 1
    clusters = scope_clusters(org, scope)
    focus = dict(focus or {})
    pools = [p for p in org.pools.values() if p.cluster in clusters]
    if "cluster" in focus:
        pools = [p for p in pools if p.cluster == focus["cluster"]]
    if "model" in focus:
        pools = [p for p in pools if p.gpu == focus["model"]]
    pool_ids = {p.id for p in pools}
    people = dict(people or {})
    top_n = int(settings.get("top_n", 5))
    min_hours = float(settings.get("min_gpu_hours_for_ranking", 24))
    idle_util = float(settings.get("idle_day_util", 0.05))

    # pool_ids are the scope's pools (already narrowed to the focus's cluster or model)
    allocs = [dict(a) for a in allocations if a.get("pool") in pool_ids
              and ("department" not in focus or a.get("department") == focus["department"])]

    frame = rollups if rollups is not None else _empty_rollups()
    frame = frame.filter(pl.col("day").is_between(first, last) & pl.col("cluster").is_in(sorted(clusters)))
    if "cluster" in focus:
        frame = frame.filter(pl.col("cluster") == focus["cluster"])
    if "model" in focus:
        frame = frame.filter(pl.col("model") == focus["model"])

    # namespace → project (latest allocation of the namespace wins)
    ns_map: dict[str, dict[str, Any]] = {}
    for a in sorted(allocs, key=lambda a: (a.get("starts_on") or date.min, a.get("request_id") or 0)):
        if a.get("namespace"):
            ns_map[a["namespace"]] = a
    if "department" in focus:
        frame = frame.filter(pl.col("namespace").is_in(sorted(ns_map)))
    frame = _with_hours(frame).with_columns(price=_price_of(prices))
    gpus_total = sum(p.gpus for p in pools)
    coverage = _coverage(frame, gpus_total, days)

    today = built_at.date() if built_at else utc_today()
    if in_use_util is None:
        from core.metrics.water_level import in_use_threshold

        in_use_util = in_use_threshold()
    water = _water_level(pools, allocs, frame, first, last, today, org, node_pools, in_use_util)
    requests = list(requests)
    health = _health(frame, requests, pool_ids, first, last, coverage, provision_failures)
    entities = _entities(frame, ns_map, org, people, allocs, first, last, idle_util)
    economics = _economics(frame, prices, coverage)
    economics["training_jobs"] = _training_jobs(
        frame, job_history, allocs, training_results or {}, prices, org, people, first, last,
        int(settings.get("typical_training_jobs", 5)))
    cpu_top = _cpu(frame, cpu_rollups, entities, ns_map, first, last, clusters, focus)
    ranked = [e for e in entities if (e["gpu_hours_allocated"] or 0) >= min_hours]

    def top(key: str, *, reverse: bool, rows: list[dict] | None = None) -> list[dict]:
        rows = [e for e in (ranked if rows is None else rows) if e.get(key) is not None]
        rows.sort(key=lambda e: (-(e[key]) if reverse else e[key], e["id"]))
        return [e["id"] for e in rows[:top_n]]

    history = dict(history or {})
    current = month_summary(frame.drop("hours", "price"), month=month, prices=prices, gpus_total=gpus_total)
    trend_months = [shift_month(month, -k) for k in range(int(settings.get("trend_months", 6)), 0, -1)]
    last_year = shift_month(month, -12)
    previous = history.get(shift_month(month, -1))
    year_ago = history.get(last_year)
    min_coverage = _min_coverage(settings)
    vs_previous = comparison(current, previous, min_coverage)
    vs_year = comparison(current, year_ago, min_coverage)

    return {
        "schema": SCHEMA_VERSION,
        "kind": "monthly",
        "month": month,
        "scope": scope,
        "focus": focus or None,
        "period": {"first": first.isoformat(), "last": last.isoformat(), "days": days},
        "built_at": built_at.isoformat() if built_at else None,
        "coverage": coverage,
        "water_level": water,
        "health": health,
        "entities": entities,
        "red_list": {
            "highest_util": top("util", reverse=True),
            "best_cost_per_useful_hour": top("cost_per_useful_gpu_hour", reverse=False),
        },
        "black_list": {
            "lowest_util": top("util", reverse=False),
            "long_idle": top("idle_days", reverse=True, rows=[e for e in ranked if e["idle_days"] > 0]),
            "largest_gap": top("gap_gpu_hours", reverse=True, rows=[e for e in ranked if (e["gap_gpu_hours"] or 0) > 0]),
        },
        "top": {
            "gpu_util": top("util", reverse=True),
            "memory": top("mem", reverse=True),
            "cpu": ({**cpu_top, "ranking": top("cpu_util", reverse=True)} if cpu_top["available"] else cpu_top),
        },
        "economics": economics,
        "trends": {
            "current": current,
            "months": [{"month": m, "summary": history.get(m)} for m in trend_months],
            "previous_month": previous,
            "same_month_last_year": year_ago,
            "last_year_month": last_year,
            "vs_previous_month": vs_previous.pop("changes"),
            "vs_last_year": vs_year.pop("changes"),
            "comparison": {"previous_month": vs_previous, "last_year": vs_year, "min_coverage": min_coverage,
                           "basis": "coverage_normalised"},
        },
        "warnings": dict(warnings) if warnings else {"available": False, "items": []},
        "reclaims": dict(reclaims) if reclaims else {"available": False, "items": []},
        "settings": {"top_n": top_n, "min_gpu_hours_for_ranking": min_hours, "idle_day_util": idle_util},
        "deidentified": False,
    }


def _row_pools(frame: pl.DataFrame, org: Org, node_pools: Mapping[str, str] | None) -> pl.DataFrame:
    """``frame`` with a ``pool`` column: the node's pool (``node_pools``, hostname → pool) if known,
    else the only pool of the row's cluster with its GPU model, else null (not attributable)."""
    by_shape: dict[tuple[str, str], list[str]] = {}
    for p in org.pools.values():
        by_shape.setdefault((p.cluster, p.gpu), []).append(p.id)
    unique = {f"{c}\x1f{m}": ids[0] for (c, m), ids in by_shape.items() if len(ids) == 1}
    shape = pl.concat_str([pl.col("cluster"), pl.col("model")], separator="\x1f")
    fallback = shape.replace_strict(unique, default=None, return_dtype=pl.Utf8)
    nodes = {h: p for h, p in (node_pools or {}).items() if p in org.pools}
    from_node = pl.col("hostname").replace_strict(nodes, default=None, return_dtype=pl.Utf8)
    return frame.with_columns(pool=pl.coalesce(from_node, fallback))


def _water_level(pools, allocs, frame: pl.DataFrame, first: date, last: date, today: date, org: Org,
                 node_pools: Mapping[str, str] | None, in_use_util: float) -> dict[str, Any]:
    """The month's capacity figures (:func:`core.capacity_figures.month_figures`), by pool and GPU model."""
    rows = _row_pools(frame, org, node_pools) if frame.height else frame.with_columns(pool=pl.lit(None, pl.Utf8))
    holdings = [cf.Holding.from_mapping(a) for a in allocs]
    month = cf.month_figures(pools, holdings, rows, first=first, last=last, today=today, threshold=in_use_util)
    # last month's allocation figures (from the allocations alone: its rollups are not read here)
    before_first, before_last = parse_month(shift_month(first.strftime("%Y-%m"), -1))
    before = cf.month_figures(pools, holdings, rows.clear(), first=before_first, last=before_last, today=today,
                              threshold=in_use_util).scope
    seen = ({r["model"]: int(r["n"]) for r in frame.group_by("model").agg(pl.col("uuid").n_unique().alias("n")).to_dicts()}
            if frame.height else {})

    def figures(f: cf.Figures) -> dict[str, Any]:
        return {k: _r(v, 4) for k, v in f.as_dict().items()}

    by_pool = [{"pool": p.id, "kind": p.kind, "cluster": p.cluster, "unit": org.clusters[p.cluster].unit,
                "model": p.gpu, **figures(month.pools[p.id]), "total": int(month.pools[p.id].total),
                "portal_granted": month.allocated_at_end.get(p.id, 0)} for p in pools]
    by_model = [{"model": m, **figures(f), "total": int(f.total),
                 "portal_granted": sum(month.allocated_at_end.get(p.id, 0) for p in pools if p.gpu == m),
                 "gpus_seen": seen.get(m, 0)} for m, f in month.models.items()]
    scope = month.scope
    return {**figures(scope), "total": int(scope.total), "allocated_share": _r(_div(scope.allocated, scope.total), 4),
            "unattributed_in_use": _r(month.unattributed_in_use, 4),
            "portal_granted": sum(month.allocated_at_end.values()), "portal_granted_as_of": last.isoformat(),
            "days_counted": len(month.days), "hours_in_month": 24.0 * len(month.days),
            "in_use_util": in_use_util, "definition_key": "capacity.board_water_definition",
            "previous_month": {"month": before_first.strftime("%Y-%m"),
                               **{k: _r(getattr(before, k), 4) for k in cf.FIGURES[:4]}},
            "by_pool": by_pool, "by_model": by_model}


def _incidents(failures: Iterable[Mapping[str, Any]] | None, requests, pool_ids: set[str], first: date,
               last: date) -> dict[str, Any]:
    """Every failed provisioning run of the month in the scope's pools (see the module docstring)."""
    if failures is None:
        return {"available": False, "count": None, "requests": None, "items": []}
    by_id = {r["id"]: r for r in requests}
    items = []
    for f in failures:
        r = by_id.get(f.get("request_id"))
        if r is None or r.get("pool") not in pool_ids or not _in_month(f.get("at"), first, last):
            continue
        items.append({"request_id": r["id"], "number": r.get("number"), "pool": r["pool"], "at": f["at"].isoformat(),
                      "step": f.get("step") or None, "attempt": f.get("attempt"), "cause": f.get("cause") or "failed"})
    items.sort(key=lambda i: (i["at"], i["request_id"]))
    return {"available": True, "count": len(items), "requests": len({i["request_id"] for i in items}),
            "definition_key": "reportfix.incident_definition", "items": items}


def _health(frame: pl.DataFrame, requests, pool_ids: set[str], first: date, last: date,
            coverage: dict[str, Any], failures: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    alloc = frame.filter(pl.col("namespace") != "")
    allocated_h = float(alloc["allocated_gpu_hours"].sum()) if alloc.height else 0.0
    used_alloc = float(alloc["used_gpu_hours"].sum()) if alloc.height else 0.0
    observed_h = float(frame["hours"].sum()) if frame.height else 0.0
    used_all = float(frame["used_gpu_hours"].sum()) if frame.height else 0.0
    mem_rows = alloc.filter(pl.col("mean_mem").is_not_null())
    mem = _div(float((mem_rows["mean_mem"] * mem_rows["hours"]).sum()), float(mem_rows["hours"].sum())) if mem_rows.height else None
    waits, provs = [], []
    considered = 0
    for r in requests:
        if r.get("pool") not in pool_ids:
            continue
        considered += 1
        decided = r.get("approved_at")
        if _in_month(decided, first, last):
            waits.append(_hours(r.get("submitted_at"), decided))
        if _in_month(r.get("active_at"), first, last):
            provs.append(_hours(decided, r.get("active_at")))
    return {
        "util_allocated": _r(_div(used_alloc, allocated_h)),
        "util_fleet": _r(_div(used_all, observed_h)),
        "mem_allocated": _r(mem),
        "queue_wait": _stats([w for w in waits if w is not None]),
        "provisioning_time": _stats([p for p in provs if p is not None]),
        "incidents": _incidents(failures, requests, pool_ids, first, last),
        "requests_considered": considered,
        "coverage": coverage["metrics"],
    }


def _overlap_days(a: Mapping[str, Any], first: date, last: date) -> int:
    start = a.get("starts_on")
    if start is None:
        return 0
    end = a.get("ends_on") or last + timedelta(days=1)  # ends_on is exclusive (start + days)
    if a.get("released_on") is not None:
        end = min(end, a["released_on"])
    lo, hi = max(start, first), min(end, last + timedelta(days=1))
    return max(0, (hi - lo).days)


def _entities(frame: pl.DataFrame, ns_map: dict, org: Org, people: dict, allocs, first: date, last: date,
              idle_util: float) -> list[dict[str, Any]]:
    rows = frame.filter(pl.col("namespace") != "")
    if rows.height == 0:
        return []
    key_of = {ns: a["project"] for ns, a in ns_map.items() if a.get("project")}
    rows = rows.with_columns(entity=pl.col("namespace").replace_strict(key_of, default=pl.col("namespace")),
                             mapped=pl.col("namespace").is_in(sorted(key_of)),
                             cost=pl.col("allocated_gpu_hours") * pl.col("price"),
                             mem_h=pl.when(pl.col("mean_mem").is_not_null()).then(pl.col("hours")).otherwise(0.0),
                             mem_x=(pl.col("mean_mem") * pl.col("hours")).fill_null(0.0))
    agg = rows.group_by("entity").agg(
        pl.col("mapped").first(), pl.col("namespace").unique().sort().alias("namespaces"),
        pl.col("uuid").n_unique().alias("gpus"), pl.col("model").unique().sort().alias("models"),
        pl.col("cluster").unique().sort().alias("clusters"),
        pl.col("allocated_gpu_hours").sum(), pl.col("used_gpu_hours").sum(), pl.col("energy_kwh").sum(),
        pl.col("mem_x").sum(), pl.col("mem_h").sum(), pl.col("peak_util").max(), pl.col("peak_mem").max(),
        pl.col("cost").sum(), pl.col("price").is_null().any().alias("unpriced"),
        pl.col("day").n_unique().alias("active_days"),
    )
    daily = (rows.group_by("entity", "day").agg(pl.col("used_gpu_hours").sum(), pl.col("allocated_gpu_hours").sum())
             .with_columns(idle=(pl.col("used_gpu_hours") < idle_util * pl.col("allocated_gpu_hours")))
             .group_by("entity").agg(pl.col("idle").sum().alias("idle_days")))
    idle = {r["entity"]: int(r["idle_days"]) for r in daily.to_dicts()}
    cov = (rows.group_by("entity", "uuid", "day").agg(pl.col("coverage").first())
           .group_by("entity").agg(pl.col("coverage").mean()))
    covs = {r["entity"]: r["coverage"] for r in cov.to_dicts()}
    requested: dict[str, float] = {}
    for a in allocs:
        key = a.get("project") or a.get("namespace")
        if key and a.get("namespace"):
            gpus = a.get("requested_gpus") or a.get("gpus") or 0
            requested[key] = requested.get(key, 0.0) + gpus * 24.0 * _overlap_days(a, first, last)
    out = []
    for r in agg.sort("entity").to_dicts():
        key, mapped = r["entity"], bool(r["mapped"])
        project = org.projects.get(key) if mapped else None
        alloc = next((a for ns, a in ns_map.items() if ns in r["namespaces"]), None) if mapped else None
        dept = org.departments.get(alloc.get("department")) if alloc else None
        allocated, used = r["allocated_gpu_hours"], r["used_gpu_hours"]
        cost = None if r["unpriced"] else r["cost"]
        req = requested.get(key) if mapped else None
        gap_base = req if req is not None else allocated
        owner_id = (alloc or {}).get("owner") or ""
        out.append({
            "id": key, "kind": "project" if mapped else "namespace",
            "name_zh": project.name_zh if project else key, "name_en": project.name_en if project else key,
            "department": dept.id if dept else None,
            "department_zh": dept.name_zh if dept else None, "department_en": dept.name_en if dept else None,
            "owner": people.get(owner_id, owner_id) or None,
            "namespaces": list(r["namespaces"]), "models": list(r["models"]), "clusters": list(r["clusters"]),
            "gpus": int(r["gpus"]), "active_days": int(r["active_days"]), "idle_days": idle.get(key, 0),
            "gpu_hours_allocated": _r(allocated, 4), "gpu_hours_used": _r(used, 4),
            "util": _r(_div(used, allocated)), "mem": _r(_div(r["mem_x"], r["mem_h"])),
            "peak_util": _r(r["peak_util"]), "peak_mem": _r(r["peak_mem"]),
            "energy_kwh": _r(r["energy_kwh"], 4), "cost": _r(cost, 2),
            "cost_per_useful_gpu_hour": _r(_div(cost, used), 4),
            "requested_gpu_hours": _r(req, 4), "requested_source": "allocation" if req is not None else "metrics",
            "gap_gpu_hours": _r(gap_base - used, 4), "coverage": _r(covs.get(key), 4),
        })
    return out


def _cpu(frame: pl.DataFrame, cpu: pl.DataFrame | None, entities: list[dict[str, Any]], ns_map: dict,
         first: date, last: date, clusters: set[str], focus: Mapping[str, str]) -> dict[str, Any]:
    """CPU figures of each entity (added to ``entities`` in place) and the CPU top list's header.

    Per namespace × day (clusters summed): CPU utilisation = core-seconds used / core-seconds
    requested, CPU coverage = covered seconds / 86,400. An entity's ``cpu_util`` is the mean of its
    namespace-days' utilisation weighted by their allocated GPU-hours (as ``util`` is a GPU-hour
    ratio), over the namespace-days with CPU data and a request; ``cpu_coverage`` is the
    GPU-hour-weighted CPU coverage of all its namespace-days (a day without CPU rows counts 0).
    Cores used and requested (means over the covered time) and the peak are summed over the
    entity's namespaces (the peak: an upper bound, peaks need not coincide).
    """
    none = {"cpu_util": None, "cpu_coverage": None, "cpu_cores_used_mean": None, "cpu_cores_used_peak": None,
            "cpu_cores_requested_mean": None}
    rows = None
    if cpu is not None and cpu.height:
        rows = cpu.filter(pl.col("day").is_between(first, last) & pl.col("cluster").is_in(sorted(clusters))
                          & (pl.col("namespace") != ""))
        if "cluster" in focus:
            rows = rows.filter(pl.col("cluster") == focus["cluster"])
    if rows is None or rows.height == 0:
        for e in entities:
            e.update(none)
        return {"available": False, "note_key": "reports.cpu_not_collected"}
    key_of = {ns: a["project"] for ns, a in ns_map.items() if a.get("project")}
    entity = pl.col("namespace").replace_strict(key_of, default=pl.col("namespace")).alias("entity")
    daily = rows.group_by("namespace", "day").agg(
        pl.col("cpu_core_s").sum(), pl.col("covered_s").sum(), pl.col("cores_used_peak").sum(),
        pl.when(pl.col("requested_core_s").is_not_null().any()).then(pl.col("requested_core_s").sum())
        .alias("requested_core_s"))
    weights = (frame.filter(pl.col("namespace") != "").group_by("namespace", "day")
               .agg(w=pl.col("allocated_gpu_hours").sum()))
    nd = (weights.join(daily, on=["namespace", "day"], how="full", coalesce=True)
          .with_columns(entity, w=pl.col("w").fill_null(0.0),
                        cov=pl.min_horizontal(pl.col("covered_s").fill_null(0.0) / DAY_SECONDS, pl.lit(1.0)),
                        u=pl.when(pl.col("requested_core_s") > 0).then(pl.col("cpu_core_s") / pl.col("requested_core_s"))))
    with_u = pl.col("u").is_not_null() & (pl.col("w") > 0)
    per_entity = nd.group_by("entity").agg(
        uw=(pl.col("u") * pl.col("w")).filter(with_u).sum(), w_u=pl.col("w").filter(with_u).sum(),
        covw=(pl.col("cov") * pl.col("w")).sum(), w=pl.col("w").sum())
    per_ns = (nd.filter(pl.col("covered_s") > 0).group_by("entity", "namespace").agg(
        used=pl.col("cpu_core_s").sum() / pl.col("covered_s").sum(), peak=pl.col("cores_used_peak").max(),
        req=pl.when(pl.col("requested_core_s").is_not_null().any())
        .then(pl.col("requested_core_s").sum() / pl.col("covered_s").sum()))
        .group_by("entity").agg(pl.col("used").sum(), pl.col("peak").sum(),
                                pl.when(pl.col("req").is_not_null().any()).then(pl.col("req").sum()).alias("req")))
    got = {r["entity"]: r for r in per_entity.to_dicts()}
    cores = {r["entity"]: r for r in per_ns.to_dicts()}
    weight = weight_cov = 0.0
    for e in entities:
        g, c = got.get(e["id"]), cores.get(e["id"], {})
        if g is None:
            e.update(none)
            continue
        e.update({"cpu_util": _r(_div(g["uw"], g["w_u"]) if g["w_u"] else None),
                  "cpu_coverage": _r(_div(g["covw"], g["w"]) if g["w"] else None, 4),
                  "cpu_cores_used_mean": _r(c.get("used"), 4), "cpu_cores_used_peak": _r(c.get("peak"), 4),
                  "cpu_cores_requested_mean": _r(c.get("req"), 4)})
        weight += g["w"]
        weight_cov += g["covw"]
    return {"available": True, "basis": "gpu_hour_weighted", "coverage": _r(_div(weight_cov, weight) if weight else None, 4)}


def _economics(frame: pl.DataFrame, prices: Mapping[str, tuple[float, bool]], coverage: dict) -> dict[str, Any]:
    alloc = frame.filter(pl.col("namespace") != "")
    models = sorted(set(frame["model"].to_list())) if frame.height else []
    by_model = []
    cost_total, unknown = 0.0, []
    for m in models:
        f = frame.filter(pl.col("model") == m)
        a = alloc.filter(pl.col("model") == m)
        price = prices.get(m)
        allocated = float(a["allocated_gpu_hours"].sum())
        cost = allocated * price[0] if price else None
        if cost is None:
            unknown.append(m)
        else:
            cost_total += cost
        used = float(a["used_gpu_hours"].sum())
        by_model.append({"model": m, "gpu_hours_allocated": _r(allocated, 4), "gpu_hours_used": _r(used, 4),
                         "energy_kwh": _r(float(f["energy_kwh"].sum()), 4),
                         "price_cny_per_gpu_hour": price[0] if price else None,
                         "price_is_placeholder": bool(price[1]) if price else None,
                         "cost": _r(cost, 2), "cost_per_useful_gpu_hour": _r(_div(cost, used), 4)})
    allocated_h = float(alloc["allocated_gpu_hours"].sum()) if alloc.height else 0.0
    used_h = float(alloc["used_gpu_hours"].sum()) if alloc.height else 0.0
    cost = cost_total if frame.height and not unknown else (cost_total if frame.height else None)
    return {
        "gpu_hours_allocated": _r(allocated_h, 4),
        "gpu_hours_used": _r(used_h, 4),
        "gpu_hours_observed": _r(float(frame["hours"].sum()) if frame.height else 0.0, 4),
        "energy_kwh": _r(float(frame["energy_kwh"].sum()) if frame.height else 0.0, 4),
        "cost": _r(cost, 2),
        "cost_per_useful_gpu_hour": _r(_div(cost, used_h), 4),
        "currency": "CNY",
        "placeholder_prices": any(r["price_is_placeholder"] for r in by_model),
        "unpriced_models": unknown,
        "by_model": by_model,
        "coverage": coverage["metrics"],
    }


def _job_end(a: Mapping[str, Any], last: date) -> date:
    """The day after the allocation's last day inside the month (ends_on is exclusive)."""
    end = a.get("ends_on") or last + timedelta(days=1)
    if a.get("released_on") is not None:
        end = min(end, a["released_on"])
    return min(end, last + timedelta(days=1))


def _training_jobs(frame: pl.DataFrame, history: pl.DataFrame | None, allocs, results: Mapping[int, list[dict]],
                   prices: Mapping[str, tuple[float, bool]], org: Org, people: Mapping[str, str], first: date,
                   last: date, limit: int) -> dict[str, Any]:
    """The month's typical training jobs with time, GPU-hours, energy, cost and recorded quality."""
    jobs = [a for a in allocs if a.get("demand_type") == "training" and a.get("namespace") and a.get("starts_on")
            and _overlap_days(a, first, last) > 0]
    namespaces = sorted({a["namespace"] for a in jobs})
    month = frame.filter(pl.col("namespace").is_in(namespaces)) if jobs else frame.clear()
    before = (history if history is not None else _empty_rollups()).filter(
        pl.col("namespace").is_in(namespaces) & (pl.col("day") < first))
    if before.height:
        before = _with_hours(before).with_columns(price=_price_of(prices)).select(month.columns)
    span = pl.concat([before, month]) if before.height else month
    out = []
    for a in jobs:
        start, end = a["starts_on"], _job_end(a, last)
        rows = span.filter((pl.col("namespace") == a["namespace"]) & (pl.col("day") >= start) & (pl.col("day") < end))
        in_month = rows.filter(pl.col("day") >= first)
        unpriced = bool(rows["price"].is_null().any()) if rows.height else False
        cost = None if unpriced or not rows.height else float((rows["allocated_gpu_hours"] * rows["price"]).sum())
        energy = float(rows["energy_kwh"].sum()) if rows.height else None
        chosen = (results.get(a.get("request_id")) or [None])[-1]
        quality = None
        if chosen:
            quality = {k: chosen.get(k) for k in ("metric", "value", "higher_is_better", "dataset", "baseline",
                                                  "improvement", "run", "recorded_at")}
        gain = (quality or {}).get("improvement")
        project = org.projects.get(a.get("project") or "")
        owner = a.get("owner") or ""
        out.append({
            "request_id": a.get("request_id"), "number": a.get("number"), "project": a.get("project") or a["namespace"],
            "name_zh": project.name_zh if project else (a.get("project") or a["namespace"]),
            "name_en": project.name_en if project else (a.get("project") or a["namespace"]),
            "owner": people.get(owner, owner) or None, "namespace": a["namespace"], "pool": a.get("pool"),
            "gpus": int(a.get("gpus") or 0), "starts_on": start.isoformat(),
            "until": (end - timedelta(days=1)).isoformat(),
            "wall_time_h": _r(24.0 * max(0, (end - start).days), 4),
            "gpu_hours": _r(float(rows["allocated_gpu_hours"].sum()) if rows.height else None, 4),
            "gpu_hours_used": _r(float(rows["used_gpu_hours"].sum()) if rows.height else None, 4),
            "energy_kwh": _r(energy, 4), "cost": _r(cost, 2),
            "month_gpu_hours": _r(float(in_month["allocated_gpu_hours"].sum()) if in_month.height else 0.0, 4),
            "month_energy_kwh": _r(float(in_month["energy_kwh"].sum()) if in_month.height else 0.0, 4),
            "days_with_data": int(rows["day"].n_unique()) if rows.height else 0,
            "quality": quality, "results_recorded": len(results.get(a.get("request_id")) or []),
            "kwh_per_improvement": _r(_div(energy, gain) if gain is not None and gain > 0 else None, 6),
        })
    out.sort(key=lambda j: (-(j["month_gpu_hours"] or 0.0), j["request_id"] or 0))
    return {"definition_key": "quality.typical_definition", "limit": limit, "candidates": len(out),
            "jobs": out[:limit]}
