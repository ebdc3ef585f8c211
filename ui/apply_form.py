"""The Apply page's form: widgets for every field of the intake form (算力需求受理单) and the
mapping between them and :class:`core.lifecycle.forms.IntakeForm`."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.clock import utc_today
from core.lifecycle import services as lifecycle
from core.lifecycle.forms import DATA_TYPES, DEMAND_TYPES, PRIORITIES, RUN_PERIODS, IntakeForm
from core.lifecycle.labels import tier_name
from core.org import load_org
from core.services import estimates as estimates_svc
from ui.builtin_text import DATE_FORMAT, choose
from ui.context import ctx, me
from ui.i18n import current_lang, t

K = "ap_"  # widget keys of this form
TEXT_FIELDS = ("contact", "business_background", "expected_value", "scenario", "model_name", "framework",
               "cuda_version", "python_version", "model_location", "input_format", "output_format")


def _labels(prefix: str, values) -> dict:  # noqa: ANN001 - any iterable of codes
    return {v: t(f"{prefix}.{v}") for v in values}


def _init(form: IntakeForm) -> None:
    """Put a form's values into the widget keys (a fresh form, a draft or an estimate)."""
    s = st.session_state
    for name in TEXT_FIELDS:
        s[K + name] = getattr(form, name) or ""
    s[K + "project"] = form.project
    s[K + "demand_type"] = form.demand_type or "training"
    s[K + "demand_subtype"] = form.demand_subtype
    s[K + "parameters"] = (form.parameters or 0) / 1e9
    s[K + "data_size_gb"] = form.data_size_gb or 0.0
    s[K + "data_type"] = form.data_type or "text"
    s[K + "gpu_model"] = form.gpu_model
    s[K + "gpus_per_run"] = form.gpus_per_run or 0
    s[K + "hours_per_run"] = form.hours_per_run or 0.0
    s[K + "runs_per_period"] = form.runs_per_period or 0
    s[K + "run_period"] = form.run_period or "once"
    s[K + "key_libraries"] = ", ".join(f"{k}=={v}" if v else k for k, v in (form.key_libraries or {}).items())
    s[K + "sla_latency_mean_ms"] = form.sla_latency_mean_ms or 0.0
    s[K + "sla_latency_p99_ms"] = form.sla_latency_p99_ms or 0.0
    s[K + "qps_peak"] = form.qps_peak or 0.0
    s[K + "qps_mean"] = form.qps_mean or 0.0
    s[K + "high_availability"] = bool(form.high_availability)
    s[K + "canary"] = bool(form.canary)
    s[K + "pool"] = form.pool
    s[K + "requested_gpus"] = form.requested_gpus or 1
    s[K + "start_date"] = form.start_date or utc_today() + timedelta(days=1)
    s[K + "duration_days"] = form.duration_days or 7
    s[K + "priority"] = form.priority or "normal"
    s[K + "estimate_id"] = form.estimate_id


def ensure_state() -> None:
    """First visit: an empty form; a draft or estimate handed over by another page replaces it."""
    handed = st.session_state.pop("apply_prefill", None)
    if handed is not None:
        st.session_state["apply_draft_id"] = handed.get("draft_id")
        _init(IntakeForm.from_dict(handed["form"]))
    elif K + "demand_type" not in st.session_state:
        st.session_state["apply_draft_id"] = None
        _init(IntakeForm())


