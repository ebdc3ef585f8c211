"""The inference tab of the Estimate page: size from a load test, or an LLM without one."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.estimation.catalog import load_catalog
from core.estimation.export import to_excel_bytes, to_json_bytes
from core.estimation.inference import InferenceSizing, size_inference
from core.estimation.loadtest_formats import LATENCY_KEYS, parse_sweep
from core.estimation.model import load_presets
from core.estimation.serving_options import serving_options
from core.services import estimates as estimates_svc
from ui.apply_form import apply_with_estimate
from ui.builtin_text import choose, uploader_texts
from ui.charts import show
from ui.context import ctx, me
from ui.errors import guarded
from ui.i18n import render, t

SLO_METRICS = ("p99_ms", "p95_ms", "p90_ms", "p50_ms", "mean_ms", "ttft_p99_ms", "ttft_mean_ms", "tpot_p99_ms", "tpot_mean_ms")
LOADTEST_TYPES = ("json", "csv")  # the load-test files parse_sweep reads
LATENCY_FAMILIES = {"ttft_": "ttft", "tpot_": "tpot", "": "e2e"}  # key prefix -> uitext.latency.family.<name>


def latency_label(key: str) -> str:
    """A normalised latency key in words: 'ttft_p99_ms' → "首 token 时延（P99）" / "Time to first token (p99)"."""
    prefix = next(p for p in LATENCY_FAMILIES if key.startswith(p))
    return t("uitext.latency", family=t(f"uitext.latency.family.{LATENCY_FAMILIES[prefix]}"),
             stat=t(f"uitext.latency.stat.{key[len(prefix):].removesuffix('_ms')}"))


def _size() -> None:
    s = st.session_state
    for key in ("inf_result", "inf_error", "inf_saved_id"):  # a new result: the saved one is not what is shown
        s.pop(key, None)
    try:
        files = [(f.name, f.getvalue()) for f in (s.get("inf_files") or [])]
        sweep = parse_sweep(files)
        slos = {s["inf_slo1_metric"]: s["inf_slo1_ms"]}
        if s["inf_slo2_ms"]:
            slos[s["inf_slo2_metric"]] = s["inf_slo2_ms"]
        s["inf_result"] = size_inference(
            sweep, slos=slos, peak_qps=s["inf_peak_qps"], mean_qps=s["inf_mean_qps"] or None,
            target_util=s["inf_target_util"], gpus_per_replica=int(s["inf_gpus_per_replica"]),
            min_replicas=int(s["inf_min_replicas"]), n_plus_one=s["inf_n_plus_one"],
        )
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        s["inf_error"] = exc


def loadtest_form() -> None:
    """Load-test files, SLA and traffic; submitting sizes the service."""
    # Labels are computed now: a format_func runs outside the script too (e.g. in AppTest).
    metrics = {m: latency_label(m) for m in SLO_METRICS}
    with st.form("inference_form"):
        st.file_uploader(t("inference.files"), accept_multiple_files=True, key="inf_files",
                         type=list(LOADTEST_TYPES), help=t("inference.files_help"))
        uploader_texts("inf_files", LOADTEST_TYPES)
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(t("inference.slo_metric"), SLO_METRICS, format_func=metrics.get, placeholder=choose(),
                     key="inf_slo1_metric")
        c2.number_input(t("inference.slo_ms"), min_value=1.0, max_value=600000.0, value=200.0, key="inf_slo1_ms")
        c3.selectbox(t("inference.slo2_metric"), SLO_METRICS, index=5, format_func=metrics.get, placeholder=choose(),
                     key="inf_slo2_metric")
        c4.number_input(t("inference.slo2_ms"), min_value=0.0, max_value=600000.0, value=0.0, key="inf_slo2_ms",
                        help=t("training.zero_means_none"))
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("inference.peak_qps"), min_value=0.001, max_value=1e7, value=100.0, key="inf_peak_qps")
        c2.number_input(t("inference.mean_qps"), min_value=0.0, max_value=1e7, value=40.0, key="inf_mean_qps",
                        help=t("training.zero_means_none"))
        c3.slider(t("inference.target_util"), 0.3, 1.0, 0.8, 0.05, key="inf_target_util")
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("inference.gpus_per_replica"), min_value=1, max_value=64, value=1, key="inf_gpus_per_replica")
        c2.number_input(t("inference.min_replicas"), min_value=1, max_value=100, value=2, key="inf_min_replicas",
                        help=t("inference.min_replicas_help"))
        c3.checkbox(t("inference.n_plus_one"), key="inf_n_plus_one")
        _model_fields()
        st.form_submit_button(t("inference.submit"), type="primary", on_click=_size)


def _curve_chart(result: InferenceSizing) -> alt.Chart:
    rows = []
    for point in result.curve:
        for key in result.slos:
            if key in point.latency_ms:
                rows.append({"concurrency": point.concurrency, "metric": latency_label(key), "ms": point.latency_ms[key]})
    frame = pd.DataFrame(rows)
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("concurrency:Q", title=t("inference.axis_concurrency")),
        y=alt.Y("ms:Q", title=t("inference.axis_latency")), color=alt.Color("metric:N", title=""),
    )
    slo_lines = alt.Chart(pd.DataFrame([{"metric": latency_label(k), "ms": v} for k, v in result.slos.items()])).mark_rule(
        strokeDash=[6, 4], color="red").encode(y="ms:Q", tooltip=[alt.Tooltip("metric:N", title=t("uitext.slo")),
                                                                   alt.Tooltip("ms:Q", title=t("inference.axis_latency"))])
    op = result.operating_point
    marker = alt.Chart(pd.DataFrame([{"concurrency": op.concurrency, "ms": op.latency_ms.get(op.limiting_slo, 0)}])) \
        .mark_point(shape="diamond", size=200, color="black", filled=True).encode(x="concurrency:Q", y="ms:Q")
    return (lines + slo_lines + marker).properties(height=280)


def _qps_chart(result: InferenceSizing) -> alt.Chart:
    frame = pd.DataFrame([{"concurrency": p.concurrency, "qps": p.qps} for p in result.curve])
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("concurrency:Q", title=t("inference.axis_concurrency")), y=alt.Y("qps:Q", title=t("inference.axis_qps")),
    ).properties(height=280)


def formula_text(result: InferenceSizing) -> str:
    """How the replicas and GPUs were computed, in words and the result's figures (the sizing's own
    ``formula`` is the same in programmers' English, kept for the JSON export and the CLI)."""
    op = result.operating_point
    load = t("uitext.formula.load", peak=f"{result.peak_qps:g}", qps=f"{round(op.qps, 3):g}",
             util=f"{result.target_util:g}")
    if result.n_plus_one:
        load += t("uitext.formula.n_plus_one")
    replicas = t("uitext.formula.replicas", load=load, floor=result.min_replicas, replicas=result.replicas)
    gpus = t("uitext.formula.gpus", replicas=result.replicas, per=result.gpus_per_replica, gpus=result.gpus)
    return f"{replicas}  \n{gpus}"


