"""Views of the water level (资源水位): headline figures, the table and bars by cluster / pool / GPU
model, the GPU heat map of a pool, its fragmentation against the request shapes, and the trend.

Reads go through ``st.cache_data(ttl=60)``; the live part is re-run by the page's fragment."""

from __future__ import annotations

import os
from datetime import date, timedelta

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from core.adjust.scheduler import scheduler_workloads
from core.clock import utc_today
from core import config
from core.db.changes import cache_seconds
from core.identity import Identity
from core.metrics import water_level as wl
from core.metrics.sources import (FLEET, LIVE, InventoryReading, metrics_dir, metrics_source, read_inventory,
                                  workload_rows)
from ui.builtin_text import choose
from ui.charts import show
from ui.context import ctx, me
from ui.i18n import render, t
from ui.sources import as_code, technical_sources
from ui.times import when
from ui.warnings_view import pool_label

LEVEL_KEYS = wl.LEVEL_COLUMNS
GROUPINGS = ("cluster", "pool", "model")


@st.cache_data(ttl=60, show_spinner=False)
def _inventory(url: str) -> InventoryReading:
    return read_inventory(metrics_source())


# The water level and its trend are fleet-wide, the same for every reader: cached once for all of
# them (``_reader`` is left out of the cache key), each reader's role checked before (wl.require_reader).
@st.cache_data(ttl=60, show_spinner=False)
def _snapshot(url: str, _reader: Identity) -> wl.WaterLevel:
    return wl.snapshot(sessions=ctx().sessions, actor=_reader, source=metrics_source(), nodes=_inventory(url).nodes)


@st.cache_data(ttl=cache_seconds("pools_trend"), max_entries=8, show_spinner=False)
def _trend(stamp: tuple, _reader: Identity, _nodes: tuple, first: date, last: date,
           period: str) -> pl.DataFrame:
    return wl.trend(sessions=ctx().sessions, actor=_reader, nodes=_nodes, first=first, last=last, period=period)


@st.cache_data(ttl=60, show_spinner=False)
def _scheduler(url: str, actor: Identity) -> dict:
    return scheduler_workloads(actor=actor)


def refresh_seconds() -> int:
    """How often the live part refreshes (``data/metrics_thresholds.yaml``)."""
    return int(wl.load_thresholds()["water_level"]["refresh_seconds"])


def _url() -> str:
    """The cache key of where the data comes from: database, metrics folder, Prometheus servers
    and the cluster backend with its kubeconfig."""
    cfg = config.load()
    return (f"{cfg.database_url}|{metrics_dir()}|{os.environ.get('COMPUTELOOP_PROMETHEUS_URLS', '')}"
            f"|{cfg.cluster_backend}|{cfg.kubeconfig}")


def water_level() -> wl.WaterLevel:
    """The current water level (cached for a minute, shared by every reader)."""
    reader = me()
    wl.require_reader(reader)
    return _snapshot(_url(), reader)


def inventory() -> InventoryReading:
    """The node inventory the water level counts (cached for a minute, like the water level)."""
    return _inventory(_url())


def freshness(snap: wl.WaterLevel, nodes: InventoryReading) -> None:
    """The "as of" lines (metrics and node inventory), the stale banner when the metrics source
    failed, and one banner per cluster whose node list could not be read."""
    if snap.banner is not None:
        st.warning(render(snap.banner), icon=":material/history:")
    for banner in nodes.banners():
        st.warning(render(banner), icon=":material/cloud_off:")
    st.caption(origin_text(nodes))
    data = when(snap.data_as_of) if snap.data_as_of else t("pools.no_samples")
    st.caption(t("pools.as_of", data=data, fetched=when(snap.fetched_at, seconds=True),
                 threshold=round(snap.in_use_util * 100)))
    # Where exactly (the kubeconfig, the fleet file, the setting that switches to live clusters): ops' sources.
    technical_sources([render(nodes.origin_message())])


def origin_text(nodes: InventoryReading) -> str:
    """Where the node list comes from, in words (the files and settings are in the technical sources)."""
    if nodes.origin == LIVE:
        answering = sum(1 for c in nodes.clusters if not c.stale)
        return t("uitext.inventory_origin.live", answering=answering, total=len(nodes.clusters),
                 at=when(nodes.read_at, seconds=True))
    return t("uitext.inventory_origin.fleet" if nodes.origin == FLEET else "uitext.inventory_origin.demo")


