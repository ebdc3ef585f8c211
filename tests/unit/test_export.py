"""Exports: the JSON keeps Chinese readable; the Excel workbook has one sheet per table, values intact."""

import io
import json

from openpyxl import load_workbook

from core.estimation.export import to_excel_bytes, to_json_bytes
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training


def test_json_export_round_trips_and_keeps_chinese():
    doc = {"title": "语义大模型预训练", "gpu_hours": 1234.5}
    raw = to_json_bytes(doc)
    assert "语义大模型预训练".encode() in raw
    assert json.loads(raw) == doc


def test_excel_export_has_a_sheet_per_table_with_the_numbers():
    est = estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100", gpus=8, efficiency=0.4))
    out = est.as_dict("zh-CN")
    data = to_excel_bytes({
        "summary": {"gpu_hours": out["gpu_hours"], "cost": out["cost"]},
        "assumptions": [{"assumption": a} for a in out["assumptions"]],
    })
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["summary", "assumptions"]
    rows = {r[0]: r[1] for r in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert abs(rows["gpu_hours"] - out["gpu_hours"]) < 1e-9 * out["gpu_hours"]  # Excel keeps 15 digits
    assert book["assumptions"].max_row == len(out["assumptions"]) + 1
    assert any("效率" in (c.value or "") for c in book["assumptions"]["A"])
