"""Keys of the widgets of a step form, one set per subject.

A form that moves a subject one step (a reclaim candidate, a warning) must start from its defaults —
the move forward, an empty note — for another subject and for the same subject one step further.
Keeping one key and dropping its value in a callback is not enough: Streamlit's frontend keeps
showing a selectbox's last choice when the server forgets it, and a choice valid for both subjects
("dismissed") is kept outright. A widget under a new key starts from its defaults in the browser too.
"""

from __future__ import annotations


def step_keys(prefix: str, *subject: object, names: tuple[str, ...]) -> dict[str, str]:
    """``{name: key}`` for the step form's widgets ``names``, unique to ``subject`` (e.g. the
    candidate's id and status)."""
    tail = "_".join(str(part) for part in subject)
    return {name: f"{prefix}_{name}_{tail}" for name in names}
