"""Views of the usage sheets: the training usage sheet (curves, per-GPU figures, bottleneck hints) of
one namespace and window, and the inference usage sheet of one month, each within the reader's
scope (:func:`core.metrics.usage.usage_scope`; the page says whose data it shows). Reads are cached
for a minute per reader."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from core.clock import utc_today
from core import config
from core.identity import Identity
from core.metrics import usage
from core.metrics.serving import load_settings as serving_settings, serving_source
from core.metrics.sources import metrics_dir, metrics_source
from ui.builtin_text import DATE_FORMAT, choose
from ui.charts import show
from ui.context import ctx, me
from ui.errors import field_label
from ui.i18n import current_lang, render, t
from ui.sources import technical_sources
from ui.times import wall_clock

SPANS = (1, 3, 7)
LOOKBACK_DAYS = 14
HEAT_BUCKETS = 144  # time buckets of the per-GPU strip (10 minutes over a day)


@st.cache_data(ttl=60, show_spinner=False)
def _kinds(url: str) -> dict[str, str]:
    return usage.namespace_kinds(sessions=ctx().sessions, source=metrics_source())


@st.cache_data(ttl=60, show_spinner=False)
def _scope(url: str, actor: Identity) -> usage.UsageScope:
    return usage.usage_scope(sessions=ctx().sessions, actor=actor)


@st.cache_data(ttl=60, show_spinner=False)
def _namespaces(url: str, actor: Identity, first: date, last: date) -> pl.DataFrame:
    return usage.namespaces_seen(sessions=ctx().sessions, actor=actor, first=first, last=last)


@st.cache_data(ttl=60, show_spinner=False)
def _training(url: str, actor: Identity, namespace: str, start: datetime, end: datetime, step_s: int) -> usage.TrainingSheet:
    return usage.training_sheet(sessions=ctx().sessions, actor=actor, source=metrics_source(), namespace=namespace,
                                start=start, end=end, step_s=step_s)


@st.cache_data(ttl=60, show_spinner=False)
def _inference(url: str, actor: Identity, month: date) -> usage.InferenceSheet:
    return usage.inference_sheet(sessions=ctx().sessions, actor=actor, month=month, kinds=_kinds(url),
                                 serving=serving_source())


def _url() -> str:
    """The cache key of where the data comes from: database, metrics folder and Prometheus servers."""
    return f"{config.load().database_url}|{metrics_dir()}|{os.environ.get('COMPUTELOOP_PROMETHEUS_URLS', '')}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def whose() -> str:
    """Whose data the page shows: everything, a province's or a department's (in the page's language)."""
    from core.org import load_org

    scope = _scope(_url(), me())
    if scope.everything:
        return t("usagescope.whose.all")
    org, zh = load_org(), current_lang() == "zh-CN"
    if scope.kind == "province":
        unit = org.units.get(scope.unit)
        return t("usagescope.whose.province", unit=(unit.name_zh if zh else unit.name_en) if unit else scope.unit)
    dept = org.departments.get(scope.unit)
    return t("usagescope.whose.department", department=(dept.name_zh if zh else dept.name_en) if dept else scope.unit)


# --------------------------------------------------------------------------- training


def training_runs() -> pl.DataFrame:
    """Training (or unclassified) namespaces with rollups in the last two weeks, most GPU-hours first."""
    last = utc_today()
    seen = _namespaces(_url(), me(), last - timedelta(days=LOOKBACK_DAYS), last)
    kinds = _kinds(_url())
    return seen.filter(~pl.col("namespace").is_in([ns for ns, k in kinds.items() if k == "inference"]))


def pick_run(runs: pl.DataFrame) -> tuple[str, datetime, datetime, int] | None:
    """Namespace, window end day and span → (namespace, start, end, step in seconds)."""
    labels = {ns: t("usage.run_label", namespace=ns, gpus=gpus, hours=f"{hours:,.0f}")
              for ns, gpus, hours in runs.select("namespace", "gpus", "allocated_gpu_hours").iter_rows()}
    c1, c2, c3 = st.columns([3, 2, 2])
    namespace = c1.selectbox(t("usage.namespace"), list(labels), format_func=labels.get,
                             placeholder=choose(), key="usage_ns")
    if namespace is None:
        return None
    last_day = runs.filter(pl.col("namespace") == namespace)["last_day"][0]
    end_day = c2.date_input(t("usage.window_end"), value=last_day, format=DATE_FORMAT, key=f"usage_end_{namespace}")
    spans = {d: t("usage.span_days", days=d) for d in SPANS}
    span = c3.radio(t("usage.span"), list(spans), format_func=spans.get, horizontal=True, key="usage_span")
    end = datetime.combine(end_day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    start = end - timedelta(days=span)
    return namespace, start, end, 60


def training_sheet(namespace: str, start: datetime, end: datetime, step_s: int) -> usage.TrainingSheet:
    """The training usage sheet (cached)."""
    return _training(_url(), me(), namespace, start, end, step_s)


def summary(sheet: usage.TrainingSheet) -> None:
    """GPUs, GPU-hours, mean utilisation and memory, peak power of the run."""
    s = sheet.summary
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(t("usage.gpus"), s["gpus"])
    c2.metric(t("usage.gpu_hours"), f"{s['gpu_hours']:,.1f}")
    c3.metric(t("usage.mean_util"), _pct(s["mean_util"]))
    c4.metric(t("usage.mean_mem"), _pct(s["mean_mem"]))
    c5.metric(t("usage.peak_power"), "-" if s["peak_power_w"] is None else f"{s['peak_power_w'] / 1000:,.1f} kW")


def hints(sheet: usage.TrainingSheet) -> None:
    """The bottleneck hints, or a note that the samples show none."""
    if not sheet.hints:
        st.success(t("usage.no_hints"), icon=":material/check_circle:")
    for hint in sheet.hints:
        st.warning(render(hint), icon=":material/speed:")


def curves(sheet: usage.TrainingSheet) -> None:
    """Job curves: mean utilisation and memory, total power."""
    data = wall_clock(sheet.curves.to_pandas(), "ts")
    measures = {"util": t("usage.curve.util"), "mem": t("usage.curve.mem")}
    long = data[["ts", "util", "mem"]].melt(id_vars=["ts"], var_name="measure", value_name="value")
    long["pct"] = (long["value"] * 100).round(1)
    long["measure"] = long["measure"].map(measures)
    lines = alt.Chart(long).mark_line().encode(
        x=alt.X("ts:T", title=t("usage.axis.time")), y=alt.Y("pct:Q", title=t("usage.axis.pct"), scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("measure:N", title=""),
        tooltip=[alt.Tooltip("ts:T", title=t("usage.axis.time"), format="%Y-%m-%d %H:%M"), alt.Tooltip("measure:N", title=""),
                 alt.Tooltip("pct:Q", title=t("usage.axis.pct"))])
    power = alt.Chart(data).mark_area(opacity=0.6).encode(
        x=alt.X("ts:T", title=t("usage.axis.time")), y=alt.Y("power_w:Q", title=t("usage.axis.power")),
        tooltip=[alt.Tooltip("ts:T", title=t("usage.axis.time"), format="%Y-%m-%d %H:%M"),
                 alt.Tooltip("power_w:Q", title=t("usage.axis.power"), format=",.0f")])
    left, right = st.columns(2)
    show(lines, left)
    show(power, right)


def per_gpu(sheet: usage.TrainingSheet) -> None:
    """The per-GPU utilisation strip and figures, in an expander that renders them only when open
    (a chart and a table of one row per GPU: a second or more in the browser for a large run)."""
    box = st.expander(t("usage.per_gpu"), key="usage_per_gpu", on_change="rerun")
    if box.open:
        with box:
            _strip(sheet)
            gpu_table(sheet)


def _strip(sheet: usage.TrainingSheet) -> None:
    """Utilisation per GPU over the window, in at most :data:`HEAT_BUCKETS` time buckets."""
    seconds = max(sheet.step_s, int((sheet.end - sheet.start).total_seconds() // HEAT_BUCKETS))
    strip = (sheet.series.with_columns(pl.col("ts").dt.truncate(f"{seconds}s"))
             .group_by("hostname", "uuid", "ts").agg(pl.col("util").mean())
             .with_columns(gpu=pl.col("hostname") + " · " + pl.col("uuid").str.slice(0, 12),
                           pct=(pl.col("util") * 100).round(1)).to_pandas())
    strip = wall_clock(strip, "ts")
    heat = alt.Chart(strip).mark_rect().encode(
        x=alt.X("ts:T", title=t("usage.axis.time")), y=alt.Y("gpu:N", title=t("usage.axis.gpu")),
        color=alt.Color("pct:Q", title=t("usage.curve.util"), scale=alt.Scale(domain=[0, 100], scheme="viridis")),
        tooltip=[alt.Tooltip("gpu:N", title=t("usage.axis.gpu")), alt.Tooltip("ts:T", title=t("usage.axis.time"), format="%Y-%m-%d %H:%M"),
                 alt.Tooltip("pct:Q", title=t("usage.curve.util"))])
    show(heat.properties(height=max(120, 14 * strip["gpu"].nunique())))


def gpu_table(sheet: usage.TrainingSheet) -> None:
    """Per-GPU samples, utilisation, memory and power."""
    g = sheet.gpus.to_pandas()
    st.dataframe(pd.DataFrame({
        t("usage.col.node"): g["hostname"], t("usage.col.uuid"): g["uuid"], t("usage.col.model"): g["model"],
        t("usage.col.samples"): g["samples"], t("usage.col.mean_util"): (g["mean_util"] * 100).round(1),
        t("usage.col.peak_util"): (g["peak_util"] * 100).round(1), t("usage.col.mean_mem"): (g["mean_mem"] * 100).round(1),
        t("usage.col.mean_power"): g["mean_power_w"].round(0),
    }), hide_index=True, width="stretch")


# --------------------------------------------------------------------------- inference


def pick_month() -> date:
    """The month of the inference sheet: one of the last twelve (default: the month of yesterday)."""
    anchor = (utc_today() - timedelta(days=1)).replace(day=1)
    months = []
    for _ in range(12):
        months.append(anchor)
        anchor = (anchor - timedelta(days=1)).replace(day=1)
    labels = {m: m.strftime("%Y-%m") for m in months}
    return st.selectbox(t("usage.month"), months, format_func=labels.get, placeholder=choose(), key="usage_month")


def inference_sheet(month: date) -> usage.InferenceSheet:
    """The inference usage sheet of ``month`` (cached)."""
    return _inference(_url(), me(), month)


def inference_table(sheet: usage.InferenceSheet) -> pd.DataFrame:
    """The sheet with translated headers; QPS and latency say "not exported" for a service whose
    server exports no request metrics."""
    r = sheet.rows.to_pandas()
    missing = t("usage.not_exported")

    def served(col: str, scale: float = 1.0) -> pd.Series:
        return r[col].map(lambda v: missing if pd.isna(v) else f"{v * scale:,.1f}")

    kinds = {k: t(f"usage.kind.{k}") for k in ("training", "inference", "unknown")}
    return pd.DataFrame({
        t("usage.col.service"): r["namespace"], t("usage.col.kind"): r["kind"].map(kinds),
        t("usage.col.clusters"): r["clusters"], t("usage.col.model"): r["models"], t("usage.col.gpus"): r["gpus"],
        t("usage.col.days"): r["days"],
        t("usage.col.mean_util"): (r["mean_util"] * 100).round(1), t("usage.col.peak_util"): (r["peak_util"] * 100).round(1),
        t("usage.col.mean_mem"): (r["mean_mem"] * 100).round(1), t("usage.col.peak_mem"): (r["peak_mem"] * 100).round(1),
        t("usage.col.allocated_hours"): r["allocated_gpu_hours"].round(1), t("usage.col.used_hours"): r["used_gpu_hours"].round(1),
        t("usage.col.energy"): r["energy_kwh"].round(1), t("usage.col.cost"): r["cost"].round(0),
        t("usage.col.coverage"): (r["coverage"] * 100).round(1),
        t("usage.col.qps_mean"): served("qps_mean"), t("usage.col.qps_peak"): served("qps_peak"),
        t("serving.col.latency_mean"): served("latency_mean_ms"), t("usage.col.latency_p99"): served("latency_p99_ms"),
        t("serving.col.qps_coverage"): served("qps_coverage", 100.0),
    })


def serving_notes(sheet: usage.InferenceSheet) -> None:
    """How many services export request metrics, why QPS could not be read (if so), and how the
    QPS and latency columns are made."""
    if sheet.serving_error is not None:
        field = sheet.serving_error.params.get("field")
        prefix = t("error.field_prefix", field=field_label(field)) + " " if field else ""
        st.warning(prefix + render(sheet.serving_error), icon=":material/error:")
    exported = int(sheet.rows["qps_mean"].is_not_null().sum())
    step = serving_settings().peak_step_s
    st.caption(" ".join([t("serving.exported_count", exported=exported, services=sheet.rows.height),
                         *serving_basis(sheet), t("uitext.serving.qps_note", step=step)]))
    # Which metrics and which settings file: ops' technical sources.
    technical_sources([t("serving.qps_note", step=step)])


def serving_basis(sheet: usage.InferenceSheet) -> list[str]:
    """Which days' QPS and latency come from the daily rollups (and their sources) and which were
    read live (and from where)."""
    b = sheet.serving_basis
    if b is None:
        return []
    sources = ", ".join(t(f"serving.source.{s}") for s in b.rollup_sources) or t("serving.source.none")
    out = [t("serving.basis_rollups", rollup=b.rollup_days, days=b.window_days, sources=sources)]
    if b.live_source and b.live_days:
        out.append(t("serving.basis_live", live=b.live_days, source=t(f"serving.source.{b.live_source}")))
    return out
