"""Opening or closing an ``st.expander`` under AppTest, as a person's click in the browser does.

Streamlit 1.67's AppTest has no method for it: an expander with ``on_change`` is a widget whose
state (``bool_value``, open or not) the browser sends with the next run, but AppTest's tree only
collects the states of the elements it models as widgets. This sends the other widgets' states
plus the expander's, so its callback runs exactly as in the browser. It relies on AppTest's
``_tree``/``_runner._run``: a Streamlit upgrade that changes them fails here, loudly.
"""

from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest


def set_expander(at: AppTest, label_part: str, *, open_: bool = True) -> AppTest:
    """Open (or close) the first expander whose label contains ``label_part`` and rerun the app."""
    matches = [e for e in at.expander if label_part in e.label]
    assert matches, f"no expander labelled with {label_part!r}: {[e.label for e in at.expander]}"
    expander = matches[0]
    assert expander.proto.id, f"the expander {expander.label!r} tracks no state (no on_change): nothing to click"
    tree = at._tree  # noqa: SLF001 - see the module docstring
    states = tree.get_widget_states()
    states.widgets.append(WidgetState(id=expander.proto.id, bool_value=open_))
    return tree._runner._run(states)  # noqa: SLF001