def form_from_widgets() -> IntakeForm:
    """The intake form as the widgets hold it now (blank numbers are 'not answered')."""
    s, actor = st.session_state, me()
    org = load_org()

    def num(name: str) -> float | None:
        return s.get(K + name) or None

    libraries = {}
    for part in (s.get(K + "key_libraries") or "").split(","):
        if part.strip():
            name, _, version = part.strip().partition("==")
            libraries[name.strip()] = version.strip()
    raw = {name: (s.get(K + name) or "").strip() or None for name in TEXT_FIELDS}
    raw.update({
        "applicant": actor.name, "department": org.department_id(actor.department), "project": s.get(K + "project"),
        "demand_type": s.get(K + "demand_type"), "demand_subtype": s.get(K + "demand_subtype"),
        "parameters": (num("parameters") or 0) * 1e9 or None, "data_size_gb": num("data_size_gb"),
        "data_type": s.get(K + "data_type"), "gpu_model": s.get(K + "gpu_model"),
        "gpus_per_run": num("gpus_per_run"), "hours_per_run": num("hours_per_run"),
        "runs_per_period": num("runs_per_period"), "run_period": s.get(K + "run_period"),
        "key_libraries": libraries or None,
        "sla_latency_mean_ms": num("sla_latency_mean_ms"), "sla_latency_p99_ms": num("sla_latency_p99_ms"),
        "qps_peak": num("qps_peak"), "qps_mean": num("qps_mean"),
        "high_availability": s.get(K + "high_availability"), "canary": s.get(K + "canary"),
        "pool": s.get(K + "pool"), "requested_gpus": num("requested_gpus"),
        "start_date": s.get(K + "start_date"), "duration_days": num("duration_days"),
        "priority": s.get(K + "priority"), "estimate_id": s.get(K + "estimate_id"),
    })
    if raw["demand_type"] == "training":
        for name in ("model_location", "input_format", "output_format", "sla_latency_mean_ms", "sla_latency_p99_ms",
                     "qps_peak", "qps_mean"):
            raw[name] = None
    return IntakeForm.from_dict({k: v for k, v in raw.items() if v is not None})


def attach_estimate() -> None:
    """Pre-fill from a saved training estimate: model size, GPU model and count, hours."""
    est_id = st.session_state.get(K + "estimate_id")
    if not est_id:
        return
    est = estimates_svc.get_estimate(sessions=ctx().sessions, actor=me(), estimate_id=int(est_id))
    out, inputs = est["outputs"], est["inputs"]
    s = st.session_state
    if est["kind"] == "training":
        s[K + "demand_type"] = "training"
        s[K + "parameters"] = (inputs.get("model") or {}).get("params", 0) / 1e9
        s[K + "gpu_model"] = out.get("gpu")
        s[K + "gpus_per_run"] = int(out.get("gpus") or 0)
        s[K + "hours_per_run"] = round(float(out.get("wall_clock_hours") or 0), 1)
        s[K + "requested_gpus"] = int(out.get("gpus") or 1)
    else:
        s[K + "demand_type"] = "inference"
        s[K + "requested_gpus"] = int(out.get("gpus") or 1)
        s[K + "qps_peak"] = float(inputs.get("peak_qps") or 0)
        s[K + "qps_mean"] = float(inputs.get("mean_qps") or 0)


def estimate_choices() -> dict:
    """Saved estimates the user may attach, by id."""
    rows = estimates_svc.list_estimates(sessions=ctx().sessions, actor=me())
    return {None: t("apply.no_estimate")} | {r["id"]: f"#{r['id']} {r['title']} · {r['gpu_id']}" for r in rows}


