"""What the report's figures mean, said in the report itself (pages, HTML/PDF): the water level's
definition. Reports built before a definition existed (older schemas) get no note for it."""

from __future__ import annotations

from typing import Any

from core.i18n import translate
from core.reports.tables import fmt


def definition_notes(report: dict[str, Any], lang: str) -> list[str]:
    """The definitions a reader needs to read the numbers, in ``lang``."""
    out = []
    water = report["water_level"]
    if water.get("definition_key"):
        out.append(translate(water["definition_key"], lang, hours=fmt(water["hours_in_month"], "int"),
                             as_of=water["portal_granted_as_of"], granted=fmt(water["portal_granted"], "int")))
        if water.get("unattributed_allocated"):
            out.append(translate("reportfix.water_unattributed", lang, gpus=fmt(water["unattributed_allocated"], "num")))
    return out
