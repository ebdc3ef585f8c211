"""How the board shows a figure at a glance: whole GPUs, money rounded to a unit people read
(万元 in zh-CN; thousands, millions or billions of CNY in en), percentages, hours, and signed
changes for the tiles' deltas.

The tables and exports keep their exact cells (:func:`core.reports.tables.fmt`); these are for the
headline tiles and the ranked lists, where "824.04" GPUs or "9,201,142.50" yuan slow the reader
down. Units come from the catalogs (domain ``board``); ``None`` is "—" everywhere.

Signed changes start with an ASCII ``+`` or ``-``: Streamlit's ``st.metric`` points its arrow
down (and colours the delta) only when the delta text starts with ``-``. A change that rounds to
zero is :data:`ZERO` ("±0"), shown grey without an arrow.
"""

from __future__ import annotations

from typing import Any

from core.i18n import translate

DASH = "—"
ZERO = "±0"

# en money ladder: (from this many CNY, divide by, catalog key). Below the first: whole yuan.
_EN_MONEY = ((1e9, 1e9, "board.money.billion"), (1e6, 1e6, "board.money.million"), (1e3, 1e3, "board.money.thousand"))
_WAN = 1e4  # 万


def _num(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    return float(value)


def gpus(value: Any) -> str:
    """A number of GPUs, whole: ``824.04`` → ``"824"``, ``1008`` → ``"1,008"``."""
    v = _num(value)
    return DASH if v is None else f"{round(v):,}"


def count(value: Any) -> str:
    """A whole count with thousands separators (GPU-hours, incidents, days)."""
    return gpus(value)


def pct(value: Any) -> str:
    """A ratio 0–1 as a percentage with one decimal: ``0.5934`` → ``"59.3%"``."""
    v = _num(value)
    return DASH if v is None else f"{v * 100:.1f}%"


def hours(value: Any, lang: str) -> str:
    """Hours with one decimal and their unit: ``12.345`` → ``"12.3 小时"`` / ``"12.3 h"``."""
    v = _num(value)
    return DASH if v is None else translate("board.unit.hours", lang, value=f"{v:,.1f}")


def money(value: Any, lang: str) -> str:
    """An amount of CNY, rounded to one decimal of a unit people read.

    zh-CN: always 万元 (``9201142.5`` → ``"920.1 万元"``), the unit of Chinese budgets and reports.
    en: CNY in thousands, millions or billions by size (``"CNY 9.2M"``), whole yuan below 1,000.
    """
    v = _num(value)
    if v is None:
        return DASH
    if lang == "zh-CN":
        return translate("board.money.wan", lang, value=f"{v / _WAN:,.1f}")
    for start, unit, key in _EN_MONEY:
        if abs(v) >= start:
            return translate(key, lang, value=f"{v / unit:,.1f}")
    return translate("board.money.yuan", lang, value=f"{v:,.0f}")


def price(value: Any, lang: str) -> str:
    """A unit price in CNY to the fen (two decimals): ``26.134`` → ``"26.13 元"`` / ``"CNY 26.13"``."""
    v = _num(value)
    return DASH if v is None else translate("board.money.yuan", lang, value=f"{v:,.2f}")


def days(value: Any, lang: str) -> str:
    """A number of days: ``"12 天"`` / ``"12 days"``."""
    v = _num(value)
    return DASH if v is None else translate("board.unit.days", lang, value=f"{round(v):,}")


def gpu_hours(value: Any, lang: str) -> str:
    """Whole GPU-hours with their unit: ``"5,757 卡时"`` / ``"5,757 GPU-h"``."""
    v = _num(value)
    return DASH if v is None else translate("board.unit.gpu_hours", lang, value=f"{round(v):,}")


_BY_KIND = {"gpus": lambda v, lang: gpus(v), "count": lambda v, lang: count(v), "pct": lambda v, lang: pct(v),
            "hours": hours, "money": money, "price": price, "days": days, "gpu_hours": gpu_hours}
KINDS = tuple(_BY_KIND)


def shown(kind: str, value: Any, lang: str) -> str:
    """``value`` shown as a figure of ``kind`` (one of :data:`KINDS`: gpus, count, pct, hours,
    money, price, days, gpu_hours)."""
    return _BY_KIND[kind](value, lang)


def signed(value: float, digits: int = 0) -> str:
    """A change with its sign (ASCII ``+``/``-``) and ``digits`` decimals; :data:`ZERO` when it
    rounds to zero."""
    text = f"{abs(value):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return ZERO
    return ("-" if value < 0 else "+") + text


def signed_gpus(delta: float) -> str:
    """A change in GPUs, whole: ``-11.6`` → ``"-12"``."""
    return signed(delta, 0)


def signed_points(delta: float, lang: str) -> str:
    """A change of a ratio in percentage points: ``0.012`` → ``"+1.2 个百分点"`` / ``"+1.2 pp"``."""
    text = signed(delta * 100, 1)
    return text if text == ZERO else translate("board.unit.points", lang, value=text)


def signed_pct(change: float) -> str:
    """A relative change (``0.034`` = +3.4 %) as ``"+3.4%"``."""
    text = signed(change * 100, 1)
    return text if text == ZERO else f"{text}%"