def widgets() -> None:
    """All fields, grouped in the seed's areas; the demand type switches the technical area."""
    org = load_org()
    lang = current_lang()
    s = st.session_state
    estimates = estimate_choices()
    st.selectbox(t("apply.estimate"), list(estimates), format_func=estimates.get,
                 placeholder=choose(), key=K + "estimate_id",
                 on_change=attach_estimate, help=t("apply.estimate_help"))
    c1, c2 = st.columns(2)
    types = _labels("demand", DEMAND_TYPES)
    c1.radio(t("form.demand_type"), list(types), format_func=types.get, key=K + "demand_type", horizontal=True)
    subtypes = _labels("subtype", DEMAND_TYPES[s[K + "demand_type"]])
    if s.get(K + "demand_subtype") not in subtypes:
        s[K + "demand_subtype"] = next(iter(subtypes))
    c2.radio(t("form.demand_subtype"), list(subtypes), format_func=subtypes.get, key=K + "demand_subtype", horizontal=True)

    st.subheader(t("apply.section.basic"))
    dept = org.department_id(me().department)
    projects = {p.id: (p.name_zh if lang == "zh-CN" else p.name_en) for p in org.projects.values() if p.department == dept}
    if s.get(K + "project") not in projects:
        s[K + "project"] = next(iter(projects), None)
    c1, c2, c3 = st.columns(3)
    c1.text_input(t("form.applicant"), value=me().name, disabled=True)
    c2.selectbox(t("form.project"), list(projects) or [None], format_func=lambda p: projects.get(p, t("apply.no_project")),
                 placeholder=choose(), key=K + "project")
    c3.text_input(t("form.contact"), key=K + "contact", max_chars=120)

    st.subheader(t("apply.section.business"))
    st.text_area(t("form.business_background"), key=K + "business_background", max_chars=2000)
    c1, c2 = st.columns(2)
    c1.text_area(t("form.expected_value"), key=K + "expected_value", max_chars=1000)
    c2.text_area(t("form.scenario"), key=K + "scenario", max_chars=1000)

    st.subheader(t("apply.section.technical"))
    c1, c2, c3 = st.columns(3)
    c1.text_input(t("form.model_name"), key=K + "model_name", max_chars=120)
    c2.number_input(t("form.parameters_b"), min_value=0.0, max_value=1e5, key=K + "parameters", format="%.3f")
    if s[K + "demand_type"] == "training":
        c3.text_input(t("form.framework"), key=K + "framework", max_chars=60)
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("form.data_size_gb"), min_value=0.0, max_value=1e9, key=K + "data_size_gb")
        c2.selectbox(t("form.data_type"), DATA_TYPES, format_func=_labels("data_type", DATA_TYPES).get,
                     placeholder=choose(), key=K + "data_type")
        gpus = [g.id for g in _catalog_gpus()]
        c3.selectbox(t("form.gpu_model"), [None, *gpus], format_func=lambda g: g or "-",
                     placeholder=choose(), key=K + "gpu_model")
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input(t("form.gpus_per_run"), min_value=0, max_value=100000, step=1, key=K + "gpus_per_run")
        c2.number_input(t("form.hours_per_run"), min_value=0.0, max_value=100000.0, key=K + "hours_per_run")
        c3.number_input(t("form.runs_per_period"), min_value=0, max_value=10000, step=1, key=K + "runs_per_period")
        c4.selectbox(t("form.run_period"), RUN_PERIODS, format_func=_labels("run_period", RUN_PERIODS).get,
                     placeholder=choose(), key=K + "run_period")
        c1, c2, c3 = st.columns(3)
        c1.text_input(t("form.cuda_version"), key=K + "cuda_version", max_chars=20, placeholder="12.2")
        c2.text_input(t("form.python_version"), key=K + "python_version", max_chars=20, placeholder="3.11")
        c3.text_input(t("form.key_libraries"), key=K + "key_libraries", max_chars=500, placeholder=t("form.key_libraries_placeholder"))
    else:
        c3.text_input(t("form.model_location"), key=K + "model_location", max_chars=300)
        c1, c2 = st.columns(2)
        c1.text_input(t("form.input_format"), key=K + "input_format", max_chars=200)
        c2.text_input(t("form.output_format"), key=K + "output_format", max_chars=200)
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input(t("form.sla_latency_mean_ms"), min_value=0.0, max_value=1e7, key=K + "sla_latency_mean_ms")
        c2.number_input(t("form.sla_latency_p99_ms"), min_value=0.0, max_value=1e7, key=K + "sla_latency_p99_ms")
        c3.number_input(t("form.qps_peak"), min_value=0.0, max_value=1e9, key=K + "qps_peak")
        c4.number_input(t("form.qps_mean"), min_value=0.0, max_value=1e9, key=K + "qps_mean")
        c1, c2 = st.columns(2)
        c1.checkbox(t("form.high_availability"), key=K + "high_availability")
        c2.checkbox(t("form.canary"), key=K + "canary")
        c1, c2 = st.columns(2)
        c1.text_input(t("form.cuda_version"), key=K + "cuda_version", max_chars=20, placeholder="12.2")
        c2.text_input(t("form.framework"), key=K + "framework", max_chars=60)

    st.subheader(t("apply.section.resources"))
    pools = {p.id: t("apply.pool_label", pool=p.id, gpu=p.gpu, gpus=p.gpus, kind=t(f"pool_kind.{p.kind}"))
             for p in org.pools.values() if p.kind != "dynamic_reserve"}
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 1])
    c1.selectbox(t("form.pool"), [None, *pools], format_func=lambda p: pools.get(p, "-"),
                 placeholder=choose(), key=K + "pool")
    c2.number_input(t("form.requested_gpus"), min_value=1, max_value=100000, step=1, key=K + "requested_gpus")
    c3.date_input(t("form.start_date"), key=K + "start_date", min_value=utc_today(), format=DATE_FORMAT)
    c4.number_input(t("form.duration_days"), min_value=1, max_value=3660, step=1, key=K + "duration_days")
    c5.selectbox(t("form.priority"), PRIORITIES[:3], format_func=_labels("priority", PRIORITIES).get,
                 placeholder=choose(), key=K + "priority")


