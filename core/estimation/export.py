"""Exporting an estimate: a JSON document and an Excel workbook (one sheet per table)."""

from __future__ import annotations

import io
import json
from typing import Any, Mapping, Sequence

import pandas as pd


def to_json_bytes(document: Mapping[str, Any]) -> bytes:
    """The estimate as UTF-8 JSON (Chinese kept readable)."""
    return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")


def to_excel_bytes(sheets: Mapping[str, Sequence[Mapping[str, Any]] | Mapping[str, Any]]) -> bytes:
    """An .xlsx workbook: each entry a sheet; a list of rows becomes a table, a mapping two columns."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, content in sheets.items():
            if isinstance(content, Mapping):
                frame = pd.DataFrame({"item": list(content), "value": [_cell(v) for v in content.values()]})
            else:
                frame = pd.DataFrame([{k: _cell(v) for k, v in row.items()} for row in content])
            frame.to_excel(writer, sheet_name=name[:31], index=False)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value