def figure_help(key: str, snap: wl.WaterLevel) -> str:
    """What the figure ``key`` counts (:mod:`core.capacity_figures`), for its tooltip."""
    return t(f"capacity.help.{key}", threshold=round(snap.in_use_util * 100))


def headline(snap: wl.WaterLevel) -> None:
    """The fleet's capacity figures, each with what it counts in its tooltip."""
    for col, key in zip(st.columns(len(LEVEL_KEYS)), LEVEL_KEYS):
        col.metric(t(f"pools.level.{key}"), f"{snap.totals[key]:,}", help=figure_help(key, snap))


def _level_table(frame: pl.DataFrame, by: str) -> pd.DataFrame:
    cols = {by: t(f"pools.col.{by}")}
    if by == "pool":
        cols |= {"cluster": t("pools.col.cluster"), "model": t("pools.col.model")}
    cols |= {k: t(f"pools.level.{k}") for k in LEVEL_KEYS}
    return frame.select(list(cols)).to_pandas().rename(columns=cols)


def _level_chart(frame: pl.DataFrame, by: str) -> alt.Chart:
    parts = {"allocated": t("pools.level.allocated"), "reserved": t("pools.level.reserved"),
             "available": t("pools.level.available"), "in_use": t("pools.level.in_use")}
    long = (frame.select(by, *parts).to_pandas()
            .melt(id_vars=[by], var_name="measure", value_name="gpus"))
    long["measure"] = long["measure"].map(parts)
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y(f"{by}:N", title=t(f"pools.col.{by}")),
        x=alt.X("gpus:Q", title=t("pools.axis.gpus")),
        yOffset=alt.YOffset("measure:N", sort=list(parts.values())),
        color=alt.Color("measure:N", title="", sort=list(parts.values())),
        tooltip=[alt.Tooltip(f"{by}:N", title=t(f"pools.col.{by}")), alt.Tooltip("measure:N", title=""),
                 alt.Tooltip("gpus:Q", title=t("pools.axis.gpus"))],
    )


def levels(snap: wl.WaterLevel) -> None:
    """Table and bar chart of the levels grouped by cluster, pool or GPU model (a choice)."""
    labels = {g: t(f"pools.group.{g}") for g in GROUPINGS}
    by = st.radio(t("pools.group_by"), list(labels), format_func=labels.get, horizontal=True, key="pools_group")
    frame = {"cluster": snap.clusters, "pool": snap.pools, "model": snap.models}[by]
    left, right = st.columns([3, 2])
    helps = {t(f"pools.level.{k}"): st.column_config.NumberColumn(help=figure_help(k, snap)) for k in LEVEL_KEYS}
    left.dataframe(_level_table(frame, by), hide_index=True, width="stretch", column_config=helps)
    show(_level_chart(frame, by), right)


def unmanaged(snap: wl.WaterLevel) -> None:
    """The namespaces whose busy GPUs no allocation owns (in use without an allocation)."""
    st.subheader(t("pools.unmanaged_title"), help=figure_help("in_use_unallocated", snap))
    if snap.unmanaged.height == 0:
        st.caption(t("pools.unmanaged_none"))
        return
    st.caption(t("pools.unmanaged_caption"))
    frame = snap.unmanaged.with_columns(pl.when(pl.col("namespace") == "").then(pl.lit(t("pools.no_namespace")))
                                        .otherwise(pl.col("namespace")).alias("namespace"))
    st.dataframe(frame.to_pandas().rename(columns={"pool": t("pools.col.pool"), "namespace": t("pools.axis.namespace"),
                                                   "gpus": t("pools.col.busy_gpus")}),
                 hide_index=True, width="stretch")


def pick_pool(snap: wl.WaterLevel) -> str | None:
    """A picker of the pools that have nodes on the heat map (the largest first by default)."""
    pools = [p for p in snap.pools.sort("total", descending=True)["pool"].to_list()
             if p in set(snap.heat["pool"].to_list())]
    if not pools:
        return None
    labels = {p: p for p in pools}
    return st.selectbox(t("pools.pick_pool"), pools, format_func=labels.get, placeholder=choose(), key="pools_pool")


