"""The demand intake form (算力需求受理单) plus the application part (pool, GPUs, window).

Every field of the seed's form (chapter 4, 需求受理) is here. A form may be saved incomplete as a
draft; :func:`core.lifecycle.rules.missing_fields` says what a submission still lacks.
``from_dict`` converts and checks types, naming the field of any bad value; empty values are
``None`` (not answered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from core.clock import utc_today
from core.errors import InputError
from core.text import check_length

DEMAND_TYPES: dict[str, tuple[str, ...]] = {
    "training": ("l1_foundation", "l2_finetune", "research"),
    "inference": ("online", "offline_batch"),
}
DATA_TYPES = ("text", "image", "speech", "video", "multimodal", "tabular", "timeseries", "other")
RUN_PERIODS = ("day", "week", "month", "quarter", "once")
PRIORITIES = ("low", "normal", "high", "critical")
HIGH_PRIORITIES = frozenset({"high", "critical"})
MAX_GPUS = 100_000  # GPUs a form may ask for (per run, and in all)

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


@dataclass(frozen=True)
class IntakeForm:
    """One demand intake form and the resources it applies for (all fields optional in a draft)."""

    # basic information (基础信息区)
    applicant: str | None = None
    department: str | None = None  # org department id (data/org.yaml)
    project: str | None = None  # org project id
    contact: str | None = None
    # demand type (需求类型选择区)
    demand_type: str | None = None  # training | inference
    demand_subtype: str | None = None  # l1_foundation | l2_finetune | research | online | offline_batch
    # business background (业务背景描述区)
    business_background: str | None = None
    expected_value: str | None = None
    scenario: str | None = None
    # training: model, data, resources, software
    model_name: str | None = None  # name/type, e.g. BERT, YOLOv5, Qwen-14B
    framework: str | None = None  # PyTorch, TensorFlow, MindSpore...
    parameters: float | None = None  # parameter count (accepts "13B", "7e9")
    data_size_gb: float | None = None
    data_tokens: float | None = None  # training tokens (accepts "100B"), as an estimate sizes the job
    data_type: str | None = None
    gpu_model: str | None = None
    gpus_per_run: int | None = None
    hours_per_run: float | None = None
    runs_per_period: int | None = None
    run_period: str | None = None  # day | week | month | quarter | once
    cuda_version: str | None = None
    python_version: str | None = None
    key_libraries: dict[str, str] = field(default_factory=dict)
    # inference: model, SLA, deployment
    model_location: str | None = None
    input_format: str | None = None
    output_format: str | None = None
    sla_latency_mean_ms: float | None = None
    sla_latency_p99_ms: float | None = None
    qps_peak: float | None = None
    qps_mean: float | None = None
    high_availability: bool | None = None
    canary: bool | None = None
    # the application (资源申请单)
    pool: str | None = None
    requested_gpus: int | None = None
    start_date: date | None = None
    duration_days: int | None = None
    estimate_id: int | None = None
    priority: str = "normal"
    extra_pools: tuple[str, ...] = ()  # further pools a multi-pool training run would span

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "IntakeForm":
        """Build a form from JSON-like values; :class:`InputError` names the first bad field."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InputError("lifecycle.form_not_object", field="form")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise InputError("lifecycle.unknown_field", field=str(key))
            converted = _CONVERT[key](key, value)
            if converted is not None:
                values[key] = converted
        form = cls(**values)
        _check_choices(form)
        return form

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict from which :meth:`from_dict` rebuilds the same form."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @property
    def is_training(self) -> bool:
        """True for a training demand."""
        return self.demand_type == "training"

    @property
    def is_inference(self) -> bool:
        """True for an inference demand."""
        return self.demand_type == "inference"


def answered(value: Any) -> bool:
    """True when a form value counts as filled in (False is an answer; "" and {} are not)."""
    if value is None:
        return False
    if isinstance(value, (str, dict, list, tuple)):
        return len(value) > 0
    return True


