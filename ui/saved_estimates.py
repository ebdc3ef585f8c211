"""Views of the saved estimates: the list, one estimate, reopening it, recording an outcome."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.services import estimates as estimates_svc
from core.text import plain
from ui.builtin_text import choose
from ui.context import ctx, me
from ui.errors import guarded
from ui.i18n import t
from ui.names import department_name, person
from ui.times import when


def estimates_table() -> pd.DataFrame | None:
    """The estimates the current identity may see, or None when there are none."""
    rows = estimates_svc.list_estimates(sessions=ctx().sessions, actor=me())
    if not rows:
        return None
    return pd.DataFrame([{
        t("saved.col.id"): r["id"], t("saved.col.title"): r["title"], t("saved.col.kind"): t(f"saved.kind.{r['kind']}"),
        t("saved.col.gpu"): r["gpu_id"], t("saved.col.gpu_hours"): round(r["estimated_gpu_hours"] or 0),
        t("saved.col.by"): person(r["created_by"]), t("saved.col.department"): department_name(r["department"]),
        t("saved.col.at"): when(r["created_at"]), t("saved.col.outcomes"): len(r["outcomes"]),
    } for r in rows])


def estimate_detail(estimate_id: int) -> None:
    """The saved outputs of one estimate and its recorded outcomes."""
    est = estimates_svc.get_estimate(sessions=ctx().sessions, actor=me(), estimate_id=estimate_id)
    st.subheader(plain(est["title"]))
    st.dataframe(outputs_table(est["outputs"]), hide_index=True, width="stretch")
    if est["outcomes"]:
        st.caption(t("saved.outcomes"))
        st.dataframe(pd.DataFrame([{
            t("calibration.actual_gpu_hours"): o["actual_gpu_hours"],
            t("calibration.actual_wall_hours"): o["actual_wall_clock_hours"],
            t("calibration.note"): o["note"] or "", t("uitext.recorded_by"): person(o["recorded_by"]),
            t("uitext.recorded_at"): when(o["recorded_at"]),
        } for o in est["outcomes"]]), hide_index=True, width="stretch")


# The figures of a saved estimate the detail lists, in order (training, then inference outputs), and
# how each is written: "pct" a share, "yesno" a flag, "num" a number. Other outputs (lists, the
# formula in programmers' English, the currency code) are in the JSON export.
OUTPUTS: dict[str, str] = {
    "gpu": "text", "gpus": "num", "precision": "text", "total_flops": "num", "total_flops_detailed": "num",
    "peak_tflops_per_gpu": "num", "efficiency": "pct", "efficiency_source": "source", "effective_tflops_per_gpu": "num",
    "correction_factor": "num", "calibration_factor": "num", "wall_clock_hours": "num", "wall_clock_days": "num",
    "gpu_hours": "num", "energy_kwh": "num", "cost": "num", "price_is_placeholder": "yesno", "memory_per_gpu_gb": "num",
    "fits_in_memory": "yesno", "max_qps_per_replica": "num", "replicas": "num", "peak_qps": "num", "mean_qps": "num",
    "replicas_for_mean": "num", "gpus_for_mean": "num", "target_util": "pct", "gpus_per_replica": "num",
    "min_replicas": "num", "n_plus_one": "yesno",
}


def _output_value(kind: str, value) -> str:  # noqa: ANN001 - a JSON value of the saved outputs
    if value is None:
        return "-"
    if kind == "yesno":
        return t("uitext.yes") if value else t("uitext.no")
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "source":  # "user" (an efficiency typed in) or the list of reference runs
        return t("uitext.output.efficiency_user") if value == "user" else t("uitext.output.efficiency_runs")
    if kind == "num" and isinstance(value, (int, float)):
        return f"{value:.3g}" if abs(value) >= 1e7 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def outputs_table(outputs: dict) -> pd.DataFrame:
    """A saved estimate's key figures, labelled in the page's language."""
    return pd.DataFrame([{t("saved.col.item"): t(f"uitext.output.{key}"),
                          t("saved.col.value"): _output_value(kind, outputs[key])}
                         for key, kind in OUTPUTS.items() if key in outputs])


def _reopen(estimate_id: int) -> None:
    est = estimates_svc.get_estimate(sessions=ctx().sessions, actor=me(), estimate_id=estimate_id)
    st.session_state["estimate_prefill"] = est["inputs"]
    st.session_state.pop("tr_result", None)


def reopen_button(estimate_id: int) -> None:
    """Open a saved training estimate in the calculator with its inputs filled in."""
    est = estimates_svc.get_estimate(sessions=ctx().sessions, actor=me(), estimate_id=estimate_id)
    if est["kind"] != "training":
        return
    if st.button(t("saved.reopen"), on_click=_reopen, args=(estimate_id,)):
        st.switch_page("app_pages/estimate.py")


def _record() -> None:
    s = st.session_state
    try:
        estimates_svc.record_outcome(sessions=ctx().sessions, actor=me(), estimate_id=int(s["cal_estimate"]),
                                     actual_gpu_hours=s["cal_gpu_hours"], actual_wall_clock_hours=s["cal_wall_hours"],
                                     note=s["cal_note"])
        s["cal_done"] = True
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        s["cal_error"] = exc


def outcome_form() -> None:
    """Pick a finished job's estimate and record its actual GPU-hours and wall-clock."""
    rows = [r for r in estimates_svc.list_estimates(sessions=ctx().sessions, actor=me()) if r["kind"] == "training"]
    if not rows:
        st.info(t("calibration.no_estimates"))
        return
    labels = {r["id"]: f"#{r['id']} {r['title']} · {r['gpu_id']} · {r['estimated_gpu_hours'] or 0:,.0f} GPU·h" for r in rows}
    with st.form("outcome_form"):
        st.selectbox(t("calibration.estimate"), list(labels), format_func=labels.get,
                     placeholder=choose(), key="cal_estimate")
        c1, c2 = st.columns(2)
        c1.number_input(t("calibration.actual_gpu_hours"), min_value=0.0, max_value=1e9, value=0.0, key="cal_gpu_hours")
        c2.number_input(t("calibration.actual_wall_hours"), min_value=0.0, max_value=1e9, value=0.0, key="cal_wall_hours")
        st.text_input(t("calibration.note"), key="cal_note", max_chars=500)
        st.form_submit_button(t("calibration.submit"), on_click=_record)
    if "cal_error" in st.session_state:
        with guarded():
            raise st.session_state.pop("cal_error")
    elif st.session_state.pop("cal_done", False):
        st.success(t("calibration.recorded"))


def corrections_table() -> pd.DataFrame | None:
    """Fitted corrections per (GPU, workload) with the runs behind them and their errors."""
    rows = estimates_svc.corrections(sessions=ctx().sessions)
    if not rows:
        return None
    return pd.DataFrame([{
        t("calibration.col.gpu"): c.gpu_id, t("calibration.col.workload"): t(f"training.workload.{c.workload}"),
        t("calibration.col.factor"): round(c.factor, 3), t("calibration.col.runs"): c.runs,
        t("calibration.col.error_before"): f"{c.error_before:.0%}",
        t("calibration.col.error_after"): f"{c.error_after:.0%}" if c.error_after is not None else "-",
    } for c in rows])
