"""Text people typed, made safe for where it goes: a spreadsheet or CSV cell, a Markdown page, a
length limit.

* **Spreadsheet cells** (OWASP "CSV injection"): a cell whose text starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return may be run as a formula by Excel or LibreOffice.
  :func:`formula_risk` is the one decision; :func:`csv_value` writes such a cell with a leading
  ``'`` and :func:`xlsx_append` as a string cell with the quotePrefix style (the text as typed,
  never an ``<f>`` formula element). Numbers stay numbers: an int or float is never touched, and
  neither is a string that is a plain decimal number (``-0.05`` is a number to Excel, not a
  formula). Every spreadsheet and CSV writer in ``core`` goes through these.
* **Markdown** (Streamlit's ``st.markdown``, ``st.info``, ``st.caption``, headings, labels):
  :func:`plain` escapes text so that links, images, headings, lists, emphasis, HTML, tables,
  maths, bare URLs and Streamlit's own ``:color[…]``, ``:material/…:`` and emoji shortcodes do
  not render (checked in Chromium against Streamlit's frontend).
* **Length limits** (data/input_limits.yaml): :func:`check_length` refuses free text longer than
  its limit with an :class:`InputError` naming the field.
"""

from __future__ import annotations

import re
import string
from typing import Any, Iterable

from core.datafiles import load_yaml
from core.errors import InputError

# --------------------------------------------------------------------------- spreadsheet cells

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Characters XML 1.0 cannot carry (openpyxl refuses them): shown as U+FFFD instead of failing the export.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def formula_risk(value: Any) -> bool:
    """True when ``value`` is text a spreadsheet could take for a formula (see the module docstring)."""
    return isinstance(value, str) and value.startswith(FORMULA_LEADS) and not _NUMBER.fullmatch(value)


def csv_value(value: Any) -> Any:
    """A CSV cell: ``None`` → ``""``; formula-like text prefixed with ``'``; anything else as is."""
    if value is None:
        return ""
    return "'" + value if formula_risk(value) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """:func:`csv_value` of each cell of a row."""
    return [csv_value(v) for v in values]


def xlsx_append(ws: Any, values: Iterable[Any]) -> list[Any]:
    """Append one row to an openpyxl worksheet: every string as a string cell (never a formula),
    formula-like ones marked quotePrefix; numbers, booleans and dates as themselves. Returns the
    row's cells."""
    values = [_XML_ILLEGAL.sub("\ufffd", v) if isinstance(v, str) else v for v in values]
    ws.append(values)
    cells = [ws.cell(row=ws.max_row, column=col) for col in range(1, len(values) + 1)]
    for cell, value in zip(cells, values):
        if isinstance(value, str):
            cell.data_type = "s"          # openpyxl makes any "=…" string a formula: undo that
            if formula_risk(value):
                cell.quotePrefix = True   # Excel keeps it text even when the cell is edited
    return cells


# --------------------------------------------------------------------------- Markdown

_PUNCTUATION = frozenset(string.punctuation)          # CommonMark: any ASCII punctuation may be escaped
# Patterns Streamlit's frontend turns into links or icons in the text it has already parsed, where
# backslash escapes are gone: GFM autolink literals (http://…, www.…, a@b.c) and shortcodes
# (:material_x:, :smile:, :streamlit:). A zero-width space after the matched character breaks each.
_BREAK_AFTER = re.compile(r":(?=//)|(?i:www)(?=\.)|@|:(?=[A-Za-z0-9_+\-]+:)")
_ZWSP = "\u200b"


def _plain_line(line: str) -> str:
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)].replace("\t", "    ")
    breaks = {m.end() - 1 for m in _BREAK_AFTER.finditer(body)}
    out = []
    for i, ch in enumerate(body):
        out.append("\\" + ch if ch in _PUNCTUATION else ch)
        if i in breaks:
            out.append(_ZWSP)
    # leading spaces as no-break spaces: never an indented code block
    return "\u00a0" * len(indent) + "".join(out)


def plain(text: Any) -> str:
    """``text`` escaped for Streamlit Markdown so that it shows as typed: every ASCII punctuation
    character backslash-escaped (no link, image, heading, list, emphasis, code, table, HTML, maths
    or ``:color[…]`` directive can start), bare URLs, e-mail addresses and icon/emoji shortcodes
    broken with a zero-width space (Streamlit would link or replace them after parsing), line
    breaks kept as hard breaks. ``None`` is ``""``."""
    if text is None:
        return ""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "  \n".join(_plain_line(line) for line in lines)


# --------------------------------------------------------------------------- length limits

LIMIT_KINDS = ("reason", "reply", "note", "background")


def input_limits() -> dict[str, int]:
    """data/input_limits.yaml: kind (reason, reply, note, background) → the most characters allowed."""
    raw = load_yaml("input_limits.yaml") or {}
    out = {}
    for kind in LIMIT_KINDS:
        value = raw.get(f"max_{kind}_chars")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError("error.data_file_invalid", field="data/input_limits.yaml", line=0,
                             detail=f"max_{kind}_chars must be a whole number ≥ 1")
        out[kind] = value
    return out


def check_length(text: Any, *, field: str, kind: str) -> Any:
    """``text`` unchanged when it is at most the ``kind`` limit long (None and non-text pass);
    otherwise :class:`InputError` (``input.too_long``) naming ``field``."""
    limit = input_limits()[kind]
    if isinstance(text, str) and len(text) > limit:
        raise InputError("input.too_long", field=field, length=len(text), limit=limit)
    return text