def heat_map(snap: wl.WaterLevel, pool: str) -> None:
    """Node × GPU slot of one pool: colour = latest utilisation; unallocated and no-data slots grey.
    A pool of more nodes than ``heat_map_max_rows`` (data/metrics_thresholds.yaml) shows groups of
    neighbouring nodes first, then the nodes of the group picked."""
    cells = snap.heat.filter(pl.col("pool") == pool)
    groups = wl.node_groups(cells, pool, int(wl.load_thresholds()["water_level"]["heat_map_max_rows"]))
    if any(len(g) > 1 for g in groups):
        chosen = _group_map(cells, groups, key=f"pools_nodes_{pool}")
        cells = cells.filter(pl.col("hostname").is_in(groups[chosen]))
    _node_map(snap, cells.to_pandas())


# Every row of a heat map named in full: Vega hides labels it thinks overlap and cuts long ones.
ROW_LABELS = alt.Axis(labelOverlap=False, labelLimit=200)


def _rows_height(rows: int) -> int:
    """A heat map's height for 18 px a row: Streamlit fits the whole chart, axes and titles
    included, into the height (autosize "fit"), so the slot axis below the rows is added."""
    return 18 * rows + 75  # (+ 60 more where the legend is below, see _group_map)


def _tail(first: str, last: str) -> str:
    """``last`` without the part it shares with ``first`` (hq-lang-node-000 … 003)."""
    shared = len(os.path.commonprefix([first, last]))
    while shared and last[shared - 1].isdigit():  # keep a number whole: 019 – 020, not 019 – 20
        shared -= 1
    return last[shared:] or last


def _group_map(cells: pl.DataFrame, groups: list[list[str]], key: str) -> int:
    """The heat map of node groups and the picker of one group; the group picked (its index)."""
    # the rows named by their first and last node (the caption gives the group size: a narrow
    # screen keeps room for the cells); the picker below says how many nodes each has
    names = [f"{g[0]} – {_tail(g[0], g[-1])}" if len(g) > 1 else g[0] for g in groups]
    st.caption(t("pools.heat_grouped", nodes=sum(len(g) for g in groups), size=len(groups[0])))
    frame = wl.heat_by_group(cells, groups).to_pandas()
    frame["name"] = [names[i] for i in frame["group"]]
    frame["util_pct"] = (frame["util"] * 100).round(1)
    status = [alt.Tooltip(f"{s}:Q", title=t(f"pools.status.{s}")) for s in wl.HEAT_STATUSES]
    base = alt.Chart(frame).encode(
        x=alt.X("slot:O", title=t("pools.axis.slot")),
        y=alt.Y("name:N", title=t("pools.axis.node_group"), sort=names, axis=ROW_LABELS),
        tooltip=[alt.Tooltip("name:N", title=t("pools.axis.node_group")), alt.Tooltip("slot:O", title=t("pools.axis.slot")),
                 alt.Tooltip("util_pct:Q", title=t("pools.axis.mean_util")), *status])
    working = base.transform_filter("datum.util_pct != null").mark_rect().encode(
        color=alt.Color("util_pct:Q", title=t("pools.axis.mean_util"), scale=alt.Scale(domain=[0, 100], scheme="viridis"),
                        legend=alt.Legend(orient="bottom")))
    none = base.transform_filter("datum.util_pct == null").mark_rect(color="#d9d9d9")
    show((working + none).properties(height=_rows_height(len(groups)) + 60))
    labels = {i: t("pools.node_group", first=g[0], last=_tail(g[0], g[-1]), n=len(g)) for i, g in enumerate(groups)}
    return st.selectbox(t("pools.pick_group"), list(labels), format_func=labels.get, placeholder=choose(), key=key)


