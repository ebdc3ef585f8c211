"""The Apply page's form: widgets for every field of the intake form (算力需求受理单), the mapping
between them and :class:`core.lifecycle.forms.IntakeForm`, the form's submission token (a new one
whenever the form is (re)started, so one form makes one request), what a saved estimate fills in,
and the actions."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import streamlit as st

from core.clock import utc_today
from core.identity import may_apply
from core.lifecycle import services as lifecycle
from core.lifecycle.forms import DATA_TYPES, DEMAND_TYPES, PRIORITIES, RUN_PERIODS, IntakeForm
from core.org import load_org
from core.services import estimate_handover, estimates as estimates_svc
from ui.builtin_text import DATE_FORMAT, choose
from ui.context import ctx, me
from ui.i18n import current_lang, t

K = "ap_"  # widget keys of this form
TOKEN = "apply_token"  # the submission token of the form as it is now (core.lifecycle.services.submit)
TEXT_FIELDS = ("contact", "business_background", "expected_value", "scenario", "model_name", "framework",
               "cuda_version", "python_version", "model_location", "input_format", "output_format")
BILLIONS = ("parameters", "data_tokens")  # counts the widgets take in billions
WIDGET_FIELDS = (*TEXT_FIELDS, "project", "demand_type", "demand_subtype", *BILLIONS, "data_size_gb", "data_type",
                 "gpu_model", "gpus_per_run", "hours_per_run", "runs_per_period", "run_period", "key_libraries",
                 "sla_latency_mean_ms", "sla_latency_p99_ms", "qps_peak", "qps_mean", "high_availability", "canary",
                 "pool", "requested_gpus", "start_date", "duration_days", "priority", "estimate_id")
_ZERO = {"gpus_per_run": 0, "runs_per_period": 0, "data_size_gb": 0.0, "hours_per_run": 0.0,
         "sla_latency_mean_ms": 0.0, "sla_latency_p99_ms": 0.0, "qps_peak": 0.0, "qps_mean": 0.0}
_UNANSWERED = {"demand_type": "training", "data_type": "text", "run_period": "once", "requested_gpus": 1,
               "duration_days": 7, "priority": "normal"}


def _labels(prefix: str, values) -> dict:  # noqa: ANN001 - any iterable of codes
    return {v: t(f"{prefix}.{v}") for v in values}


def _widget_value(name: str, value: Any) -> Any:
    """A form field's value as its widget holds it (billions, "" and 0 for not answered, ...)."""
    if name in TEXT_FIELDS:
        return value or ""
    if name in BILLIONS:
        return (value or 0) / 1e9
    if name == "key_libraries":
        return ", ".join(f"{k}=={v}" if v else k for k, v in (value or {}).items())
    if name in ("high_availability", "canary"):
        return bool(value)
    if name == "start_date":
        return value or utc_today() + timedelta(days=1)
    if name in _ZERO:
        return value or _ZERO[name]
    return value or _UNANSWERED.get(name)


def _put(form: IntakeForm, names) -> None:  # noqa: ANN001 - an iterable of field names
    """Put the fields ``names`` of ``form`` into their widgets."""
    for name in names:
        st.session_state[K + name] = _widget_value(name, getattr(form, name))


def _start(form: IntakeForm, draft_id: int | None = None) -> None:
    """(Re)start the form with ``form``'s values and a new submission token: a fresh form, a draft
    resumed, an estimate handed over, or the form cleared after a submission."""
    _put(form, WIDGET_FIELDS)
    st.session_state[K + "queue"] = False
    st.session_state["apply_draft_id"] = draft_id
    st.session_state[TOKEN] = secrets.token_urlsafe(16)


def ensure_state() -> None:
    """First visit: an empty form; a draft or estimate handed over by another page replaces it."""
    handed = st.session_state.pop("apply_prefill", None)
    if handed is not None:
        _start(IntakeForm.from_dict(handed["form"]), handed.get("draft_id"))
    elif K + "demand_type" not in st.session_state or TOKEN not in st.session_state:
        _start(IntakeForm())


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
        "data_tokens": (num("data_tokens") or 0) * 1e9 or None,
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
    else:
        for name in ("data_size_gb", "data_tokens", "gpus_per_run", "hours_per_run", "runs_per_period"):
            raw[name] = None
    return IntakeForm.from_dict({k: v for k, v in raw.items() if v is not None})


def estimate_form(estimate_id: int) -> dict:
    """The intake form's fields a saved estimate fills in (core.services.estimate_handover)."""
    est = estimates_svc.get_estimate(sessions=ctx().sessions, actor=me(), estimate_id=int(estimate_id))
    return estimate_handover.form_fields(est)


def attach_estimate() -> None:
    """Fill in what the chosen estimate knows (subtype, model, parameters, tokens, GPU model and
    count, hours and days; for inference the SLA and QPS), leaving the other fields as typed."""
    est_id = st.session_state.get(K + "estimate_id")
    if not est_id:
        return
    fields = estimate_form(est_id)
    _put(IntakeForm.from_dict(fields), fields)


