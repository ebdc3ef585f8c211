"""Exporting an estimate: a JSON document and an Excel workbook (one sheet per table).

The workbook is written cell by cell through :func:`core.text.xlsx_append`: text (a model name,
a title someone typed) is a string cell, never a formula; numbers stay numbers.
"""

from __future__ import annotations

import io
import json
import math
import numbers
from datetime import date, time
from decimal import Decimal
from typing import Any, Mapping, Sequence

from core.text import xlsx_append


def to_json_bytes(document: Mapping[str, Any]) -> bytes:
    """The estimate as UTF-8 JSON (Chinese kept readable)."""
    return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")


def to_excel_bytes(sheets: Mapping[str, Sequence[Mapping[str, Any]] | Mapping[str, Any]]) -> bytes:
    """An .xlsx workbook: each entry a sheet; a list of rows becomes a table (a header row of the
    keys in the order they first appear, then one row per entry), a mapping two columns
    ``item``/``value``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, content in sheets.items():
        ws = wb.create_sheet(title=name[:31])
        if isinstance(content, Mapping):
            header: list[str] = ["item", "value"]
            rows = [[k, _cell(v)] for k, v in content.items()]
        else:
            header = list(dict.fromkeys(k for row in content for k in row))
            rows = [[_cell(row.get(k)) for k in header] for row in content]
        if not header:
            continue
        for cell in xlsx_append(ws, header):
            cell.font = Font(bold=True)
        for row in rows:
            xlsx_append(ws, row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A value openpyxl can write: containers as JSON, NaN blank and ±inf as text (as pandas wrote
    them), numpy numbers as Python numbers, anything else that is not text, a boolean or a date as
    its text."""
    if value is None or isinstance(value, (str, bool, Decimal, date, time)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return number if math.isfinite(number) else ("inf" if number > 0 else "-inf")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
