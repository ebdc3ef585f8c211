"""The training tab of the Estimate page: the input form, the result, the recommendation."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import streamlit as st

from core.estimation import defaults
from core.estimation.catalog import PRECISIONS, load_catalog
from core.estimation.export import to_excel_bytes, to_json_bytes
from core.estimation.memory import OPTIMIZER_BYTES, RECOMPUTE, Layout
from core.estimation.model import ModelSpec, load_presets
from core.estimation.efficiency import EfficiencyDefault
from core.estimation.recommend import duration_msg, recommend
from core.estimation.training import TrainingEstimate, TrainingInput, estimate_training
from core.estimation.validation import method_label, percent, published_accuracy, times
from core.services import estimates as estimates_svc
from ui.apply_form import apply_with_estimate
from ui.builtin_text import choose
from ui.charts import show
from ui.context import ctx, me
from ui.errors import guarded
from ui.i18n import current_lang, render, t

WORKLOADS = ("pretrain", "finetune", "lora")
PREFIX = "tr_"  # widget keys of this tab
ARCH_FIELDS = ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq_len")


def _defaults() -> dict:
    return {
        "preset": "llama-2-7b", "params_b": 6.74, "active_b": 0.0, "tokens_b": 100.0, "gpu": "A100-80GB",
        "gpus": 8, "precision": "bf16", "workload": "pretrain", "layers": 32, "hidden": 4096, "heads": 32,
        "kv_heads": 32, "ffn_hidden": 11008, "gated_mlp": True, "vocab": 32000, "seq_len": 4096,
        "eff_override": False, "efficiency": 0.40, "correction": 0.0, "pue": 0.0, "manual_layout": False,
        "zero": 1, "tp": 1, "pp": 1, "ep": 1, "recompute": "selective", "micro_batch": 1, "optimizer": "adamw",
        "offload": False, "lora_rank": 0, "qlora": False, "use_calibration": True,
    }


def _init_state() -> None:
    for key, value in _defaults().items():
        st.session_state.setdefault(PREFIX + key, value)
    prefill = st.session_state.pop("estimate_prefill", None)
    if prefill:
        _fill_from_input(TrainingInput.from_dict(prefill))


def _fill_from_input(inp: TrainingInput) -> None:
    s, m = st.session_state, inp.model
    s[PREFIX + "preset"] = "custom"
    s[PREFIX + "params_b"] = m.params / 1e9
    s[PREFIX + "active_b"] = (m.active_params or 0) / 1e9
    for name in ARCH_FIELDS:
        s[PREFIX + name] = getattr(m, name) or 0
    s[PREFIX + "gated_mlp"] = m.gated_mlp
    s[PREFIX + "tokens_b"] = inp.tokens / 1e9
    s[PREFIX + "gpu"], s[PREFIX + "gpus"] = inp.gpu, inp.gpus
    s[PREFIX + "precision"], s[PREFIX + "workload"] = inp.precision, inp.workload
    s[PREFIX + "eff_override"] = inp.efficiency is not None
    s[PREFIX + "efficiency"] = inp.efficiency or 0.4
    s[PREFIX + "correction"] = inp.correction_factor or 0.0
    s[PREFIX + "pue"] = inp.pue or 0.0
    s[PREFIX + "manual_layout"] = inp.layout is not None
    if inp.layout:
        for name in ("zero", "tp", "pp", "ep", "recompute", "micro_batch", "optimizer", "offload", "qlora"):
            s[PREFIX + name] = getattr(inp.layout, name)
        s[PREFIX + "lora_rank"] = inp.layout.lora_rank or 0


def _apply_preset() -> None:
    preset_id = st.session_state[PREFIX + "preset"]
    for p in load_presets():
        if p.id == preset_id:
            st.session_state[PREFIX + "params_b"] = p.spec.params / 1e9
            st.session_state[PREFIX + "active_b"] = (p.spec.active_params or 0) / 1e9
            for name in ARCH_FIELDS:
                st.session_state[PREFIX + name] = getattr(p.spec, name) or 0
            st.session_state[PREFIX + "gated_mlp"] = p.spec.gated_mlp


def _preset_name(preset_id: str, params: float) -> str:
    """The chosen preset's name while the parameters are still its own (what Apply calls the model)."""
    preset = next((p for p in load_presets() if p.id == preset_id), None)
    return preset.name if preset and math.isclose(preset.spec.params, params, rel_tol=1e-9) else ""


