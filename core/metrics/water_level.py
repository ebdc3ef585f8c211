"""The water level (资源水位): totals, allocation, use, free fragments and trends of the GPU pools.

The figures per pool (clusters and GPU models are sums of their pools) are those of
:mod:`core.capacity_figures`, on today: ``total`` (GPUs of the pool's inventory nodes; the size
in ``data/org.yaml`` when no node carries the pool), ``allocated`` (granted by the portal and
counting today, :func:`allocated_by_pool` — the count the capacity checks use), ``reserved``,
``available`` (total − allocated − reserved), ``in_use`` (GPUs whose latest utilisation is at
least ``water_level.in_use_util`` of ``data/metrics_thresholds.yaml``, from one
:meth:`MetricsSource.latest` call) and ``in_use_unallocated`` (the busy GPUs of namespaces no
allocation owns today), with the namespaces behind the last one (:func:`unmanaged`).

The heat map is one cell per node × GPU slot coloured by the latest utilisation, with its status
``busy`` / ``idle`` (a workload on it, below the in-use threshold) / ``unallocated`` (no workload
on the GPU — the status says nothing of the portal's allocations) / ``no_data`` (no sample).
Fragmentation counts, per pool and request shape (1, 2, 4, 8 GPUs), how many such requests fit
now on the free slots of each node (a request never straddles nodes): ``Σ_nodes ⌊free / shape⌋``;
the free GPUs that fit no request of that shape are ``stranded``.
Free slots are the sampled GPUs with no workload (dcgm-exporter reports no pod on them); a slot
without a sample is not counted free.

Trends come from the daily rollups: per pool and day (or month) the GPU-hours with a workload
(the rollups' ``allocated_gpu_hours``: observed, not the portal's grants), the used GPU-hours and
the mean utilisation (sample-weighted over every GPU of the pool). :func:`trends` computes them
from rollup rows; :func:`trend` has the database sum them per pool and day
(:mod:`core.metrics.trend_sql`, one grouped query) — the same figures.

The pure functions take frames and return frames; :func:`snapshot` and :func:`trend` are the
services pages call (one ``latest()`` call and one grouped rollup query per page, whatever the fleet size).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, MutableMapping, Sequence

import polars as pl
from sqlalchemy.orm import Session, sessionmaker

from core import capacity_figures as cf
from core.clock import utc_today
from core.cluster.inventory import GpuNode
from core.datafiles import load_yaml
from core.db.session import unit_of_work
from core.errors import InputError
from core.i18n import Msg
from core.identity import OPS_ROLES, Identity, require
from core.org import Org, load_org

# the live water level is ops material; executives read it in the published monthly board
WATER_LEVEL_ROLES = OPS_ROLES
HEAT_STATUSES = ("busy", "idle", "unallocated", "no_data")
LEVEL_COLUMNS = cf.FIGURES

NODE_SCHEMA = {"cluster": pl.Utf8, "pool": pl.Utf8, "hostname": pl.Utf8, "gpus": pl.Int64}
LEVEL_SCHEMA = {"cluster": pl.Utf8, "pool": pl.Utf8, "kind": pl.Utf8, "model": pl.Utf8,
                **{c: pl.Int64 for c in LEVEL_COLUMNS}}
HEAT_SCHEMA = {"cluster": pl.Utf8, "pool": pl.Utf8, "hostname": pl.Utf8, "slot": pl.Int64, "uuid": pl.Utf8,
               "namespace": pl.Utf8, "util": pl.Float64, "status": pl.Utf8}
FREE_SCHEMA = {"pool": pl.Utf8, "hostname": pl.Utf8, "gpus": pl.Int64, "free": pl.Int64}
FRAG_SCHEMA = {"pool": pl.Utf8, "shape": pl.Int64, "fits": pl.Int64, "free_gpus": pl.Int64, "stranded": pl.Int64}
UNMANAGED_SCHEMA = {"pool": pl.Utf8, "namespace": pl.Utf8, "gpus": pl.Int64}
TREND_SCHEMA = {"pool": pl.Utf8, "period": pl.Date, "allocated_gpu_hours": pl.Float64,
                "used_gpu_hours": pl.Float64, "mean_util": pl.Float64}

# Last good ``latest()`` frame per source, for the stale banner when the source fails.
_LAST_GOOD: dict[str, tuple[pl.DataFrame, datetime]] = {}


# --------------------------------------------------------------------------- thresholds


def load_thresholds() -> dict[str, Any]:
    """``data/metrics_thresholds.yaml`` (checked: the water-level and hint sections exist)."""
    raw = load_yaml("metrics_thresholds.yaml") or {}
    for section in ("water_level", "training_hints"):
        if not isinstance(raw.get(section), dict):
            raise InputError("error.data_entry_invalid", field="metrics_thresholds.yaml", entry=section)
    shapes = raw["water_level"].get("request_shapes")
    if not shapes or not all(isinstance(s, int) and s > 0 for s in shapes):
        raise InputError("error.data_entry_invalid", field="metrics_thresholds.yaml", entry="water_level.request_shapes")
    rows = raw["water_level"].get("heat_map_max_rows")
    if not isinstance(rows, int) or rows < 1:
        raise InputError("error.data_entry_invalid", field="metrics_thresholds.yaml", entry="water_level.heat_map_max_rows")
    return raw


def request_shapes() -> tuple[int, ...]:
    """The request shapes checked for fragmentation (``water_level.request_shapes``)."""
    return tuple(int(x) for x in load_thresholds()["water_level"]["request_shapes"])


def in_use_threshold() -> float:
    """The utilisation from which a GPU counts as in use (``water_level.in_use_util``)."""
    return float(load_thresholds()["water_level"]["in_use_util"])


# --------------------------------------------------------------------------- pure functions


def nodes_frame(nodes: Iterable[GpuNode]) -> pl.DataFrame:
    """Inventory nodes as a frame: cluster, pool ("" when unlabelled), hostname, gpus."""
    rows = [(n.cluster, n.pool or "", n.name, int(n.gpus)) for n in nodes]
    return pl.DataFrame(rows, schema=NODE_SCHEMA, orient="row")


def pool_totals(org: Org, nodes: pl.DataFrame) -> pl.DataFrame:
    """cluster, pool, kind, model, total for every pool of ``org``: :func:`core.capacity_figures.total`
    with the GPUs of the nodes labelled with the pool (the org's pool size when no node carries it)."""
    on_nodes = dict(nodes.group_by("pool").agg(pl.col("gpus").sum()).iter_rows()) if nodes.height else {}
    rows = [(p.cluster, p.id, p.kind, p.gpu, cf.total(p, on_nodes.get(p.id))) for p in org.pools.values()]
    return pl.DataFrame(rows, schema={"cluster": pl.Utf8, "pool": pl.Utf8, "kind": pl.Utf8, "model": pl.Utf8,
                                      "total": pl.Int64}, orient="row")


def _busy_gpus(latest: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """One row per sampled GPU of a known pool: pool, namespace, util, weight 1."""
    if latest.height == 0:
        return pl.DataFrame(schema={"pool": pl.Utf8, "namespace": pl.Utf8, "util": pl.Float64, "weight": pl.Float64})
    return (latest.unique(subset="uuid", keep="first").select("hostname", "namespace", "util")
            .join(nodes.select("hostname", "pool"), on="hostname", how="inner").filter(pl.col("pool") != "")
            .select("pool", pl.col("namespace").fill_null(""), "util", weight=pl.lit(1.0)))


def usage_by_pool(latest: pl.DataFrame, nodes: pl.DataFrame, threshold: float,
                  owned: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """Per pool: (in use, in use without an allocation) — GPUs whose latest ``util`` ≥ ``threshold``
    (:func:`core.capacity_figures.usage`), and those of them in a namespace not in ``owned``. GPUs
    on nodes of no known pool are left out."""
    frame = pl.DataFrame({"namespace": sorted(set(owned))}, schema={"namespace": pl.Utf8})
    found = cf.usage(_busy_gpus(latest, nodes), frame, threshold)
    return {p: (int(a), int(b)) for p, (a, b) in found.items()}


def unmanaged(latest: pl.DataFrame, nodes: pl.DataFrame, threshold: float, owned: Iterable[str]) -> pl.DataFrame:
    """The busy GPUs no allocation owns, by pool and namespace ("" for a GPU running in no
    namespace), most GPUs first."""
    keep = set(owned)
    rows = _busy_gpus(latest, nodes).filter(cf.busy("util", threshold) & ~pl.col("namespace").is_in(sorted(keep)))
    if rows.height == 0:
        return pl.DataFrame(schema=UNMANAGED_SCHEMA)
    return (rows.group_by("pool", "namespace").agg(pl.len().cast(pl.Int64).alias("gpus"))
            .sort(["gpus", "pool", "namespace"], descending=[True, False, False]))


def pool_levels(org: Org, totals: pl.DataFrame, allocated: dict[str, int],
                used: dict[str, tuple[int, int]] | None = None) -> pl.DataFrame:
    """One row per pool with :data:`LEVEL_COLUMNS` (:func:`core.capacity_figures.pool_figures`);
    ``used`` is :func:`usage_by_pool` (None: no metrics read, in use 0)."""
    rows = []
    for cluster, pool, kind, model, size in totals.iter_rows():
        in_use, unowned = (used or {}).get(pool, (0, 0))
        f = cf.pool_figures(org.pool(pool), allocated=int(allocated.get(pool, 0)), size=size, in_use=in_use,
                            in_use_unallocated=unowned)
        rows.append((cluster, pool, kind, model, *(int(getattr(f, c)) for c in LEVEL_COLUMNS)))
    return pl.DataFrame(rows, schema=LEVEL_SCHEMA, orient="row")


def levels_by(levels: pl.DataFrame, key: str) -> pl.DataFrame:
    """Pool levels summed by ``key`` ("cluster" or "model"), sorted by it."""
    return levels.group_by(key).agg(*[pl.col(c).sum() for c in LEVEL_COLUMNS]).sort(key)


def level_totals(levels: pl.DataFrame) -> dict[str, int]:
    """The whole fleet's :data:`LEVEL_COLUMNS`."""
    return {c: int(levels[c].sum()) for c in LEVEL_COLUMNS}


def heat_map(latest: pl.DataFrame, nodes: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """One row per node × GPU slot (:data:`HEAT_SCHEMA`): the inventory's slots joined with the
    latest samples (a sampled GPU beyond the node's slot count is kept)."""
    slots = (nodes.with_columns(slot=pl.int_ranges(0, pl.col("gpus"))).explode("slot")
             .drop_nulls("slot").select("cluster", "pool", "hostname", pl.col("slot").cast(pl.Int64)))
    samples = (latest.filter(pl.col("hostname").is_in(nodes["hostname"].implode()))
               .with_columns(slot=pl.col("gpu").cast(pl.Int64, strict=False))
               .drop_nulls("slot").select("hostname", "slot", "uuid", "namespace", "util"))
    joined = slots.join(samples, on=["hostname", "slot"], how="full", coalesce=True)
    node_info = nodes.select("hostname", pl.col("cluster").alias("_c"), pl.col("pool").alias("_p"))
    joined = (joined.join(node_info, on="hostname", how="left")
              .with_columns(cluster=pl.coalesce("cluster", "_c"), pool=pl.coalesce("pool", "_p")).drop("_c", "_p"))
    status = (pl.when(pl.col("util").is_null() & pl.col("uuid").is_null()).then(pl.lit("no_data"))
              .when(pl.col("namespace").fill_null("") == "").then(pl.lit("unallocated"))
              .when(pl.col("util").fill_null(0.0) < threshold).then(pl.lit("idle"))
              .otherwise(pl.lit("busy")))
    return (joined.with_columns(status=status, namespace=pl.col("namespace").fill_null(""))
            .select([pl.col(c).cast(t) for c, t in HEAT_SCHEMA.items()]).sort("cluster", "pool", "hostname", "slot"))


def natural_key(name: str) -> tuple:
    """Sort key that compares runs of digits as numbers: node-999 before node-1000 (as text, a pool
    of more than 1,000 numbered nodes would put node-1000 between node-099 and node-100)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def node_groups(heat: pl.DataFrame, pool: str, max_rows: int) -> list[list[str]]:
    """The pool's nodes in natural order (:func:`natural_key`), in at most ``max_rows`` groups of
    consecutive nodes (one group a node when they fit): a pool of 3,200 nodes is 54 rows of 60
    nodes, each opened on its own."""
    hosts = sorted(heat.filter(pl.col("pool") == pool)["hostname"].unique().to_list(), key=natural_key)
    size = max(1, -(-len(hosts) // max(1, max_rows)))
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]


def heat_by_group(heat: pl.DataFrame, groups: list[list[str]]) -> pl.DataFrame:
    """The heat map of node groups: per group (its index) and slot, the mean latest utilisation of
    the slot's GPUs running a workload (busy or idle; null when none) and how many slots are in each
    status (:data:`HEAT_STATUSES`)."""
    index = pl.DataFrame({"hostname": [h for g in groups for h in g],
                          "group": [i for i, g in enumerate(groups) for _ in g]}, schema={"hostname": pl.Utf8, "group": pl.Int64})
    working = pl.col("status").is_in(["busy", "idle"])
    return (heat.join(index, on="hostname", how="inner").group_by("group", "slot")
            .agg(pl.col("util").filter(working).mean().alias("util"),
                 *[(pl.col("status") == s).sum().cast(pl.Int64).alias(s) for s in HEAT_STATUSES])
            .sort("group", "slot"))


def free_per_node(heat: pl.DataFrame) -> pl.DataFrame:
    """pool, hostname, gpus (slots), free (sampled GPUs with no workload) per node."""
    if heat.height == 0:
        return pl.DataFrame(schema=FREE_SCHEMA)
    return (heat.group_by("pool", "hostname")
            .agg(pl.len().cast(pl.Int64).alias("gpus"),
                 (pl.col("status") == "unallocated").sum().cast(pl.Int64).alias("free"))
            .select(list(FREE_SCHEMA)).sort("pool", "hostname"))


def fragmentation(free: pl.DataFrame, shapes: Sequence[int]) -> pl.DataFrame:
    """Per pool and request shape: how many requests of ``shape`` GPUs fit now
    (``Σ_nodes ⌊free / shape⌋``), the pool's free GPUs and the free GPUs stranded for that shape."""
    rows = []
    for pool in sorted(set(free["pool"].to_list())):
        per_node = free.filter(pl.col("pool") == pool)["free"].to_list()
        total = int(sum(per_node))
        for shape in shapes:
            fits = int(sum(f // shape for f in per_node))
            rows.append((pool, int(shape), fits, total, total - fits * shape))
    return pl.DataFrame(rows, schema=FRAG_SCHEMA, orient="row")


def trends(rollups: pl.DataFrame, nodes: pl.DataFrame, *, period: str = "day") -> pl.DataFrame:
    """Per pool and day (``period="day"``) or month (first day of the month): allocated and used
    GPU-hours and the sample-weighted mean utilisation, from daily rollup rows (:data:`ROLLUP_SCHEMA`)."""
    if period not in ("day", "month"):
        raise InputError("error.choice", field="period", value=period, choices="day, month")
    if rollups.height == 0:
        return pl.DataFrame(schema=TREND_SCHEMA)
    key = pl.col("day") if period == "day" else pl.col("day").dt.truncate("1mo")
    weighted = pl.col("mean_util").fill_null(0.0) * pl.col("samples")
    n = pl.when(pl.col("mean_util").is_not_null()).then(pl.col("samples")).otherwise(0)
    return (rollups.join(nodes.select("hostname", "pool"), on="hostname", how="inner")
            .filter(pl.col("pool") != "")
            .with_columns(period=key, _w=weighted, _n=n)
            .group_by("pool", "period")
            .agg(pl.col("allocated_gpu_hours").sum(), pl.col("used_gpu_hours").sum(),
                 (pl.col("_w").sum() / pl.col("_n").sum()).alias("mean_util"))
            .select([pl.col(c).cast(t) for c, t in TREND_SCHEMA.items()]).sort("pool", "period"))


# --------------------------------------------------------------------------- services


def allocated_by_pool(session: Session) -> dict[str, int]:
    """GPUs allocated per pool today: the one definition the capacity checks use too
    (:func:`core.lifecycle.capacity.committed_on` — held allocations, and scheduled ones from their
    start date, not before)."""
    from core.lifecycle.capacity import committed_on

    return committed_on(session)


@dataclass(frozen=True)
class WaterLevel:
    """One water-level reading: frames for the page and how fresh they are."""

    pools: pl.DataFrame
    clusters: pl.DataFrame
    models: pl.DataFrame
    totals: dict[str, int]
    heat: pl.DataFrame
    free: pl.DataFrame
    fragments: pl.DataFrame
    fetched_at: datetime
    data_as_of: datetime | None
    stale: bool
    banner: Msg | None = field(default=None, compare=False)
    # the busy GPUs no allocation owns, by pool and namespace (:func:`unmanaged`)
    unmanaged: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UNMANAGED_SCHEMA), compare=False)
    shapes: tuple[int, ...] = field(default_factory=lambda: request_shapes())
    in_use_util: float = field(default_factory=lambda: in_use_threshold())


def _source_key(source: Any) -> str:
    """A key that stays the same for a source rebuilt from the same settings (folder or servers)."""
    where = getattr(source, "root", None) or sorted((getattr(source, "servers", None) or {}).items()) or id(source)
    return f"latest:{type(source).__name__}:{where}"


def require_reader(actor: Identity) -> None:
    """Raise :class:`~core.identity.PermissionDenied` unless ``actor`` may read the water level. The
    figures themselves are fleet-wide, the same for every reader, so a page may share them between
    readers once each has passed this check."""
    require(actor, WATER_LEVEL_ROLES, "read the water level")


def snapshot(*, sessions: sessionmaker[Session], actor: Identity, source: Any, nodes: Sequence[GpuNode],
             at: datetime | None = None, now: datetime | None = None,
             cache: MutableMapping[str, tuple[pl.DataFrame, datetime]] | None = None) -> WaterLevel:
    """The live water level: one ``source.latest(at)`` call (the last good frame, marked stale, when
    the source is unavailable — see :func:`core.metrics.prometheus.with_last_good`) and one grouped
    allocation query.

    Raises :class:`~core.identity.PermissionDenied` for roles other than ops, admin and executives,
    :class:`~core.metrics.prometheus.MetricsUnavailable` when the source fails with no good frame yet,
    and whatever the source raises for malformed data (:class:`InputError` naming the file).
    """
    from core.metrics.prometheus import with_last_good

    require_reader(actor)
    threshold, shapes = in_use_threshold(), request_shapes()
    fetched = with_last_good(lambda: source.latest(at), _LAST_GOOD if cache is None else cache,
                             key=_source_key(source), now=now)
    latest = fetched.frame
    from core.lifecycle.capacity import holdings

    today = utc_today()
    with unit_of_work(sessions) as s:
        held = holdings(s)
    allocated, owned = cf.allocated_on(held, today, today), cf.owned_on(held, today, today)
    nf, org = nodes_frame(nodes), load_org()
    levels = pool_levels(org, pool_totals(org, nf), allocated, usage_by_pool(latest, nf, threshold, owned))
    heat = heat_map(latest, nf, threshold)
    free = free_per_node(heat)
    data_as_of = latest["ts"].max() if latest.height and "ts" in latest.columns else None
    return WaterLevel(
        pools=levels.sort("cluster", "pool"), clusters=levels_by(levels, "cluster"), models=levels_by(levels, "model"),
        totals=level_totals(levels), heat=heat, free=free, fragments=fragmentation(free, shapes),
        unmanaged=unmanaged(latest, nf, threshold, owned),
        fetched_at=fetched.as_of, data_as_of=data_as_of, stale=fetched.stale, banner=fetched.banner(),
        shapes=shapes, in_use_util=threshold,
    )


def trend_stamp(sessions: sessionmaker[Session]) -> tuple[int, str]:
    """What a cached :func:`trend` is keyed on besides its arguments: the newest rollup row id
    and time (:func:`core.metrics.persistence.newest_rollup`), which change whenever a day is rolled up."""
    from core.metrics.persistence import newest_rollup

    with unit_of_work(sessions) as s:
        return newest_rollup(s)


def trend(*, sessions: sessionmaker[Session], actor: Identity, nodes: Sequence[GpuNode], first: date, last: date,
          period: str = "day") -> pl.DataFrame:
    """Per pool and day or month between ``first`` and ``last``: allocated/used GPU-hours and mean
    utilisation from ``gpu_daily_rollups`` — :func:`trends`' figures, summed per pool and day in the
    database (:mod:`core.metrics.trend_sql`, one grouped query). :class:`InputError` (field "first")
    when ``first`` is after ``last``, (field "period") for a period other than day or month;
    PermissionDenied as :func:`snapshot`."""
    from core.metrics.trend_sql import pool_day_sums, trend_frame

    require_reader(actor)
    if first > last:
        raise InputError("pools.bad_range", field="first", first=first.isoformat(), last=last.isoformat())
    if period not in ("day", "month"):
        raise InputError("error.choice", field="period", value=period, choices="day, month")
    with unit_of_work(sessions) as s:
        sums = pool_day_sums(s, first, last, ((n.name, n.pool or "") for n in nodes))
    return trend_frame(sums, period=period)