def _node_map(snap: wl.WaterLevel, cells) -> None:  # noqa: ANN001 - a pandas frame of heat cells
    status = {s: t(f"pools.status.{s}") for s in wl.HEAT_STATUSES}
    cells["state"] = cells["status"].map(status)
    cells["util_pct"] = (cells["util"] * 100).round(1)
    base = alt.Chart(cells).encode(
        x=alt.X("slot:O", title=t("pools.axis.slot")),
        y=alt.Y("hostname:N", title=t("pools.axis.node"), axis=ROW_LABELS,
                sort=sorted(cells["hostname"].unique(), key=wl.natural_key)),
        tooltip=[alt.Tooltip("hostname:N", title=t("pools.axis.node")), alt.Tooltip("slot:O", title=t("pools.axis.slot")),
                 alt.Tooltip("state:N", title=t("pools.axis.status")), alt.Tooltip("util_pct:Q", title=t("pools.axis.util")),
                 alt.Tooltip("namespace:N", title=t("pools.axis.namespace"))],
    )
    allocated = base.transform_filter(alt.FieldOneOfPredicate(field="status", oneOf=["busy", "idle"])).mark_rect().encode(
        color=alt.Color("util_pct:Q", title=t("pools.axis.util"), scale=alt.Scale(domain=[0, 100], scheme="viridis")))
    other = base.transform_filter(alt.FieldOneOfPredicate(field="status", oneOf=["unallocated", "no_data"])).mark_rect(
        color="#d9d9d9")
    idle = base.transform_filter(alt.FieldEqualPredicate(field="status", equal="idle")).mark_text(
        text="○", color="white", fontSize=12)
    show((allocated + other + idle).properties(height=_rows_height(cells["hostname"].nunique())))
    counts = cells["status"].value_counts()
    st.caption(t("pools.heat_legend", busy=int(counts.get("busy", 0)), idle=int(counts.get("idle", 0)),
                 unallocated=int(counts.get("unallocated", 0)), no_data=int(counts.get("no_data", 0)),
                 threshold=round(snap.in_use_util * 100)))


def fragments(snap: wl.WaterLevel, pool: str) -> None:
    """How many requests of each shape fit now in the pool, and the fit of every pool."""
    mine = snap.fragments.filter(pl.col("pool") == pool)
    if mine.height:
        st.markdown(t("pools.fragments_of", pool=pool, free=int(mine["free_gpus"][0]), nodes=snap.free.filter(
            (pl.col("pool") == pool) & (pl.col("free") > 0)).height))
    wide = snap.fragments.pivot(on="shape", index=["pool", "free_gpus"], values="fits").to_pandas()
    wide = wide.rename(columns={"pool": t("pools.col.pool"), "free_gpus": t("pools.col.free_gpus"),
                                **{str(s): t("pools.col.fits", shape=s) for s in snap.shapes}})
    st.dataframe(wide, hide_index=True, width="stretch")


def trend_section(first: date | None = None) -> None:
    """Allocated vs used GPU-hours and mean utilisation per pool over days or months (daily rollups)."""
    labels = {"day": t("pools.period.day"), "month": t("pools.period.month")}
    period = st.radio(t("pools.period"), list(labels), format_func=labels.get, horizontal=True, key="pools_period")
    days = int(wl.load_thresholds()["water_level"]["trend_days"])
    last = utc_today()
    first = first or (last - timedelta(days=days if period == "day" else 365))
    reader = me()
    wl.require_reader(reader)
    nodes = tuple(inventory().nodes)
    # the trend changes only when a day is rolled up or a node changes pool: cached under those
    stamp = (_url(), wl.trend_stamp(ctx().sessions), hash(tuple((n.name, n.pool) for n in nodes)))
    frame = _trend(stamp, reader, nodes, first, last, period)
    if frame.height == 0:
        st.info(t("pools.no_trend"), icon=":material/insights:")
        return
    data = frame.to_pandas()
    data["util_pct"] = (data["mean_util"] * 100).round(1)
    util = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("period:T", title=t("pools.axis.period")), y=alt.Y("util_pct:Q", title=t("pools.axis.mean_util")),
        color=alt.Color("pool:N", title=t("pools.col.pool")),
        tooltip=[alt.Tooltip("pool:N", title=t("pools.col.pool")), alt.Tooltip("period:T", title=t("pools.axis.period")),
                 alt.Tooltip("util_pct:Q", title=t("pools.axis.mean_util"))])
    hours = {"allocated_gpu_hours": t("pools.trend.allocated_hours"), "used_gpu_hours": t("pools.trend.used_hours")}
    totals = (frame.group_by("period").agg(pl.col(list(hours)).sum()).sort("period").to_pandas()
              .melt(id_vars=["period"], var_name="measure", value_name="hours"))
    totals["measure"] = totals["measure"].map(hours)
    # the used hours drawn over the hours with a workload (they are part of them), not stacked on top:
    # a temporal x axis has no band for xOffset to split, so Vega stacked the two into one bar
    bars = alt.Chart(totals).mark_bar().encode(
        x=alt.X("period:T", title=t("pools.axis.period")),
        y=alt.Y("hours:Q", title=t("pools.axis.gpu_hours"), stack=None),
        color=alt.Color("measure:N", title="", scale=alt.Scale(domain=list(hours.values())), legend=alt.Legend(labelLimit=320)),
        tooltip=[alt.Tooltip("period:T", title=t("pools.axis.period")), alt.Tooltip("measure:N", title=""),
                 alt.Tooltip("hours:Q", title=t("pools.axis.gpu_hours"), format=",.0f")])
    left, right = st.columns(2)
    show(util, left)
    show(bars, right)