def parse_parameters(text: Any) -> float:
    """A parameter count from 7e9, 7000000000, "13B", "350M", "1.8T"; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*", str(text).lower())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _SUFFIX.get(m.group(2), 1.0)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _str(key: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError("lifecycle.bad_value", field=key, value=str(value))
    text = str(value).strip()
    if len(text) > 4000:
        raise InputError("error.out_of_range", field=key, value=len(text), low="1", high="4000")
    return text


def _number(key: str, value: Any, *, integer: bool, high: float) -> float | int | None:
    if _blank(value):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
        raise InputError("lifecycle.bad_value", field=key, value=str(value)) from None
    if not (0 < number <= high):
        raise InputError("error.out_of_range", field=key, value=value, low=">0", high=f"{high:g}")
    if integer:
        if number != int(number):
            raise InputError("lifecycle.whole_number", field=key, value=value)
        return int(number)
    return number


def _int(high: float):
    return lambda key, value: _number(key, value, integer=True, high=high)


def _float(high: float):
    return lambda key, value: _number(key, value, integer=False, high=high)


def _bool(key: str, value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "是"):
        return True
    if text in ("false", "no", "0", "否"):
        return False
    raise InputError("lifecycle.bad_value", field=key, value=str(value))


def _date(key: str, value: Any) -> date | None:
    if _blank(value):
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:  # an ISO timestamp (e.g. from a JSON export) names its day
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise InputError("lifecycle.bad_date", field=key, value=text) from None


def _count(high: float):
    """A count written 7e9, 7000000000, "13B" or "350M" (parameters, tokens), above 0 and at most ``high``."""
    def convert(key: str, value: Any) -> float | None:
        if _blank(value):
            return None
        try:
            number = parse_parameters(value)
        except (ValueError, OverflowError):
            raise InputError("lifecycle.bad_value", field=key, value=str(value)) from None
        if not (0 < number <= high):
            raise InputError("error.out_of_range", field=key, value=value, low=">0", high=f"{high:g}")
        return number
    return convert


def _libraries(key: str, value: Any) -> dict[str, str] | None:
    """Key libraries as {name: version}; accepts a dict, ["torch==2.3", ...] or [{name, version}]."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    out: dict[str, str] = {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = []
        for entry in value:
            if isinstance(entry, dict) and "name" in entry:
                items.append((entry["name"], entry.get("version", "")))
            elif isinstance(entry, str):
                name, _, version = entry.partition("==")
                items.append((name, version))
            else:
                raise InputError("lifecycle.bad_value", field=key, value=str(entry))
    else:
        raise InputError("lifecycle.bad_value", field=key, value=str(value))
    for name, version in items:
        name = str(name).strip()
        if not name:
            raise InputError("lifecycle.bad_value", field=key, value=str(value))
        out[name] = str(version or "").strip()
    return out


def _pools(key: str, value: Any) -> tuple[str, ...] | None:
    if value is None or value == []:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise InputError("lifecycle.bad_value", field=key, value=str(value))
    return tuple(str(v).strip() for v in value if str(v).strip()) or None


_CONVERT: dict[str, Any] = {name: _str for name in (
    "applicant", "department", "project", "contact", "demand_type", "demand_subtype", "business_background",
    "expected_value", "scenario", "model_name", "framework", "data_type", "gpu_model", "run_period",
    "cuda_version", "python_version", "model_location", "input_format", "output_format", "pool", "priority",
)}
_CONVERT.update({
    "business_background": lambda key, value: check_length(_str(key, value), field=key, kind="background"),
    "parameters": _count(1e14),
    "data_size_gb": _float(1e9),
    "data_tokens": _count(1e15),
    "gpus_per_run": _int(MAX_GPUS),
    "hours_per_run": _float(100_000),
    "runs_per_period": _int(10_000),
    "key_libraries": _libraries,
    "sla_latency_mean_ms": _float(1e7),
    "sla_latency_p99_ms": _float(1e7),
    "qps_peak": _float(1e9),
    "qps_mean": _float(1e9),
    "high_availability": _bool,
    "canary": _bool,
    "requested_gpus": _int(MAX_GPUS),
    "start_date": _date,
    "duration_days": _int(3660),
    "estimate_id": _int(1e15),
    "extra_pools": _pools,
})


def _choice(field_name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InputError("error.choice", field=field_name, value=value, choices=", ".join(choices))


def _check_choices(form: IntakeForm) -> None:
    _choice("demand_type", form.demand_type, tuple(DEMAND_TYPES))
    if form.demand_subtype is not None:
        subtypes = DEMAND_TYPES.get(form.demand_type or "", tuple(s for v in DEMAND_TYPES.values() for s in v))
        _choice("demand_subtype", form.demand_subtype, subtypes)
    _choice("data_type", form.data_type, DATA_TYPES)
    _choice("run_period", form.run_period, RUN_PERIODS)
    _choice("priority", form.priority, PRIORITIES)


def consistency_errors(form: IntakeForm, today: date | None = None) -> None:
    """Raise :class:`InputError` when filled-in values contradict each other or the calendar
    (checked at submit): a start date before ``today`` (UTC) would grant a window that is partly
    or wholly over, and the daily job would reclaim it at once."""
    today = today or utc_today()
    if form.start_date and form.start_date < today:
        raise InputError("lifecycle.start_in_past", field="start_date", value=form.start_date.isoformat(),
                         today=today.isoformat())
    if form.sla_latency_mean_ms and form.sla_latency_p99_ms and form.sla_latency_p99_ms < form.sla_latency_mean_ms:
        raise InputError("lifecycle.p99_below_mean", field="sla_latency_p99_ms",
                         p99=form.sla_latency_p99_ms, mean=form.sla_latency_mean_ms)
    if form.qps_peak and form.qps_mean and form.qps_peak < form.qps_mean:
        raise InputError("lifecycle.peak_below_mean", field="qps_peak", peak=form.qps_peak, mean=form.qps_mean)
