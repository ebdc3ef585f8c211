"""The current identity: demo personas with a switcher, or OIDC sign-in through st.login."""

from __future__ import annotations

import streamlit as st

from core import config
from core.identity import Identity, identity_from_claims, load_personas
from core.org import load_org
from core.people import remember
from ui.context import ctx
from ui.i18n import current_lang, t
from ui.names import department_name


def current_identity() -> Identity | None:
    """The acting identity, or None when nobody may act: sign-in mode unset or unknown, or OIDC
    without a signed-in user (or one whose claims carry no stable id)."""
    cfg = config.load()
    if not cfg.auth_valid:
        return None
    if cfg.auth_mode == "oidc":
        # st.user has no is_logged_in until an [auth] section exists in secrets.toml.
        if not getattr(st.user, "is_logged_in", False):
            return None
        identity = identity_from_claims(st.user.to_dict())
        if identity is None:
            st.session_state["_sign_in_refusal"] = "access.no_stable_id"
        elif st.session_state.get("_remembered") != identity:
            # once per session: others' pages then show this person's name, not their id
            remember(ctx().sessions, identity)
            st.session_state["_remembered"] = identity
        return identity
    personas = load_personas()
    by_id = {p.id: p for p in personas}
    wanted = st.query_params.get("persona")
    if "persona" not in st.session_state or (wanted in by_id and wanted != st.session_state.get("_persona_from_url")):
        st.session_state["persona"] = wanted if wanted in by_id else personas[0].id
    # The persona rides in the URL, so a reload, a bookmark or a page change keeps who is acting.
    persona = by_id.get(st.session_state["persona"], personas[0])
    st.query_params["persona"] = st.session_state["_persona_from_url"] = persona.id
    return persona


def oidc_configured() -> bool:
    """True when .streamlit/secrets.toml has the [auth] section st.login needs."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def _persona_chosen(key: str) -> None:
    st.session_state["persona"] = st.session_state[key]


def switcher_key() -> str:
    """The persona switcher's widget key, one per language: its labels are in the UI language, and a
    widget whose labels change under the same key is left stale by the browser (it kept showing the
    old language and reported a stale choice on the next page change, resetting the persona)."""
    return f"_persona_choice_{current_lang()}"


def role_label(identity: Identity) -> str:
    """The role in words, with the provincial ops level (L1/L2) when there is one."""
    role = t(f"role.{identity.role}")
    return t("persona.level", role=role, level=identity.level) if identity.level else role


def sidebar_identity(identity: Identity | None) -> None:
    """Sidebar block: who is acting, the persona switcher in demo mode, sign-in/out with OIDC."""
    cfg = config.load()
    if not cfg.auth_valid:
        return
    if cfg.auth_mode == "oidc":
        if identity is None and not oidc_configured():
            st.sidebar.error(t("sidebar.oidc_not_configured"))
        elif identity is None:
            st.sidebar.button(t("sidebar.sign_in"), on_click=st.login)
        else:
            st.sidebar.caption(t("sidebar.signed_in_as", name=identity.name, role=role_label(identity)))
            st.sidebar.button(t("sidebar.sign_out"), on_click=st.logout)
        return
    # Labels are computed now: a format_func runs outside the script too (e.g. in AppTest).
    labels = {p.id: f"{p.name} · {role_label(p)}" for p in load_personas()}
    ids = list(labels)
    current = st.session_state.get("persona", ids[0])
    # The choice lives under a plain key; a widget's own key is dropped when the page changes.
    st.sidebar.selectbox(t("sidebar.persona"), ids, index=ids.index(current) if current in ids else 0,
                         key=switcher_key(), format_func=labels.get, on_change=_persona_chosen, args=(switcher_key(),))
    if identity is not None:
        st.sidebar.caption(t("sidebar.department", department=department_name(load_org().department_id(identity.department))))
