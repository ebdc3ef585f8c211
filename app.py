"""ComputeLoop — the compute service portal (算力服务门户).

Navigation by role, the shared sidebar (language, identity) and the demo banner. Every page
is a file in app_pages/ listed in ui/navigation.py.
"""

import streamlit as st

from core import config
from core.i18n import LANGS
from ui.i18n import current_lang, language_switch, t
from ui.identity import current_identity, sidebar_identity
from ui.navigation import sections_for

st.set_page_config(page_title="ComputeLoop", page_icon=":material/memory:", layout="wide")

if st.query_params.get("lang") in LANGS and st.session_state.get("_lang_from_url") != st.query_params["lang"]:
    st.session_state["lang"] = st.session_state["_lang_from_url"] = st.query_params["lang"]
current_lang()

identity = current_identity()
st.session_state["identity"] = identity

st.sidebar.title(t("app.title"))
language_switch()
sidebar_identity(identity)

if identity is None:
    st.info(t("app.sign_in_required"))
    st.stop()

if config.load().auth_mode == "demo":
    st.warning(t("app.demo_banner"), icon=":material/science:")

sections = {
    t(section_key): [
        st.Page(spec.script, title=t(spec.title_key), icon=spec.icon, url_path=spec.url_path, default=(spec.key == "home"))
        for spec in specs
    ]
    for section_key, specs in sections_for(identity.role)
}
st.navigation(sections).run()