def curve_table(result: InferenceSizing) -> pd.DataFrame:
    """The measured curve with translated headers: load, QPS, each latency, and its checks."""
    keys = [k for k in LATENCY_KEYS if any(k in p.latency_ms for p in result.curve)]
    yes, no = t("uitext.yes"), t("uitext.no")
    return pd.DataFrame([{
        t("inference.axis_concurrency"): p.concurrency, t("inference.axis_qps"): round(p.qps, 3),
        **{latency_label(k): (round(p.latency_ms[k], 1) if k in p.latency_ms else None) for k in keys},
        t("uitext.curve.concurrency_estimated"): yes if p.concurrency_estimated else no,
        t("uitext.curve.littles_law"): no if p.concurrency in result.inconsistent_points else yes,
    } for p in result.curve])


def _model_fields() -> None:
    """The model served and the card the load test ran on (optional): what Apply takes over with the
    sizing, and what its check compares with the pool's GPU model."""
    gpus = [None, *load_catalog().ids()]
    c1, c2, c3 = st.columns(3)
    c1.text_input(t("estimate.loadtest_model"), key="inf_model_name", max_chars=120)
    c2.number_input(t("estimate.loadtest_params_b"), min_value=0.0, max_value=1e5, value=0.0, format="%.3f",
                    key="inf_params_b", help=t("training.zero_means_none"))
    c3.selectbox(t("estimate.loadtest_gpu"), gpus, format_func=lambda g: g or "-", placeholder=choose(),
                 key="inf_gpu", help=t("estimate.loadtest_gpu_help"))


def _save(result: InferenceSizing) -> None:
    s = st.session_state
    try:
        model = {"model_name": (s.get("inf_model_name") or "").strip() or None,
                 "params": (s.get("inf_params_b") or 0) * 1e9 or None, "gpu": s.get("inf_gpu")}
        s["inf_saved"] = s["inf_saved_id"] = estimates_svc.save_estimate(
            sessions=ctx().sessions, actor=me(), kind="inference", title=s.get("inf_title", ""),
            gpu_id=model["gpu"] or "-", workload="online",
            inputs={"slos": result.slos, "peak_qps": result.peak_qps, "mean_qps": result.mean_qps,
                    "sources": list(result.sources), **model},
            outputs=result.as_dict())
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        s["inf_save_error"] = exc


