"""Views of the autoscaling page (扩缩容策略): the policy form, the rendered HPA and KEDA YAML, and
the replay chart."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
import yaml

from core.adjust import autoscaling
from core.adjust import services as adjust
from core.metrics.sources import metrics_source
from ui.builtin_text import choose
from ui.charts import show
from ui.context import ctx, me
from ui.errors import show_outcome
from ui.i18n import t
from ui.names import person
from ui.sources import as_code
from ui.times import wall_clock, when

_FIELDS = ("namespace", "deployment", "min_replicas", "max_replicas", "gpus_per_replica", "util_high", "util_low",
           "mem_high", "sustain_s", "scale_up_window_s", "scale_down_window_s")
NEW = 0


def policies() -> list[dict]:
    """Stored policies."""
    return adjust.list_policies(sessions=ctx().sessions, actor=me())


def pick_policy(rows: list[dict]) -> dict:
    """Table of stored policies and a picker (or a new policy with the defaults); the chosen values."""
    if rows:
        st.dataframe(pd.DataFrame([{
            t("scaling.col.target"): f"{r['namespace']}/{r['deployment']}",
            t("scaling.col.replicas"): f"{r['min_replicas']}–{r['max_replicas']}",
            t("scaling.col.thresholds"): f"{r['util_low']:.0%} / {r['util_high']:.0%} / {r['mem_high']:.0%}",
            t("scaling.col.updated"): f"{person(r['updated_by'])} · {when(r['updated_at'])}",
        } for r in rows]), hide_index=True, width="stretch")
    labels = {NEW: t("scaling.new")} | {r["id"]: f"{r['namespace']}/{r['deployment']}" for r in rows}
    chosen = st.selectbox(t("scaling.pick"), list(labels), format_func=labels.get, placeholder=choose(), key="sc_pick")
    if chosen == NEW:
        return autoscaling.default_policy("my-service", "my-deployment").as_dict()
    return next(r for r in rows if r["id"] == chosen)


def _save(suffix: str) -> None:
    s = st.session_state
    try:
        policy = {f: s[f"sc_{f}_{suffix}"] for f in _FIELDS}
        for f in ("util_high", "util_low", "mem_high"):
            policy[f] = round(float(policy[f]) / 100, 4)
        for f in ("min_replicas", "max_replicas", "gpus_per_replica", "sustain_s", "scale_up_window_s", "scale_down_window_s"):
            policy[f] = int(policy[f])
        adjust.save_policy(sessions=ctx().sessions, actor=me(), policy=policy, reason=s.get("sc_reason", ""))
        s["sc_done"] = "scaling.saved"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        s["sc_error"] = exc


def feedback() -> None:
    """The outcome of the last save."""
    show_outcome("sc")


def policy_form(policy: dict) -> dict:
    """The policy form (thresholds in percent); returns the values shown, for rendering and replay."""
    suffix = str(policy.get("id", "new"))
    with st.form(f"sc_form_{suffix}"):
        c1, c2 = st.columns(2)
        c1.text_input(t("scaling.namespace"), value=policy["namespace"], key=f"sc_namespace_{suffix}", max_chars=63)
        c2.text_input(t("scaling.deployment"), value=policy["deployment"], key=f"sc_deployment_{suffix}", max_chars=63)
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("scaling.min_replicas"), 1, 1000, policy["min_replicas"], key=f"sc_min_replicas_{suffix}")
        c2.number_input(t("scaling.max_replicas"), 1, 1000, policy["max_replicas"], key=f"sc_max_replicas_{suffix}")
        c3.number_input(t("scaling.gpus_per_replica"), 1, 64, policy["gpus_per_replica"], key=f"sc_gpus_per_replica_{suffix}")
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("scaling.util_high"), 1, 100, int(round(policy["util_high"] * 100)), key=f"sc_util_high_{suffix}")
        c2.number_input(t("scaling.util_low"), 1, 100, int(round(policy["util_low"] * 100)), key=f"sc_util_low_{suffix}")
        c3.number_input(t("scaling.mem_high"), 1, 100, int(round(policy["mem_high"] * 100)), key=f"sc_mem_high_{suffix}")
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("scaling.sustain_s"), 0, 86400, policy["sustain_s"], key=f"sc_sustain_s_{suffix}")
        c2.number_input(t("scaling.scale_up_window_s"), 0, 3600, policy["scale_up_window_s"], key=f"sc_scale_up_window_s_{suffix}")
        c3.number_input(t("scaling.scale_down_window_s"), 0, 3600, policy["scale_down_window_s"],
                        key=f"sc_scale_down_window_s_{suffix}")
        st.text_input(t("scaling.reason"), key="sc_reason", max_chars=500)
        st.form_submit_button(t("scaling.save"), type="primary", on_click=_save, args=(suffix,))
    return policy


def manifests(policy: dict) -> None:
    """The HPA (validated schema) and the KEDA ScaledObject as YAML, each downloadable."""
    rendered = adjust.policy_manifests(policy)
    hpa_tab, keda_tab = st.tabs([t("scaling.hpa"), t("scaling.keda")])
    with hpa_tab:
        st.caption(as_code(t("scaling.hpa_note")))
        text = yaml.safe_dump(rendered["hpa"], sort_keys=False, allow_unicode=True)
        st.code(text, language="yaml")
        st.download_button(t("scaling.download_hpa"), text, f"{policy['deployment']}-hpa.yaml", "application/yaml")
    with keda_tab:
        st.caption(as_code(t("scaling.keda_note")))
        text = yaml.safe_dump(rendered["keda"], sort_keys=False, allow_unicode=True, width=10_000)
        st.code(text, language="yaml")
        st.download_button(t("scaling.download_keda"), text, f"{policy['deployment']}-keda.yaml", "application/yaml")


def replay(policy: dict) -> None:
    """Replay of the last week of the namespace's utilisation: replicas over time, events, GPU-hours saved."""
    st.caption(t("scaling.replay_note"))
    result = adjust.replay_policy(actor=me(), policy=policy, source=metrics_source())
    if not result["timeline"]:
        st.info(t("scaling.replay_empty", namespace=policy["namespace"]), icon=":material/info:")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric(t("scaling.gpu_hours"), f"{result['gpu_hours']:.1f}")
    c2.metric(t("scaling.fixed_max"), f"{result['fixed_max_gpu_hours']:.1f}")
    c3.metric(t("scaling.saved_hours"), f"{result['saved_gpu_hours']:.1f}")
    frame = wall_clock(pd.DataFrame(result["timeline"]), "ts")
    replicas = frame.melt(id_vars=["ts"], value_vars=["replicas", "observed_replicas"], var_name="series", value_name="n")
    names = {"replicas": t("scaling.series.policy"), "observed_replicas": t("scaling.series.observed")}
    replicas["series"] = replicas["series"].map(names)
    chart = alt.Chart(replicas).mark_line(interpolate="step-after").encode(
        x=alt.X("ts:T", title=t("scaling.axis.time")), y=alt.Y("n:Q", title=t("scaling.axis.replicas")),
        color=alt.Color("series:N", title=None))
    util = alt.Chart(frame).mark_line(opacity=0.5).encode(
        x=alt.X("ts:T", title=t("scaling.axis.time")), y=alt.Y("util:Q", title=t("scaling.axis.util"),
                                                               axis=alt.Axis(format="%")))
    show(chart)
    show(util)
    if result["events"]:
        st.dataframe(pd.DataFrame([{
            t("scaling.col.at"): when(e["ts"]), t("scaling.col.change"): f"{e['from']} → {e['to']}",
            t("scaling.col.reason"): t(f"scaling.reason.{e['reason']}"), t("scaling.col.util"): f"{e['util']:.0%}",
            t("scaling.col.mem"): f"{e['mem']:.0%}",
        } for e in result["events"]]), hide_index=True, width="stretch")
