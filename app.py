"""ComputeLoop — the compute service portal (算力服务门户).

Sign-in (fails closed), the shared sidebar (who is acting, language, the role's menu), the demo
banner and navigation. Every page is a file in app_pages/ listed in ui/navigation.py.
"""

import streamlit as st

from core import config, logs
from core.i18n import LANGS
from ui.i18n import current_lang, language_switch, t
from ui.identity import current_identity, sidebar_identity
from ui.navigation import landing_page, sections_for, sidebar_menu

st.set_page_config(page_title="ComputeLoop", page_icon=":material/memory:", layout="wide")
logs.configure()  # COMPUTELOOP_LOG_FORMAT: one JSON line per event on stderr (core/logs.py)

if st.query_params.get("lang") in LANGS and st.session_state.get("_lang_from_url") != st.query_params["lang"]:
    st.session_state["lang"] = st.query_params["lang"]
# The language rides in the URL too: a reload or a shared link keeps it.
st.query_params["lang"] = st.session_state["_lang_from_url"] = current_lang()

settings = config.load()
if not settings.auth_valid:
    # Fail closed: no persona switcher, no pages, until the operator says which sign-in to use.
    st.title(t("app.title"))
    st.error(t("app.auth_mode_invalid", variable="COMPUTELOOP_AUTH", value=settings.auth_mode or "-"))
    st.stop()

identity = current_identity()
st.session_state["identity"] = identity

st.sidebar.title(t("app.title"))
sidebar_identity(identity)
language_switch()

if identity is None:
    st.info(t(st.session_state.get("_sign_in_refusal", "app.sign_in_required")))
    st.stop()

if settings.demo:
    st.warning(t("app.demo_banner"), icon=":material/science:")

pages = {
    spec.key: st.Page(spec.script, title=t(spec.title_key), icon=spec.icon, url_path=spec.url_path,
                      default=(spec.key == "home"))
    for _, specs in sections_for(identity.role) for spec in specs
}
current = st.navigation(list(pages.values()), position="hidden")
sidebar_menu(identity.role, pages, st.query_params.to_dict())
# A session's first page: ops start at their approval queue, executives at the board.
if not st.session_state.get("_landed"):
    st.session_state["_landed"] = True
    landing = landing_page(identity.role)
    if current.url_path == pages["home"].url_path and landing in pages and landing != "home":
        st.switch_page(pages[landing])
current.run()