def hand_over_estimate(estimate_id: int) -> None:
    """Start the Apply page's form from a saved estimate (the Estimate page's "apply" button)."""
    st.session_state["apply_prefill"] = {"form": estimate_form(estimate_id), "draft_id": None}


def apply_with_estimate(estimate_id: int) -> None:
    """The Estimate page's button that opens the Apply page filled in from the saved estimate."""
    if st.button(t("estimate.apply_with"), icon=":material/edit_document:", key=f"apply_with_{estimate_id}",
                 on_click=hand_over_estimate, args=(estimate_id,), disabled=not may_apply(me())):
        st.switch_page("app_pages/apply.py")


def use_pool_gpu(check: dict) -> None:
    """Take the estimate re-run on the pool's GPU into the form: that GPU, the count that keeps the
    estimated wall-clock, its hours and days."""
    s, matching = st.session_state, check["matching"]
    s[K + "gpu_model"] = check["pool_gpu"]
    s[K + "gpus_per_run"] = s[K + "requested_gpus"] = matching["gpus"]
    s[K + "hours_per_run"] = estimate_handover.run_hours(matching["hours"])
    s[K + "duration_days"] = matching["days"]
    s.pop("apply_outcome", None)


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
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input(t("form.data_size_gb"), min_value=0.0, max_value=1e9, key=K + "data_size_gb")
        c2.number_input(t("form.data_tokens_b"), min_value=0.0, max_value=1e6, key=K + "data_tokens", format="%.3f",
                        help=t("form.data_tokens_help"))
        c3.selectbox(t("form.data_type"), DATA_TYPES, format_func=_labels("data_type", DATA_TYPES).get,
                     placeholder=choose(), key=K + "data_type")
        _gpu_model(c4)
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
        c1, c2, c3 = st.columns(3)
        c1.checkbox(t("form.high_availability"), key=K + "high_availability")
        c2.checkbox(t("form.canary"), key=K + "canary")
        _gpu_model(c3)
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


def _gpu_model(column) -> None:  # noqa: ANN001 - a Streamlit column
    from core.estimation.catalog import load_catalog

    gpus = load_catalog().ids()
    column.selectbox(t("form.gpu_model"), [None, *gpus], format_func=lambda g: g or "-",
                     placeholder=choose(), key=K + "gpu_model")


def precheck() -> dict:
    """What submitting now would say (missing fields, flags, capacity, route), and the attached
    estimate against the chosen pool's GPU model (``pool_gpu``); writes nothing."""
    form = form_from_widgets()
    result = lifecycle.precheck(sessions=ctx().sessions, actor=me(), form=form)
    result["pool_gpu"] = estimate_handover.pool_gpu_check(sessions=ctx().sessions, actor=me(),
                                                          estimate_id=form.estimate_id, pool_id=form.pool)
    return result


def save_draft() -> int:
    """Save the form as a draft (new or the one being edited)."""
    draft_id = lifecycle.save_draft(sessions=ctx().sessions, actor=me(), form=form_from_widgets(),
                                    request_id=st.session_state.get("apply_draft_id"))
    st.session_state["apply_draft_id"] = draft_id
    return draft_id


def submit(queue_if_short: bool, token: str | None) -> dict:
    """Submit the form (or the draft being edited with the form's current values) once: a second
    submission with the same ``token`` returns the first request."""
    return lifecycle.submit(sessions=ctx().sessions, actor=me(), form=form_from_widgets(),
                            request_id=st.session_state.get("apply_draft_id"), queue_if_short=queue_if_short,
                            idempotency_key=token or st.session_state.get(TOKEN))


def run_action(action: str, token: str | None = None) -> None:
    """Button callback: check, save a draft or submit; the outcome is shown by
    :func:`ui.apply_outcome.outcome`. A submission that made (or found) its request clears the
    form and gives it a new token."""
    s = st.session_state
    s.pop("apply_outcome", None)
    try:
        if action == "check":
            s["apply_outcome"] = ("check", precheck())
        elif action == "draft":
            s["apply_outcome"] = ("draft", save_draft())
        else:
            s["apply_outcome"] = ("submitted", submit(bool(s.get(K + "queue")), token))
            _start(IntakeForm())
    except Exception as exc:  # noqa: BLE001 - shown by outcome() through ui.errors
        s["apply_outcome"] = ("error", exc)


def actions() -> None:
    """The form's buttons: check, save a draft, queue when short, submit.

    The submit button's callback carries the form's token as this run drew it. A second click that
    reaches the server before the browser shows the cleared form runs the callback registered by
    the run the user saw — the first form's token — so it finds the first request instead of
    making another. (Streamlit 1.67 cannot disable a button while its callback runs: the token is
    what guarantees one request.)
    """
    c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
    c1.button(t("apply.check"), on_click=run_action, args=("check",))
    c2.button(t("apply.save_draft"), on_click=run_action, args=("draft",))
    c3.checkbox(t("apply.queue_if_short"), key=K + "queue", help=t("apply.queue_help"))
    c4.button(t("apply.submit"), type="primary", on_click=run_action, args=("submit", st.session_state[TOKEN]))
