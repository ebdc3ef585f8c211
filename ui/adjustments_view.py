"""Views of the adjustment record page (调整记录): filters and the table."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

from core.adjust import services as adjust
from core.adjust.persistence import KINDS
from core.adjust.persistence import pool_of
from core.adjust.recorder import reason_parts
from core.clock import utc_today
from core.org import load_org
from ui.builtin_text import DATE_FORMAT, choose
from ui.context import ctx, me
from ui.i18n import t
from ui.names import person
from ui.times import when

ALL = "all"
SHOWN = 500  # the table shows the newest this many matching records


def filters() -> dict:
    """Kind, pool, actor, date range and automatic (system) / manual; the keyword arguments of :func:`records`."""
    kinds = {ALL: t("adjust.all")} | {k: t(f"adjust.kind.{k}") for k in KINDS}
    pools = {ALL: t("adjust.all")} | {p: p for p in sorted(load_org().pools)}
    modes = {ALL: t("adjust.all"), "auto": t("adjust.automatic"), "manual": t("adjust.manual")}
    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1, 1.5])  # the date range needs room for two dates
    kind = c1.selectbox(t("adjust.filter.kind"), list(kinds), format_func=kinds.get,
                        placeholder=choose(), key="adj_kind")
    pool = c2.selectbox(t("records.filter.pool"), list(pools), format_func=pools.get,
                        placeholder=choose(), key="adj_pool")
    mode = c3.selectbox(t("adjust.filter.automatic"), list(modes), format_func=modes.get,
                        placeholder=choose(), key="adj_mode")
    by = c4.text_input(t("adjust.filter.actor"), key="adj_actor", max_chars=120)
    today = utc_today()
    span = c5.date_input(t("adjust.filter.dates"), value=(today - timedelta(days=30), today), format=DATE_FORMAT,
                         key="adj_dates")
    out: dict = {"kind": None if kind == ALL else kind, "pool": None if pool == ALL else pool,
                 "by": by.strip() or None, "automatic": None if mode == ALL else mode == "auto"}
    if isinstance(span, (tuple, list)) and len(span) == 2:
        out["since"] = datetime.combine(span[0], time(0), tzinfo=timezone.utc)
        out["until"] = datetime.combine(span[1] + timedelta(days=1), time(0), tzinfo=timezone.utc)
    return out


def records(chosen: dict) -> list[dict]:
    """The records matching the filters, newest first."""
    return adjust.list_adjustments(sessions=ctx().sessions, actor=me(), limit=SHOWN, **chosen)


# The fields of an adjustment's before/after state shown in the table, in words (uitext.field.<name>):
# queue places, pool fragmentation, autoscaling policies and events, preemptions. Lists (moves,
# conditions, who overtook whom) and fields not listed stay in the record (and its audit event).
STATE_FIELDS = ("status", "pool", "position", "pool_position", "priority", "effective_priority", "allocation", "gpus",
                "requeued", "emergency_request", "free", "whole_free_nodes", "largest_block", "replicas",
                "current_replicas", "min_replicas", "max_replicas", "gpus_per_replica", "util_high", "util_low",
                "mem_high", "sustain_s", "scale_up_window_s", "scale_down_window_s")
SUBJECT_KINDS = ("request", "pool", "deployment", "statefulset")


def _field_value(name: str, value) -> str:  # noqa: ANN001 - a JSON value
    if isinstance(value, bool):
        return t("uitext.yes") if value else t("uitext.no")
    if name in ("util_high", "util_low", "mem_high") and isinstance(value, (int, float)):
        return f"{value:.0%}"
    if name == "priority" and isinstance(value, str):
        return t(f"priority.{value}")
    if name == "status" and isinstance(value, str):
        return t(f"status.{value}")
    return str(value)


def _short(value: dict | None) -> str:
    """A before/after state in words: "位置：3；卡数：8"."""
    parts = [t("uitext.field", name=t(f"uitext.field.{k}"), value=_field_value(k, value[k]))
             for k in STATE_FIELDS if value and value.get(k) is not None]
    return t("uitext.field_separator").join(parts) or "-"


def subject(text: str) -> str:
    """What an adjustment is about, in words: "申请单 #12", "资源池 hq-ft", "工作负载 ns/name"."""
    kind, sep, rest = (text or "").partition(":")
    return t(f"uitext.subject.{kind}", id=rest) if sep and kind in SUBJECT_KINDS else (text or "-")


def reason(text: str | None) -> str:
    """A person's reason as written; a system reason (codes and detail) in the reader's language."""
    parts = reason_parts(text)
    if parts is None:
        return text or ""
    codes, detail = parts
    shown = "; ".join(t(f"records.reason.{c}") for c in codes)
    return f"{shown} — {detail}" if detail else shown


def table(rows: list[dict]) -> None:
    """Time, who, kind, pool, subject, reason, before, after."""
    if not rows:
        st.info(t("adjust.empty"), icon=":material/history:")
        return
    st.dataframe(pd.DataFrame([{
        t("adjust.col.at"): when(r["at"]), t("adjust.col.actor"): person(r["actor"]),
        t("adjust.col.kind"): t(f"adjust.kind.{r['kind']}"),
        t("adjust.col.automatic"): t("adjust.automatic") if r["automatic"] else t("adjust.manual"),
        t("records.col.pool"): pool_of(r) or "-",
        t("adjust.col.subject"): subject(r["subject"]), t("adjust.col.reason"): reason(r["reason"]),
        t("adjust.col.before"): _short(r["before"]), t("adjust.col.after"): _short(r["after"]),
    } for r in rows]), hide_index=True, width="stretch")