def _read_at(value) -> str:
    return when(value, seconds=True)


def _state(row: dict) -> str:
    return t("inventory.state." + ("fresh" if not row["stale"] else "stale" if row["read_at"] else "never"))


def node_inventory(nodes: InventoryReading, snap: wl.WaterLevel | None = None) -> None:
    """Per cluster: GPU nodes, allocatable GPUs, ready nodes, products, GPUs under quota, used by
    quota and requested by running pods (each with its source), when read; then of one cluster its
    nodes (with the GPUs its pods request against allocatable), its GPU quotas and its GPU pods.
    ``snap`` gives the portal's allocations per cluster, which stand for the quotas in demo mode."""
    summary = nodes.summary()
    allocated = dict(snap.clusters.select("cluster", "allocated").iter_rows()) if snap is not None else {}
    work = {r["cluster"]: r for r in workload_rows(nodes, allocated)}
    demo = nodes.origin != "live"
    figures = {"quota_hard": "inventory.col.quota_hard", "quota_used": "inventory.col.quota_used",
               "pods_running": "inventory.col.pods_running", "pods": "inventory.col.running_pods"}
    frame = pd.DataFrame([{
        t("inventory.col.cluster"): r["cluster"], t("inventory.col.nodes"): r["nodes"],
        t("inventory.col.gpus"): r["gpus"], t("inventory.col.ready_nodes"): r["ready"],
        **{t(label): _cell(work[r["cluster"]][key], demo) for key, label in figures.items()},
        t("inventory.col.products"): r["products"], t("inventory.col.read_at"): _read_at(r["read_at"]),
        t("inventory.col.state"): _state(r), t("inventory.col.source"): render(work[r["cluster"]]["source"]),
    } for r in summary])
    if not demo and len(frame):  # live: whole numbers, empty for a cluster never read
        for label in figures.values():
            frame[t(label)] = frame[t(label)].astype("Int64")
    st.dataframe(frame, hide_index=True, width="stretch")
    clusters = [r["cluster"] for r in summary]
    if not clusters:
        return
    cluster = st.selectbox(t("inventory.pick_cluster"), clusters, placeholder=choose(), key="pools_inventory_cluster")
    reading = nodes.cluster(cluster)
    mine = list(reading.nodes) if reading else []
    if not mine:
        st.info(t("inventory.no_nodes", cluster=cluster), icon=":material/dns:")
    else:
        requested = reading.requested_by_node() if reading.workload else None
        st.dataframe(pd.DataFrame([{
            t("inventory.col.node"): n.name, t("inventory.col.pool"): n.pool or "-",
            t("inventory.col.product"): n.gpu_product or n.resource or "-", t("inventory.col.allocatable"): n.gpus,
            t("inventory.col.requested"): (f"{requested.get(n.name, 0)} / {n.gpus}" if requested is not None
                                           else t("inventory.not_in_demo")),
            t("inventory.col.ready"): t("inventory.yes" if n.ready else "inventory.no")} for n in mine]),
            hide_index=True, width="stretch")
        st.caption(t("inventory.requested_caption" if requested is not None else "inventory.requested_demo"))
    _workloads(nodes, cluster)


