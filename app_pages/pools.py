"""Water level (资源水位): live capacity figures by cluster / pool / GPU model, the namespaces in use
without an allocation, the GPU heat map and fragments of a pool, the node inventory and the batch
scheduler's queues (refreshed every minute), then the trend from the daily rollups."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.pools_view import (
    fragments, freshness, headline, heat_map, inventory, levels, node_inventory, pick_pool, refresh_seconds,
    scheduler_queues, trend_section, unmanaged, water_level,
)

st.title(t("pools.title"))
st.caption(t("pools.caption"))


@st.fragment(run_every=refresh_seconds())
def live() -> None:
    with guarded():
        nodes = inventory()
        snap = water_level()
        freshness(snap, nodes)
        headline(snap)
        levels(snap)
        unmanaged(snap)
        st.subheader(t("pools.heat_title"))
        pool = pick_pool(snap)
        if pool is None:
            st.info(t("pools.no_heat"), icon=":material/grid_off:")
        else:
            heat_map(snap, pool)
            st.subheader(t("pools.fragments_title"))
            fragments(snap, pool)
        st.subheader(t("inventory.title"))
        node_inventory(nodes, snap)
        scheduler_queues()


live()
st.subheader(t("pools.trend_title"))
with guarded():
    trend_section()
