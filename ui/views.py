"""View models: core data turned into the tables and figures the pages show, with translated
headers. Reads are cached (``st.cache_data``) where they touch files or the database."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from core import config, redact
from core.db.migrate import current_revision, head_revision
from core.estimation.catalog import load_catalog
from ui.context import ctx
from ui.i18n import t
from ui.sources import as_code


def catalog_table() -> pd.DataFrame:
    """The hardware catalog as a table; unpublished figures carry a † mark."""
    rows = []
    for g in load_catalog().gpus:
        def mark(field: str, value):  # noqa: ANN001 - cell value of any type
            return "-" if value is None else (f"{value} †" if field in g.unpublished else f"{value}")

        rows.append({
            t("catalog.col.id"): g.id,
            t("catalog.col.vendor"): g.vendor,
            t("catalog.col.family"): g.family,
            t("catalog.col.bf16"): mark("bf16_tflops", g.bf16_tflops),
            t("catalog.col.fp16"): mark("fp16_tflops", g.fp16_tflops),
            t("catalog.col.fp8"): mark("fp8_tflops", g.fp8_tflops),
            t("catalog.col.memory"): mark("memory_gb", g.memory_gb),
            t("catalog.col.bandwidth"): mark("memory_bandwidth_gbps", g.memory_bandwidth_gbps),
            t("catalog.col.interconnect"): f"{g.interconnect} · {mark('interconnect_gbps', g.interconnect_gbps)}",
            t("catalog.col.tdp"): mark("tdp_w", g.tdp_w),
            t("catalog.col.price"): f"{g.price_cny_per_gpu_hour:.2f}" + (" *" if g.price_is_placeholder else ""),
            t("catalog.col.aliases"): ", ".join(g.aliases),
            t("catalog.col.source"): g.source,
        })
    return pd.DataFrame(rows)


def settings_table() -> pd.DataFrame:
    """Every setting: its variable, the value in force (secrets masked) and what it does."""
    return pd.DataFrame([
        {t("settings.col.env"): s.env, t("settings.col.value"): redact.setting(s.env, os.environ.get(s.env, s.default)),
         t("settings.col.help"): t(f"setting.{s.env}")}
        for s in config.SETTINGS
    ])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_markdown() -> str:
    """The settings as a Markdown table: what each does (in words, its file names set as code),
    its variable and the value in force (secrets masked), both set as code — the names an
    administrator types, not words of the page."""
    head = f"| {t('settings.col.help')} | {t('settings.col.env')} | {t('settings.col.value')} |\n|---|---|---|\n"
    rows = []
    for s in config.SETTINGS:
        value = redact.setting(s.env, os.environ.get(s.env, s.default))
        rows.append(f"| {_cell(as_code(t(f'setting.{s.env}')))} | `{s.env}` | "
                    f"{f'`{_cell(value)}`' if value else '-'} |")
    return head + "\n".join(rows)


@st.cache_data(ttl=30, show_spinner=False)
def _revisions(url: str) -> dict:
    engine = ctx().engine
    return {"current": current_revision(engine), "head": head_revision()}


def database_status() -> dict:
    """Schema revision in force and the newest available."""
    return _revisions(config.load().database_url)