def _input_from_state() -> TrainingInput:
    s = st.session_state

    def opt(name: str) -> int | None:
        return int(s[PREFIX + name]) or None

    model = ModelSpec(
        name=_preset_name(s[PREFIX + "preset"], s[PREFIX + "params_b"] * 1e9),
        params=s[PREFIX + "params_b"] * 1e9, active_params=(s[PREFIX + "active_b"] * 1e9) or None,
        layers=opt("layers"), hidden=opt("hidden"), heads=opt("heads"), kv_heads=opt("kv_heads"),
        ffn_hidden=opt("ffn_hidden"), gated_mlp=s[PREFIX + "gated_mlp"], vocab=opt("vocab"), seq_len=opt("seq_len"),
    )
    layout = None
    if s[PREFIX + "manual_layout"]:
        layout = Layout(
            gpus=int(s[PREFIX + "gpus"]), precision=s[PREFIX + "precision"], optimizer=s[PREFIX + "optimizer"],
            zero=int(s[PREFIX + "zero"]), offload=s[PREFIX + "offload"], tp=int(s[PREFIX + "tp"]), pp=int(s[PREFIX + "pp"]),
            ep=int(s[PREFIX + "ep"]), recompute=s[PREFIX + "recompute"], micro_batch=int(s[PREFIX + "micro_batch"]), seq_len=opt("seq_len"),
            lora_rank=opt("lora_rank"), qlora=s[PREFIX + "qlora"],
        )
    return TrainingInput(
        model=model, tokens=s[PREFIX + "tokens_b"] * 1e9, gpu=s[PREFIX + "gpu"], gpus=int(s[PREFIX + "gpus"]),
        precision=s[PREFIX + "precision"], workload=s[PREFIX + "workload"],
        efficiency=s[PREFIX + "efficiency"] if s[PREFIX + "eff_override"] else None,
        correction_factor=s[PREFIX + "correction"] or None, pue=s[PREFIX + "pue"] or None, layout=layout,
    )


def _compute() -> None:
    """Form submit: run the estimate (with the fitted calibration when wanted) and keep it."""
    st.session_state.pop("tr_result", None)
    st.session_state.pop("tr_error", None)
    st.session_state.pop("tr_recommendation", None)
    st.session_state.pop("tr_saved_id", None)  # a new result: the saved one is not what is shown
    try:
        inp = _input_from_state()
        correction = None
        if st.session_state[PREFIX + "use_calibration"]:
            gpu_id = load_catalog().get(inp.gpu).id
            correction = estimates_svc.correction_for(sessions=ctx().sessions, gpu_id=gpu_id, workload=inp.workload)
        st.session_state["tr_result"] = estimate_training(inp, calibration=correction)
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        st.session_state["tr_error"] = exc


