"""Technical sources — metric names, settings, files, Kubernetes fields — kept out of the pages'
sentences: ops open them in one "技术来源" / "Technical sources" expander, where every such
name is set as code (``COMPUTELOOP_CLUSTER_BACKEND``, ``container_cpu_usage_seconds_total``,
``data/org.yaml``). Other readers do not see it: the page says in words where figures come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import streamlit as st

from core.identity import OPS_ROLES
from ui.context import me
from ui.i18n import t

# A programmer's name inside a sentence: UPPER_SNAKE settings and metric names, snake_case,
# dotted or slashed paths with a file extension, absolute paths, name=value settings, and
# Kubernetes field paths such as status.hard (lowercase words joined by dots).
_W = "A-Za-z0-9_"  # ASCII word characters: a Chinese character next to a name does not hide it
_TECHNICAL = re.compile(
    rf"(?<![`{_W}/.-])("
    rf"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?:=[{_W}.-]+)?"                     # COMPUTELOOP_CLUSTER_BACKEND=live
    rf"|/?[A-Za-z_.][{_W}.-]*/(?:[{_W}.-]+/)*[{_W}.-]*[{_W}]"          # data/org.yaml, /var/lib/x
    rf"|[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?:\{{[^}}\s]*\}})?"                  # kube_pod_container_resource_requests{...}
    rf"|[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"                          # status.hard, org.yaml
    rf")(?![`{_W}-])"
)


def as_code(text: str) -> str:
    """``text`` (Markdown) with its technical names set as inline code."""
    return _TECHNICAL.sub(lambda m: f"`{m.group(1)}`", text)


def may_see_sources() -> bool:
    """Ops and admins read the technical sources."""
    return me().role in OPS_ROLES


def technical_sources(lines: Iterable[str]) -> None:
    """The expander of technical sources (ops only; nothing when there is nothing to show)."""
    lines = [line for line in lines if line]
    if not lines or not may_see_sources():
        return
    with st.expander(t("uitext.sources"), icon=":material/source:"):
        st.markdown("\n".join(f"- {as_code(line)}" for line in lines))