def _catalog_gpus():
    from core.estimation.catalog import load_catalog

    return load_catalog().gpus


def precheck() -> dict:
    """What submitting now would say (missing fields, flags, capacity, route); writes nothing."""
    return lifecycle.precheck(sessions=ctx().sessions, actor=me(), form=form_from_widgets())


def save_draft() -> int:
    """Save the form as a draft (new or the one being edited)."""
    draft_id = lifecycle.save_draft(sessions=ctx().sessions, actor=me(), form=form_from_widgets(),
                                    request_id=st.session_state.get("apply_draft_id"))
    st.session_state["apply_draft_id"] = draft_id
    return draft_id


def submit(queue_if_short: bool) -> dict:
    """Submit the form (or the draft being edited with the form's current values)."""
    view = lifecycle.submit(sessions=ctx().sessions, actor=me(), form=form_from_widgets(),
                            request_id=st.session_state.get("apply_draft_id"), queue_if_short=queue_if_short)
    st.session_state["apply_draft_id"] = None
    return view


def run_action(action: str) -> None:
    """Button callback: check, save a draft or submit; the outcome is shown by :func:`outcome`."""
    s = st.session_state
    s.pop("apply_outcome", None)
    try:
        if action == "check":
            s["apply_outcome"] = ("check", precheck())
        elif action == "draft":
            s["apply_outcome"] = ("draft", save_draft())
        else:
            s["apply_outcome"] = ("submitted", submit(bool(s.get("ap_queue"))))
    except Exception as exc:  # noqa: BLE001 - shown by outcome() through ui.errors
        s["apply_outcome"] = ("error", exc)


def _field_list(names) -> str:  # noqa: ANN001 - iterable of field names
    return "、".join(t(f"form.{n}") for n in names) if current_lang() == "zh-CN" else ", ".join(t(f"form.{n}") for n in names)


def _show_checks(result: dict) -> None:
    from ui.i18n import render

    if result["missing"]:
        st.error(t("apply.missing", fields=_field_list(result["missing"])), icon=":material/rule:")
    else:
        st.success(t("apply.complete"), icon=":material/task_alt:")
    for error in result.get("errors", []):  # what submitting would refuse (the first is what it says)
        st.error(render(error), icon=":material/block:")
    for flag in result["flags"]:
        (st.error if flag.get("block") else st.warning)(render(flag))
    if result["capacity"]:
        cap = result["capacity"]
        key = "lifecycle.capacity_ok" if cap["fits"] else "lifecycle.capacity_short"
        alternatives = ", ".join(f"{a['pool']} ({a['free']})" for a in cap["alternatives"]) or "-"
        (st.info if cap["fits"] else st.warning)(t(key, pool=cap["pool"], free=cap["free"], requested=cap["requested"],
                                                   largest=cap["largest_fit"], alternatives=alternatives))
    if result["tier"]:
        st.info(t("apply.route", rule=tier_name(result["tier"]["id"], current_lang()), text=render(result["tier"]),
                  days=result["tier"]["expected_review_working_days"]), icon=":material/alt_route:")


def outcome() -> None:
    """The result of the last action: checks, the saved draft, the request number, or the error."""
    from ui.errors import show_error
    from ui.i18n import render

    kind, value = st.session_state.get("apply_outcome", (None, None))
    if kind == "check":
        _show_checks(value)
    elif kind == "draft":
        st.success(t("apply.draft_saved", id=value), icon=":material/save:")
    elif kind == "submitted":
        st.success(t("apply.submitted", number=value["number"], status=t(f"status.{value['status']}"),
                     days=value["expected_review_working_days"] or 0), icon=":material/send:")
        if value.get("tier_message"):
            st.info(t("apply.route", rule=tier_name(value["tier"], current_lang()), text=render(value["tier_message"]),
                      days=value["expected_review_working_days"] or 0), icon=":material/alt_route:")
        for flag in value["flags"]:
            st.warning(render(flag))
    elif kind == "error":
        show_error(value)
        params = getattr(value, "params", {})
        if getattr(value, "key", "") == "lifecycle.incomplete" and params.get("missing"):
            st.error(t("apply.missing", fields=_field_list(params["missing"].split(", "))), icon=":material/rule:")