def loadtest_result() -> None:
    """Replicas and GPUs, the curve with the SLA and the operating point, warnings, save and export."""
    if "inf_error" in st.session_state:
        with guarded():
            raise st.session_state["inf_error"]
        return
    result: InferenceSizing | None = st.session_state.get("inf_result")
    if result is None:
        st.info(t("inference.empty"), icon=":material/speed:")
        return
    op = result.operating_point
    c = st.columns(4)
    c[0].metric(t("inference.out.max_qps"), f"{result.max_qps_per_replica:,.2f}",
                help=t("inference.out.interpolated") if op.interpolated else None)
    c[1].metric(t("inference.out.replicas"), result.replicas)
    c[2].metric(t("inference.out.gpus"), result.gpus)
    c[3].metric(t("inference.out.gpus_mean"), result.gpus_for_mean if result.gpus_for_mean is not None else "-")
    st.caption(t("inference.out.operating_point", concurrency=f"{op.concurrency:g}", limiting=latency_label(op.limiting_slo),
                 interpolated=t("inference.out.interpolated") if op.interpolated else t("inference.out.measured")))
    st.markdown(formula_text(result))
    for warning in result.warnings:
        st.warning(render(warning))
    left, right = st.columns(2)
    show(_curve_chart(result), left)
    show(_qps_chart(result), right)
    doc = result.as_dict()
    st.dataframe(curve_table(result), hide_index=True, width="stretch")
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1.form("save_inference", border=False):
        st.text_input(t("estimate.save_title"), key="inf_title", max_chars=200)
        st.form_submit_button(t("estimate.save"), on_click=_save, args=(result,))
    if "inf_save_error" in st.session_state:
        with guarded():
            raise st.session_state.pop("inf_save_error")
    elif "inf_saved" in st.session_state:
        st.success(t("estimate.saved", id=st.session_state.pop("inf_saved")))
    if st.session_state.get("inf_saved_id"):
        apply_with_estimate(st.session_state["inf_saved_id"])
    c2.download_button(t("estimate.export_json"), to_json_bytes(doc), "inference-estimate.json", "application/json")
    summary = {k: v for k, v in doc.items() if not isinstance(v, (dict, list))}
    c3.download_button(t("estimate.export_excel"),
                       to_excel_bytes({"summary": summary, "operating_point": doc["operating_point"], "curve": doc["curve"]}),
                       "inference-estimate.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _serving() -> None:
    s = st.session_state
    s.pop("llm_result", None)
    s.pop("llm_error", None)
    try:
        preset = next(p for p in load_presets() if p.id == s["llm_preset"])
        spec = preset.spec
        s["llm_result"] = serving_options(
            params=spec.params, layers=spec.layers, kv_heads=spec.kv_heads, head_dim=spec.hidden // spec.heads,
            tokens_in_flight=int(s["llm_sequences"] * s["llm_context"]), concurrent_sequences=int(s["llm_sequences"]),
            weight_bytes=s["llm_weight_bytes"],
        )
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        s["llm_error"] = exc


def choice_text(reason, options) -> str:  # noqa: ANN001 - a Msg of serving_options and its options
    """A reason for the LLM sizing's first choice, saying what the table below shows: "no single card
    holds the model" only when no option runs at tensor parallel 1 — when the cheapest option is
    multi-card although single cards hold the model, the sentence says so and names the cheapest single card."""
    single = [o for o in options if o.sizing.tensor_parallel == 1]
    if reason.key != "serving.choice_multi_card" or not single:
        return render(reason)
    cheapest = min(single, key=lambda o: o.price_cny_per_hour)
    return t("uitext.serving.cheapest_multi_card", tp=reason.params["tp"], gpu=reason.params["gpu"],
             price=reason.params["price"], single=len(single), single_gpu=cheapest.sizing.gpu,
             single_price=f"{cheapest.price_cny_per_hour:.2f}")


def llm_section() -> None:
    """LLM sizing without a load test: memory per GPU type and a decode upper bound."""
    st.subheader(t("serving.title"))
    st.caption(t("serving.caption"))
    presets = {p.id: p.name for p in load_presets() if p.spec.has_architecture}
    with st.form("llm_form"):
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(t("serving.model"), list(presets), format_func=presets.get,
                     placeholder=choose(), key="llm_preset", index=3)
        c2.number_input(t("serving.sequences"), min_value=1, max_value=4096, value=16, key="llm_sequences")
        c3.number_input(t("serving.context"), min_value=1, max_value=1_000_000, value=4096, key="llm_context")
        c4.selectbox(t("serving.weights"), [2.0, 1.0, 0.5], placeholder=choose(), key="llm_weight_bytes",
                     format_func=lambda b: {2.0: "BF16/FP16", 1.0: "INT8/FP8", 0.5: "INT4"}[b])
        st.form_submit_button(t("serving.submit"), on_click=_serving)
    if "llm_error" in st.session_state:
        with guarded():
            raise st.session_state["llm_error"]
        return
    if "llm_result" not in st.session_state:
        return
    options, reasons = st.session_state["llm_result"]
    for reason in reasons:
        st.markdown(f"- {choice_text(reason, options)}")
    st.dataframe(pd.DataFrame([{
        t("training.gpu"): o.sizing.gpu, "TP": o.sizing.tensor_parallel,
        t("serving.col.mem_per_gpu"): round(o.sizing.memory_per_gpu_bytes / 1e9, 1),
        t("serving.col.decode_bound"): round(o.sizing.decode_tokens_per_s_upper_bound),
        t("serving.col.price"): f"{o.price_cny_per_hour:.2f}" + (" *" if o.price_is_placeholder else ""),
        t("serving.col.tokens_per_cny"): round(o.tokens_per_cny_upper_bound),
    } for o in options]), hide_index=True, width="stretch")
    st.caption(t("serving.upper_bound_note"))
