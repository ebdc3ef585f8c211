"""What the Apply page shows after an action: the checks (with the attached estimate against the
pool's GPU model), the saved draft, the submitted request's number with a link to it, or the error."""

from __future__ import annotations

import streamlit as st

from core.estimation.recommend import duration_msg
from core.lifecycle.labels import tier_name
from core.notifications.links import REQUEST_PARAM
from ui.apply_form import use_pool_gpu
from ui.errors import show_error
from ui.i18n import current_lang, render, t
from ui.navigation import PAGES


def _field_list(names) -> str:  # noqa: ANN001 - iterable of field names
    return ("、" if current_lang() == "zh-CN" else ", ").join(t(f"form.{n}") for n in names)


def _duration(hours: float) -> str:
    return render(duration_msg(hours))


def _pool_gpu(check: dict) -> None:
    """The pool has another GPU model than the attached estimate: say so, and offer the same
    estimate on the pool's GPU (a training estimate re-run there; a load test cannot be)."""
    st.warning(t("apply.gpu_mismatch", pool=check["pool"], pool_gpu=check["pool_gpu"],
                 estimate_gpu=check["estimate_gpu"]), icon=":material/memory:")
    if check["kind"] != "training":
        st.info(t("apply.gpu_mismatch_inference", pool_gpu=check["pool_gpu"], estimate_gpu=check["estimate_gpu"]))
        return
    if not check["rerun"]:
        st.info(t("apply.gpu_precision_unsupported", gpu=check["pool_gpu"], precision=check["unsupported"].upper()))
        return
    same, matching = check["same"], check["matching"]
    st.info(t("apply.gpu_rerun", gpu=check["pool_gpu"], gpus=same["gpus"], same=_duration(same["hours"]),
              matching_gpus=matching["gpus"], matching=_duration(matching["hours"]),
              estimate=_duration(check["hours"])), icon=":material/calculate:")
    if not matching["fits"]:
        st.warning(t("apply.gpu_rerun_no_fit", gpu=check["pool_gpu"], gpus=matching["gpus"]))
    st.button(t("apply.gpu_use", gpus=matching["gpus"], gpu=check["pool_gpu"]), on_click=use_pool_gpu, args=(check,))


def _checks(result: dict) -> None:
    if result["missing"]:
        st.error(t("apply.missing", fields=_field_list(result["missing"])), icon=":material/rule:")
    else:
        st.success(t("apply.complete"), icon=":material/task_alt:")
    for error in result.get("errors", []):  # what submitting would refuse (the first is what it says)
        st.error(render(error), icon=":material/block:")
    for flag in result["flags"]:
        (st.error if flag.get("block") else st.warning)(render(flag))
    if result.get("pool_gpu"):
        _pool_gpu(result["pool_gpu"])
    if result["capacity"]:
        cap = result["capacity"]
        key = "lifecycle.capacity_ok" if cap["fits"] else "lifecycle.capacity_short"
        alternatives = ", ".join(f"{a['pool']} ({a['free']})" for a in cap["alternatives"]) or "-"
        (st.info if cap["fits"] else st.warning)(t(key, pool=cap["pool"], free=cap["free"], requested=cap["requested"],
                                                   largest=cap["largest_fit"], alternatives=alternatives))
    if result["tier"]:
        st.info(t("apply.route", rule=tier_name(result["tier"]["id"], current_lang()), text=render(result["tier"]),
                  days=result["tier"]["expected_review_working_days"]), icon=":material/alt_route:")


def _submitted(view: dict) -> None:
    """The request the submission made (or found: the form had been submitted already), and where to follow it."""
    days = view["expected_review_working_days"] or 0
    if view.get("duplicate"):
        st.info(t("apply.already_submitted", number=view["number"], status=t(f"status.{view['status']}")),
                icon=":material/content_copy:")
    else:
        st.success(t("apply.submitted", number=view["number"], status=t(f"status.{view['status']}"), days=days),
                   icon=":material/send:")
    st.page_link(PAGES["my_requests"].script, label=t("apply.open_request", number=view["number"]),
                 icon=":material/list_alt:", query_params={**st.query_params.to_dict(), REQUEST_PARAM: str(view["id"])})
    if view.get("tier_message"):
        st.info(t("apply.route", rule=tier_name(view["tier"], current_lang()), text=render(view["tier_message"]),
                  days=days), icon=":material/alt_route:")
    for flag in view["flags"]:
        st.warning(render(flag))


def outcome() -> None:
    """The result of the last action: checks, the saved draft, the request number, or the error."""
    kind, value = st.session_state.get("apply_outcome", (None, None))
    if kind == "check":
        _checks(value)
    elif kind == "draft":
        st.success(t("apply.draft_saved", id=value), icon=":material/save:")
    elif kind == "submitted":
        _submitted(value)
    elif kind == "error":
        show_error(value)
        params = getattr(value, "params", {})
        if getattr(value, "key", "") == "lifecycle.incomplete" and params.get("missing"):
            st.error(t("apply.missing", fields=_field_list(params["missing"].split(", "))), icon=":material/rule:")
