"""What the report's figures mean, said in the report itself (pages, HTML/PDF): the water level's
definition, what counts as an incident, how trend changes are compared. Reports built before a definition existed (older
schemas) get no note for it."""

from __future__ import annotations

from typing import Any

from core.i18n import translate
from core.reports.build import shift_month
from core.reports.tables import fmt


def definition_notes(report: dict[str, Any], lang: str) -> list[str]:
    """The definitions a reader needs to read the numbers, in ``lang``."""
    out = []
    water = report["water_level"]
    if water.get("definition_key"):
        out.append(translate(water["definition_key"], lang, hours=fmt(water["hours_in_month"], "int"),
                             as_of=water["portal_granted_as_of"], granted=fmt(water["portal_granted"], "int")))
        if water.get("unattributed_allocated"):  # schema 3 and before
            out.append(translate("reportfix.water_unattributed", lang, gpus=fmt(water["unattributed_allocated"], "num")))
        if water.get("unattributed_in_use"):  # schema 4: busy GPUs on nodes of no known pool
            out.append(translate("capacity.water_unattributed_in_use", lang, gpus=fmt(water["unattributed_in_use"], "num")))
    incidents = report["health"]["incidents"]
    if incidents.get("definition_key"):
        out.append(translate(incidents["definition_key"], lang, count=incidents["count"], requests=incidents["requests"]))
    elif incidents.get("available") is False:
        out.append(translate("reportfix.incidents_not_available", lang))
    return out


def trend_notes(report: dict[str, Any], lang: str) -> list[str]:
    """How the changes against earlier months are computed, and which comparison lacks data."""
    comp = report["trends"].get("comparison")
    if not comp:
        return []
    out = [translate("reportfix.trend_basis", lang, min=fmt(comp["min_coverage"], "pct"))]
    months = {"previous_month": shift_month(report["month"], -1), "last_year": report["trends"]["last_year_month"]}
    for key in ("previous_month", "last_year"):
        c = comp[key]
        if c["status"] == "insufficient_data":
            out.append(translate("reportfix.trend_insufficient", lang, month=months[key],
                                 base=fmt(c["base_coverage"], "pct"), now=fmt(c["coverage"], "pct"),
                                 min=fmt(c["min_coverage"], "pct")))
    return out