def training_form() -> None:
    """Model, data, hardware and advanced options; submitting computes the estimate."""
    _init_state()
    # Labels are computed now: a format_func runs outside the script too (e.g. in AppTest).
    presets = {"custom": t("training.preset_custom")} | {p.id: p.name for p in load_presets()}
    workloads = {w: t(f"training.workload.{w}") for w in WORKLOADS}
    recomputes = {r: t(f"training.recompute.{r}") for r in RECOMPUTE}
    optimizers = {o: t(f"uitext.optimizer.{o}") for o in OPTIMIZER_BYTES}
    st.selectbox(t("training.preset"), list(presets),
                 placeholder=choose(), key=PREFIX + "preset", on_change=_apply_preset,
                 format_func=presets.get, help=t("training.preset_help"))
    with st.form("training_form"):
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("training.params_b"), min_value=0.001, max_value=100000.0, key=PREFIX + "params_b", format="%.3f")
        c2.number_input(t("training.active_b"), min_value=0.0, max_value=100000.0, key=PREFIX + "active_b",
                        format="%.3f", help=t("training.active_help"))
        c3.number_input(t("training.tokens_b"), min_value=0.001, max_value=1e6, key=PREFIX + "tokens_b", format="%.3f")
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(t("training.gpu"), load_catalog().ids(), placeholder=choose(), key=PREFIX + "gpu")
        c2.number_input(t("training.gpus"), min_value=1, max_value=100000, step=1, key=PREFIX + "gpus")
        c3.selectbox(t("training.precision"), PRECISIONS, placeholder=choose(), key=PREFIX + "precision")
        c4.selectbox(t("training.workload"), WORKLOADS, placeholder=choose(), key=PREFIX + "workload",
                     format_func=workloads.get)
        with st.expander(t("training.architecture")):
            st.caption(t("training.architecture_help"))
            cols = st.columns(4)
            for i, name in enumerate(ARCH_FIELDS):
                cols[i % 4].number_input(t(f"training.arch.{name}"), min_value=0, max_value=10_000_000, step=1,
                                         key=PREFIX + name)
            cols[3].checkbox(t("training.arch.gated_mlp"), key=PREFIX + "gated_mlp")
        with st.expander(t("training.advanced")):
            c1, c2, c3 = st.columns(3)
            c1.checkbox(t("training.eff_override"), key=PREFIX + "eff_override")
            c1.slider(t("training.efficiency"), 0.05, 0.8, key=PREFIX + "efficiency", step=0.01)
            c2.number_input(t("training.correction"), min_value=0.0, max_value=5.0, step=0.05, key=PREFIX + "correction",
                            help=t("training.zero_means_default"))
            c3.number_input(t("training.pue"), min_value=0.0, max_value=3.0, step=0.05, key=PREFIX + "pue",
                            help=t("training.zero_means_default"))
            c3.checkbox(t("training.use_calibration"), key=PREFIX + "use_calibration")
            st.checkbox(t("training.manual_layout"), key=PREFIX + "manual_layout", help=t("training.manual_layout_help"))
            c1, c2, c3, c4 = st.columns(4)
            c1.selectbox(t("training.zero"), [0, 1, 2, 3], placeholder=choose(), key=PREFIX + "zero")
            c1.checkbox(t("training.offload"), key=PREFIX + "offload")
            c2.selectbox(t("training.tp"), [1, 2, 4, 8], placeholder=choose(), key=PREFIX + "tp")
            c2.selectbox(t("training.pp"), [1, 2, 4, 8, 16, 32, 64], placeholder=choose(), key=PREFIX + "pp")
            c2.selectbox(t("training.ep"), [1, 2, 4, 8, 16, 32, 64], placeholder=choose(), key=PREFIX + "ep",
                         help=t("training.ep_help"))
            c3.selectbox(t("training.recompute"), RECOMPUTE, placeholder=choose(), key=PREFIX + "recompute",
                         format_func=recomputes.get)
            c3.number_input(t("training.micro_batch"), min_value=1, max_value=1024, step=1, key=PREFIX + "micro_batch")
            c4.selectbox(t("training.optimizer"), list(OPTIMIZER_BYTES), format_func=optimizers.get,
                         placeholder=choose(),
                         key=PREFIX + "optimizer")
            c4.number_input(t("training.lora_rank"), min_value=0, max_value=4096, step=1, key=PREFIX + "lora_rank",
                            help=t("training.lora_rank_help"))
            c4.checkbox(t("training.qlora"), key=PREFIX + "qlora")
        st.form_submit_button(t("training.submit"), type="primary", on_click=_compute)


def _metric_row(est: TrainingEstimate) -> None:
    c = st.columns(6)
    c[0].metric(t("training.out.flops"), f"{est.total_flops:.3g}",
                help=t("training.out.flops_detailed", value=f"{est.detailed.training_total:.3g}") if est.detailed else None)
    c[1].metric(t("training.out.effective"), f"{est.effective_tflops_per_gpu:.0f}",
                help=t("training.out.effective_help", peak=est.peak_tflops, eff=f"{est.efficiency:.0%}"))
    c[2].metric(t("training.out.wall_clock"), render(duration_msg(est.wall_clock_hours)),
                help=t("unit.hours", value=f"{est.wall_clock_hours:,.1f}"))
    c[3].metric(t("training.out.gpu_hours"), f"{est.gpu_hours:,.0f}")
    c[4].metric(t("training.out.energy"), f"{est.energy_kwh:,.0f}")
    c[5].metric(t("training.out.cost"), f"{est.cost_cny:,.0f}",
                help=t("training.out.cost_placeholder") if est.gpu.price_is_placeholder else None)


