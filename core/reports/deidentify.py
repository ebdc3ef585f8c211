"""De-identification (脱敏) of a report before it is published beyond ops: people's names masked,
projects shown by their code."""

from __future__ import annotations

import copy
import re
from typing import Any

_CJK = re.compile(r"[\u3400-\u9fff]")


def mask_name(name: str | None) -> str | None:
    """张伟 → 张*, 欧阳娜娜 → 欧***, zhang.wei → z*** (None and "" unchanged)."""
    if not name:
        return name
    name = name.strip()
    if _CJK.search(name):
        return name[0] + "*" * max(1, len(name) - 1)
    return name[0].lower() + "***"


def deidentify(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``report`` with owners masked and project names replaced by project codes."""
    out = copy.deepcopy(report)
    for e in out.get("entities", []):
        e["owner"] = mask_name(e.get("owner"))
        if e.get("kind") == "project":
            e["name_zh"] = e["name_en"] = e["id"]
    for job in ((out.get("economics") or {}).get("training_jobs") or {}).get("jobs", []):
        job["owner"] = mask_name(job.get("owner"))
        job["name_zh"] = job["name_en"] = job.get("project")
    for section in ("warnings", "reclaims"):
        for item in (out.get(section) or {}).get("items", []):
            for key in ("owner", "owner_name", "actor", "contact"):
                if isinstance(item.get(key), str):
                    item[key] = mask_name(item[key])
    out["deidentified"] = True
    return out
