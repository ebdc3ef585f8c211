"""How a report's scope reads: the whole company, or one unit of ``data/org.yaml`` (HQ, a province)
by its name in the reader's language — on the board, in the report builder and in notices."""

from __future__ import annotations

from core.i18n import normalize_lang, translate
from core.org import load_org

COMPANY = "company"


def scope_name(scope: str, lang: str) -> str:
    """``scope`` (:data:`COMPANY` or a unit id) named in ``lang``; an id the organisation does not
    list (a unit since removed) as it is."""
    if scope == COMPANY:
        return translate("reports.scope.company", lang)
    unit = load_org().units.get(scope)
    if unit is None:
        return scope
    return unit.name_zh if normalize_lang(lang) == "zh-CN" else unit.name_en
