"""Names, not ids: people ("张伟", not "zhang.wei"), projects and departments in the page's language.

The services record who acted by id (``created_by``, ``decided_by``, ``actor`` of an audit event,
``owner`` of a warning …). The pages show the person's name: a demo persona's
(``data/personas.yaml`` through :func:`core.identity.load_personas`), the signed-in person's own,
or the name a person had when they last signed in (:mod:`core.people`, the people the portal has
seen); "系统" / "System" for the portal's automatic actions (``system``, ``system:<job>``). Anyone
the portal has never seen is shown by the id the services hold, which for OIDC users is their
e-mail address.
"""

from __future__ import annotations

from functools import lru_cache

import streamlit as st

from core import config
from core.identity import load_personas
from core.people import names as people_names
from core.org import load_org
from ui.context import ctx
from ui.i18n import current_lang, t


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for p in load_personas():
        names[p.id] = p.name
        if p.email:
            names[p.email] = p.name
    return names


def person(user_id: str | None) -> str:
    """The name of ``user_id`` (see the module's docstring); "-" when there is none."""
    if not user_id:
        return "-"
    if user_id == "system" or user_id.startswith("system:"):
        return t("uitext.system")
    me = st.session_state.get("identity")
    if me is not None and user_id in (me.id, me.email) and me.name:
        return me.name
    return _names().get(user_id) or _seen(config.load().database_url).get(user_id, user_id)


@st.cache_data(ttl=60, show_spinner=False)
def _seen(url: str) -> dict[str, str]:
    """The names of the people the portal has seen (:func:`core.people.names`), per database."""
    return people_names(ctx().sessions)


def people(user_ids) -> str:  # noqa: ANN001 - any iterable of ids
    """Several people's names, joined as the language joins a list."""
    return t("uitext.list_separator").join(person(u) for u in user_ids)


def project_name(project_id: str | None) -> str:
    """A project's name in the page's language; its id when the organisation does not list it."""
    project = load_org().projects.get(project_id or "")
    if project is None:
        return project_id or "-"
    return project.name_zh if current_lang() == "zh-CN" else project.name_en


def department_name(department_id: str | None) -> str:
    """A department's name in the page's language; its id when the organisation does not list it."""
    dept = load_org().departments.get(department_id or "")
    if dept is None:
        return department_id or "-"
    return dept.name_zh if current_lang() == "zh-CN" else dept.name_en


# Kubernetes object kinds the portal creates and deletes, in words (uitext.k8s_kind.<Kind>).
K8S_KINDS = frozenset({"Namespace", "Pod", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim",
                       "Role", "RoleBinding", "ServiceAccount", "Deployment", "HorizontalPodAutoscaler", "ScaledObject",
                       # the batch scheduler's objects (core/cluster/scheduler_queues.py): Kueue, Volcano
                       "LocalQueue", "ClusterQueue", "ResourceFlavor", "WorkloadPriorityClass", "Queue",
                       "PriorityClass"})


def k8s_kind(kind: str | None) -> str:
    """A Kubernetes object kind in words; one the portal does not create, as Kubernetes names it."""
    if not kind:
        return "-"
    return t(f"uitext.k8s_kind.{kind}") if kind in K8S_KINDS else kind