def _calibration_caption(est: TrainingEstimate) -> None:
    """How many recorded runs back this GPU/workload, their error, and whether a correction applies."""
    fitted = [c for c in estimates_svc.corrections(sessions=ctx().sessions)
              if c.gpu_id == est.gpu.id and c.workload == est.inputs.workload]
    if not fitted:
        st.caption(t("training.calibration_none", gpu=est.gpu.id))
        return
    c = fitted[0]
    key = "training.calibration_applied" if est.calibration else "training.calibration_pending"
    st.caption(t(key, runs=c.runs, factor=f"{c.factor:.2f}", before=f"{c.error_before:.0%}",
                 after=f"{c.error_after:.0%}" if c.error_after is not None else "-",
                 minimum=int(defaults.value("calibration_min_runs"))))


def _accuracy_caption(evidence: EfficiencyDefault) -> None:
    """How wrong this method has been on the published runs it did not see (leave-one-out, cached in core)."""
    accuracy = published_accuracy()
    overall = accuracy.overall
    st.caption(t("estvalid.accuracy", runs=overall.runs, median=percent(overall.median_error),
                 worst=times(overall.worst_factor)))
    same = accuracy.group(evidence.method)
    if same:
        st.caption(t("estvalid.accuracy_method", runs=same.runs, method=method_label(same.label, current_lang()),
                     median=percent(same.median_error), worst=times(same.worst_factor)))


# One colour per memory term, the same in both languages (the legend is sorted by term, not by label).
MEMORY_COLOURS = {"weights": "#4c78a8", "gradients": "#f58518", "optimizer": "#54a24b", "activations": "#b279a2",
                  "overhead": "#9d9d9d"}


def _memory_chart(est: TrainingEstimate) -> alt.Chart:
    """One stacked bar of the five memory terms per GPU against the GPU's capacity: every term in
    the legend (below the bar) and in the tooltip, the capacity a labelled red line."""
    terms = est.memory.terms()
    labels = {k: t(f"memory.term.{k}") for k in terms}
    frame = pd.DataFrame([{"term": labels[k], "gb": v, "order": i, "row": ""}
                          for i, (k, v) in enumerate(terms.items())])
    top = max(est.memory.total_gb, est.memory.capacity_gb) * 1.1
    x = alt.X("gb:Q", stack="zero", title=t("training.memory.axis"), scale=alt.Scale(domain=[0, top]))
    bars = alt.Chart(frame).mark_bar(height=32).encode(
        x=x, y=alt.Y("row:N", axis=None), order=alt.Order("order:Q"),
        color=alt.Color("term:N", title=t("training.memory.term"),
                        scale=alt.Scale(domain=list(labels.values()), range=[MEMORY_COLOURS[k] for k in labels]),
                        legend=alt.Legend(orient="bottom", direction="horizontal", columns=len(labels), labelLimit=0)),
        tooltip=[alt.Tooltip("term:N", title=t("training.memory.term")), alt.Tooltip("gb:Q", format=".1f", title="GB")],
    )
    cap = pd.DataFrame({"gb": [est.memory.capacity_gb], "row": [""],
                        "label": [t("uitext.memory.capacity", gb=f"{est.memory.capacity_gb:.0f}")]})
    capacity = alt.Chart(cap).mark_rule(color="red", strokeWidth=2, strokeDash=[6, 3]).encode(x=x)
    caption = alt.Chart(cap).mark_text(color="red", align="left", baseline="top", dx=4, y=2).encode(x=x, text="label:N")
    # "pad": the height is the bar's; legend and axis title come below it instead of squeezing it.
    return (bars + capacity + caption).properties(height=60, autosize=alt.AutoSizeParams(type="pad"))


FORMULA_LINES = ("total_flops", "total_flops_detailed", "effective_tflops_per_gpu", "wall_clock_hours", "gpu_hours",
                 "energy_kwh", "cost")
UNITS = {"h": "hours", "CNY": "cny"}  # units written in words in the formulas table (uitext.unit.<name>)


def unit_label(unit: str) -> str:
    """A unit of the formulas table: hours and yuan in words, the others (FLOPs, GPU·h, kWh) as they are."""
    return t(f"uitext.unit.{UNITS[unit]}") if unit in UNITS else unit


def formula_text(line) -> str:  # noqa: ANN001 - core.estimation.training.Line
    """A formula line in the page's language: the estimate's own formula is "symbols = figures = result"
    in programmers' English; the symbols are said in words (uitext.training_formula.<line>), the
    figures kept."""
    symbols, sep, figures = line.formula.partition(" = ")
    if not sep or line.name not in FORMULA_LINES:
        return line.formula
    name = line.name + ("_calibrated" if line.name == "wall_clock_hours" and "calibration" in symbols else "")
    return f"{t(f'uitext.training_formula.{name}')} = {figures}"


