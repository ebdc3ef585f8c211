"""Views of allocations: the list, the allocation sheet (算力资源分配清单), manifests, retry."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.identity import OPS_ROLES
from core.lifecycle import provisioning
from core.lifecycle.labels import backend_name
from ui.builtin_text import choose
from ui.context import ctx, me
from ui.errors import show_outcome
from ui.i18n import current_lang, render, t
from ui.names import k8s_kind
from ui.sources import technical_sources


def allocations() -> list[dict]:
    """Allocations the current identity may see, newest first."""
    return provisioning.list_allocations(sessions=ctx().sessions, actor=me())


def allocations_frame(rows: list[dict]) -> pd.DataFrame:
    """The allocation list with translated headers."""
    return pd.DataFrame([{
        t("req.col.number"): r["number"], t("req.col.status"): t(f"status.{r['status']}"),
        t("alloc.col.pool"): r["pool"], t("alloc.col.gpus"): f"{r['gpus']} × {r['gpu_model']}",
        t("alloc.col.namespace"): r["namespace"] or "-", t("alloc.col.cluster"): r["cluster"] or "-",
        t("alloc.col.window"): f"{r['start'] or '-'} → {r['end'] or '-'}",
        t("alloc.col.backend"): backend_name(r["backend"], current_lang()),
        t("alloc.col.failed_step"): step_label(r["failed_step"]) if r["failed_step"] else "",
    } for r in rows])


def pick(rows: list[dict]) -> int | None:
    """A picker of the listed allocations by request; the chosen request id."""
    labels = {None: t("req.pick_none")} | {r["request_id"]: f"{r['number']} · {r['pool']} · {r['gpus']} GPU" for r in rows}
    return st.selectbox(t("alloc.pick"), list(labels), format_func=labels.get, placeholder=choose(), key="alloc_pick")


def _retry(request_id: int) -> None:
    try:
        provisioning.retry(sessions=ctx().sessions, actor=me(), request_id=request_id)
        st.session_state["alloc_done"] = "alloc.retried"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["alloc_error"] = exc


def _recover() -> None:
    try:
        provisioning.recover_stalled(sessions=ctx().sessions, actor=me())
        st.session_state["alloc_done"] = "alloc.recovered"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["alloc_error"] = exc


def _stop(request_id: int) -> None:
    try:
        out = provisioning.stop_preempted(sessions=ctx().sessions, actor=me(), request_id=request_id)
        st.session_state["alloc_stopped"] = out
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["alloc_error"] = exc


def stop_outcome(out: dict) -> None:
    """What stopping preempted work did on its cluster (or what the operator applies, in plan mode)."""
    if out.get("error"):
        st.error(t("alloc.stop_failed", number=out.get("number") or out["request_id"], error=render(out["error"])))
        return
    st.success(t("alloc.stopped", number=out["number"], namespace=out["namespace"], cluster=out["cluster"],
                 backend=backend_name(out["backend"], current_lang())))
    st.dataframe(pd.DataFrame([{
        t("alloc.col.verb"): t(f"uitext.verb.{a['verb']}") if a["verb"] in ("patch", "delete") else a["verb"],
        t("alloc.col.object"): f"{k8s_kind(a['kind'])} {a['name'] or t('uitext.k8s.all')}",
        t("alloc.col.detail"): t("uitext.stop.quota_zero" if a["kind"] == "ResourceQuota" else "uitext.stop.gpu_pods"),
    } for a in out["actions"]]), hide_index=True, width="stretch")
    technical_sources([f"{a['verb']} {a['kind']}/{a['name'] or '*'} -n {a['namespace']}: {a['detail']}"
                       for a in out["actions"]])


# Provisioning steps that are not "Kind/name" of a manifest (core.lifecycle.provisioning, core.cluster.backends).
SPECIAL_STEPS = {"backend": "backend", "interrupted": "interrupted", "AllocationSpec": "spec", "connect": "connect",
                 "Kubeconfig/token": "kubeconfig"}


def step_label(step: str) -> str:
    """A provisioning step in words: the object it creates (kind in words and name), or what it does."""
    if step in SPECIAL_STEPS:
        return t(f"uitext.step.{SPECIAL_STEPS[step]}")
    kind, _, name = step.partition("/")
    return f"{k8s_kind(kind)} {name}".strip()


def steps_table(steps: list[dict]) -> pd.DataFrame:
    """The provisioning steps of the last attempt: step, outcome, error."""
    outcomes = ("created", "unchanged", "updated", "failed", "planned")
    return pd.DataFrame([{
        t("uitext.step.col.step"): step_label(s.get("step") or ""),
        t("uitext.step.col.status"): (t(f"uitext.step.status.{s['status']}") if s.get("status") in outcomes
                                      else s.get("status") or "-"),
        t("uitext.step.col.error"): _error_text(s.get("error")) or "",
    } for s in steps])


def _error_text(error: dict | None) -> str:
    if not error:
        return ""
    return render(error) if error.get("key") else str(error.get("reason", ""))


def sheet(request_id: int) -> None:
    """The allocation sheet: quota, window, access, rules of use, provisioning steps, manifests."""
    data = provisioning.allocation_sheet(sessions=ctx().sessions, actor=me(), request_id=request_id)
    quota, window, access, prov = data["quota"], data["window"], data["access"], data["provisioning"]
    st.subheader(t("alloc.sheet_title", number=data["number"], status=t(f"status.{data['status']}")))
    c = st.columns(5)
    c[0].metric(t("alloc.col.gpus"), f"{quota['gpus']} × {quota['gpu_model']}")
    c[1].metric(t("alloc.cpu"), quota["cpu"] if quota["cpu"] is not None else "-")
    c[2].metric(t("alloc.memory"), f"{quota['memory_gi']} Gi" if quota["memory_gi"] else "-")
    c[3].metric(t("alloc.storage"), f"{quota['storage_gi']} Gi" if quota["storage_gi"] else "-")
    c[4].metric(t("alloc.col.window"), f"{window['start'] or '-'} → {window['end'] or '-'}")
    st.caption(t("alloc.where", namespace=data["namespace"] or "-", cluster=data["cluster"] or "-",
                 backend=backend_name(data["backend"], current_lang())))
    st.markdown(render(data["rules"]))
    if access["kubeconfig"]:
        st.download_button(t("alloc.kubeconfig"), access["kubeconfig"], f"{data['namespace']}.kubeconfig", "application/yaml")
    elif access.get("kubeconfig_withheld"):
        st.caption(t("alloc.kubeconfig_withheld"))
    if access["jupyter_url"]:
        st.link_button(t("alloc.jupyter"), access["jupyter_url"])
    if data["backend"] == "plan":
        st.info(t("uitext.alloc.plan_mode"), icon=":material/description:")
        technical_sources([t("alloc.plan_mode")])  # the setting that switches to a live cluster: ops
    if prov["failed_step"]:
        st.error(t("alloc.failed", step=step_label(prov["failed_step"]), error=_error_text(prov["error"])))
        if me().role in OPS_ROLES:
            st.button(t("alloc.retry"), on_click=_retry, args=(request_id,))
    if data["status"] == "provisioning" and request_id in provisioning.stalled(sessions=ctx().sessions):
        st.warning(t("alloc.stalled", minutes=provisioning.load_provisioning_defaults().stalled_after_minutes))
        if me().role in OPS_ROLES:
            st.button(t("alloc.recover"), on_click=_recover)
    if data.get("preempted_by") and data["allocation_status"] == "released" and me().role in OPS_ROLES:
        st.button(t("alloc.stop_again"), on_click=_stop, args=(request_id,))
    if prov["steps"]:
        with st.expander(t("alloc.steps", attempts=prov["attempts"])):
            st.dataframe(steps_table(prov["steps"]), hide_index=True, width="stretch")
    try:
        yaml_text = provisioning.manifests(sessions=ctx().sessions, actor=me(), request_id=request_id)
    except Exception:  # noqa: BLE001 - not provisioned yet: nothing to download
        yaml_text = None
    if yaml_text:
        st.download_button(t("alloc.manifests"), yaml_text, f"{data['namespace']}.yaml", "application/yaml")
        with st.expander(t("alloc.manifests_show")):
            st.code(yaml_text, language="yaml")
    if not show_outcome("alloc") and "alloc_stopped" in st.session_state:
        stop_outcome(st.session_state.pop("alloc_stopped"))