def _cell(value, demo: bool):
    """A workload figure: the number; without one, the demo's "not available" text (a whole column
    of the demo has none) or None (a live cluster not read yet)."""
    if value is not None:
        return value
    return t("inventory.not_in_demo") if demo else None


def _workloads(nodes: InventoryReading, cluster: str) -> None:
    """The GPU quotas and GPU pods of one cluster, or why there are none to show."""
    reading = nodes.cluster(cluster)
    if nodes.origin != "live":
        st.info(as_code(t("inventory.pods_demo", cluster=cluster)), icon=":material/deployed_code:")
        return
    if reading is None or not reading.workload:
        st.info(t("inventory.pods_never_read", cluster=cluster), icon=":material/cloud_off:")
        return
    st.markdown(f"**{t('inventory.quotas_title', cluster=cluster)}**")
    if reading.quotas:
        st.dataframe(pd.DataFrame([{
            t("inventory.col.namespace"): q.namespace, t("inventory.col.quota"): q.name,
            t("inventory.col.resource"): q.resource, t("inventory.col.hard"): q.hard,
            t("inventory.col.used"): q.used} for q in reading.quotas]), hide_index=True, width="stretch")
    else:
        st.info(t("inventory.no_quotas", cluster=cluster), icon=":material/data_usage:")
    st.markdown(f"**{t('inventory.pods_title', cluster=cluster)}**")
    if reading.pods:
        st.dataframe(pd.DataFrame([{
            t("inventory.col.namespace"): p.namespace, t("inventory.col.pod"): p.name,
            t("inventory.col.node"): p.node or t("inventory.unscheduled"), t("inventory.col.pod_gpus"): p.gpus,
            t("inventory.col.resource"): p.resource, t("inventory.col.phase"): p.phase} for p in reading.pods]),
            hide_index=True, width="stretch")
    else:
        st.info(t("inventory.no_pods", cluster=cluster), icon=":material/deployed_code:")


def _queue_state(row: dict) -> str:
    if row["error"] is not None:
        return t("scheduler.water.state.unread")
    return t("scheduler.water.state." + ("read" if row["found"] else "not_applied"))


def scheduler_queues() -> None:
    """Per pool in the viewer's scope (provincial ops: their province's), what the cluster's batch
    scheduler (Kueue or Volcano) has admitted and keeps waiting, and the GPUs the admitted workloads
    hold (read from the live clusters, cached for a minute). In plan mode it says there is no cluster to read; a
    cluster that could not be read gets a banner naming it, a pool whose queue was never applied
    says so."""
    st.subheader(t("scheduler.water.title"))
    reading = _scheduler(_url(), me())
    if not reading["live"]:
        st.info(t("scheduler.workloads.plan_mode"), icon=":material/schedule:")
        return
    st.caption(t("scheduler.water.caption", scheduler=t(f"scheduler.name.{reading['scheduler']}")))
    rows = reading["pools"]
    failed = {r["cluster"]: r["error"] for r in rows if r["error"] is not None}
    for cluster, error in sorted(failed.items()):
        st.warning(t("scheduler.water.unread_banner", cluster=cluster, error=render(error)), icon=":material/cloud_off:")
    if not rows:
        st.caption(t("scheduler.water.no_pools"))
        return
    figures = {"admitted": "scheduler.water.admitted", "pending": "scheduler.water.pending",
               "gpus_in_use": "scheduler.water.gpus", "gpus_borrowed": "scheduler.water.borrowed"}
    frame = pd.DataFrame([{
        t("pools.col.pool"): pool_label(r["pool"]), t("inventory.col.cluster"): r["cluster"],
        t("scheduler.water.queue"): r["queue"], **{t(label): r[key] for key, label in figures.items()},
        t("inventory.col.state"): _queue_state(r)} for r in rows])
    for label in figures.values():
        frame[t(label)] = frame[t(label)].astype("Int64")  # whole numbers, empty where not read
    helps = {t("scheduler.water.admitted"): st.column_config.NumberColumn(help=t("scheduler.water.admitted_help")),
             t("scheduler.water.pending"): st.column_config.NumberColumn(help=t("scheduler.water.pending_help"))}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=helps)
    if any(not r["found"] and r["error"] is None for r in rows):
        st.caption(t("scheduler.water.apply_hint"))