def training_result() -> None:
    """The last estimate: key figures, formulas and assumptions, memory verdict, save and export."""
    if "tr_error" in st.session_state:
        with guarded():
            raise st.session_state["tr_error"]
        return
    est: TrainingEstimate | None = st.session_state.get("tr_result")
    if est is None:
        st.info(t("training.empty"), icon=":material/calculate:")
        return
    lang = current_lang()
    st.subheader(t("training.result", gpus=est.inputs.gpus, gpu=est.gpu.id))
    _metric_row(est)
    _calibration_caption(est)
    with st.expander(t("training.formulas")):
        st.dataframe(pd.DataFrame([{t("training.col.output"): t(f"training.line.{line.name}"),
                                    t("training.col.value"): f"{line.value:.4g} {unit_label(line.unit)}",
                                    t("training.col.formula"): formula_text(line)} for line in est.lines]),
                     hide_index=True, width="stretch")
        st.markdown("\n".join(f"- {m.render(lang)}" for m in est.assumptions))
        if est.efficiency_evidence:
            st.caption(t("training.evidence", confidence=t(f"confidence.{est.efficiency_evidence.confidence}")))
            _accuracy_caption(est.efficiency_evidence)
            st.dataframe(pd.DataFrame([{t("training.col.run"): n.run.id, t("training.col.efficiency"): f"{n.efficiency:.1%}",
                                        t("training.col.weight"): f"{n.weight:.0%}", t("training.col.source"): n.run.source}
                                       for n in est.efficiency_evidence.neighbours]), hide_index=True, width="stretch")
        if est.calibration:
            c = est.calibration
            st.caption(t("training.calibration_note", runs=c.runs, factor=f"{c.factor:.2f}",
                         before=f"{c.error_before:.0%}", after=f"{c.error_after:.0%}" if c.error_after is not None else "-"))
    st.markdown("**" + t("training.memory.title", total=f"{est.memory.total_gb:.1f}", capacity=f"{est.memory.capacity_gb:.1f}",
                         tp=est.layout.tp, pp=est.layout.pp, ep=est.layout.ep, zero=est.layout.zero) + "**")
    show(_memory_chart(est))
    largest = t(f"memory.term.{est.memory.largest_term}")
    if est.memory.fits:
        st.success(t("training.memory.fits", largest=largest), icon=":material/check_circle:")
    else:
        st.error(t("training.memory.no_fit", largest=largest), icon=":material/warning:")
        for remedy in est.fit_remedies:
            st.markdown(f"- {render(remedy)}")
        if not est.fit_remedies:
            st.markdown(t("training.memory.no_single_remedy"))
    _save_and_export(est)


def _save(est: TrainingEstimate) -> None:
    try:
        new_id = estimates_svc.save_training_estimate(sessions=ctx().sessions, actor=me(), estimate=est,
                                                      title=st.session_state.get("tr_title", ""), lang=current_lang())
        st.session_state["tr_saved"] = st.session_state["tr_saved_id"] = new_id
        st.session_state.pop("tr_save_error", None)
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        st.session_state["tr_save_error"] = exc


def _save_and_export(est: TrainingEstimate) -> None:
    doc = {"inputs": est.inputs.to_dict(), "outputs": est.as_dict(current_lang())}
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1.form("save_training", border=False):
        st.text_input(t("estimate.save_title"), key="tr_title", max_chars=200)
        st.form_submit_button(t("estimate.save"), on_click=_save, args=(est,),
                              disabled=me().role in ("executive", "committee"))
    if "tr_save_error" in st.session_state:
        with guarded():
            raise st.session_state.pop("tr_save_error")
    elif "tr_saved" in st.session_state:
        st.success(t("estimate.saved", id=st.session_state.pop("tr_saved")))
    if st.session_state.get("tr_saved_id"):
        apply_with_estimate(st.session_state["tr_saved_id"])
    c2.download_button(t("estimate.export_json"), to_json_bytes(doc), "training-estimate.json", "application/json")
    outputs = doc["outputs"]
    sheets = {
        "summary": {k: v for k, v in outputs.items() if not isinstance(v, (dict, list))},
        "memory": outputs["memory"],
        "formulas": [{"output": k, "formula": v} for k, v in outputs["formulas"].items()],
        "assumptions": [{"assumption": a} for a in outputs["assumptions"]],
        "inputs": {k: v for k, v in est.inputs.to_dict().items()},
    }
    c3.download_button(t("estimate.export_excel"), to_excel_bytes(sheets), "training-estimate.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _run_recommendation() -> None:
    st.session_state.pop("tr_recommendation", None)
    st.session_state.pop("tr_recommend_error", None)
    try:
        inp = _input_from_state()
        st.session_state["tr_recommendation"] = recommend(
            model=inp.model, tokens=inp.tokens, precision=inp.precision, workload=inp.workload,
            deadline_hours=(st.session_state["tr_deadline_days"] * 24) or None,
            budget_cny=st.session_state["tr_budget"] or None, max_gpus=int(st.session_state["tr_max_gpus"]),
            whole_catalog=bool(st.session_state.get("tr_whole_catalog")),
        )
    except Exception as exc:  # noqa: BLE001 - shown by the page through ui.errors
        st.session_state["tr_recommend_error"] = exc


def recommendation_section() -> None:
    """Which GPU, how many and how laid out: constraints, the options chart, the Pareto table, why."""
    st.subheader(t("recommend.title"))
    st.caption(t("estvalid.recommend_caption"))
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input(t("recommend.deadline_days"), min_value=0.0, max_value=3650.0, value=0.0, key="tr_deadline_days",
                    help=t("training.zero_means_none"))
    c2.number_input(t("recommend.budget"), min_value=0.0, max_value=1e12, value=0.0, key="tr_budget",
                    help=t("training.zero_means_none"))
    c3.selectbox(t("recommend.max_gpus"), [64, 256, 1024, 4096, 16384], index=3,
                 placeholder=choose(), key="tr_max_gpus")
    c4.checkbox(t("estvalid.whole_catalog"), key="tr_whole_catalog", help=t("estvalid.whole_catalog_help"))
    c4.button(t("recommend.run"), on_click=_run_recommendation)
    if "tr_recommend_error" in st.session_state:
        with guarded():
            raise st.session_state["tr_recommend_error"]
        return
    rec = st.session_state.get("tr_recommendation")
    if rec is None:
        return
    for reason in rec.reasons:
        st.markdown(f"- {render(reason)}")
    if not rec.options:
        st.warning(t("recommend.none"))
        return
    frame = pd.DataFrame([o.as_dict() for o in rec.options])
    frame["label"] = frame["gpu"] + " ×" + frame["gpus"].astype(str)
    frame["set"] = frame["pareto"].map({True: t("recommend.pareto"), False: t("recommend.other")})
    chart = alt.Chart(frame).mark_circle(size=70).encode(
        x=alt.X("wall_clock_hours:Q", scale=alt.Scale(type="log"), title=t("estvalid.axis_hours")),
        y=alt.Y("cost:Q", scale=alt.Scale(type="log"), title=t("recommend.axis_cost")),
        color=alt.Color("set:N", title=""),
        shape=alt.Shape("gpu:N", title=t("training.gpu")),
        tooltip=[alt.Tooltip("label:N", title=t("uitext.recommend.option")), alt.Tooltip("tp:Q", title="TP"),
                 alt.Tooltip("pp:Q", title="PP"), alt.Tooltip("zero:Q", title="ZeRO"),
                 alt.Tooltip("wall_clock_hours:Q", format=",.2f", title=t("estvalid.axis_hours")),
                 alt.Tooltip("cost:Q", format=",.0f", title=t("recommend.axis_cost")),
                 alt.Tooltip("memory_gb:Q", format=".1f", title=t("recommend.memory"))],
    )
    show(chart)
    st.dataframe(pd.DataFrame([{
        t("training.gpu"): o.gpu, t("training.gpus"): o.gpus, "TP": o.layout.tp, "PP": o.layout.pp, "EP": o.layout.ep,
        "ZeRO": o.layout.zero, t("estvalid.col_duration"): render(o.duration), t("recommend.axis_cost"): round(o.cost_cny),
        t("recommend.memory"): round(o.memory_gb, 1), t("estvalid.col_pools"): ", ".join(o.pools),
        t("recommend.chosen"): "✔" if o == rec.choice else "",
    } for o in rec.pareto]), hide_index=True, width="stretch")
