"""The pre-check rules: completeness, compliance, capacity, tier routing (pure functions).

Compliance rules and approval tiers are data (``data/compliance_rules.yaml``,
``data/approval_tiers.yaml``) written in a small declarative condition language — no ``eval``:

* a mapping holds when every key holds (AND); ``{}`` always holds;
* ``<fact>_<op>: value`` with op in ``in, not_in, eq, ne, gt, ge, lt, le``;
* ``all: [cond, ...]``, ``any: [cond, ...]``, ``not: cond``;
* a value ``"$name"`` is the setting ``name`` of the same file.

Unknown facts, operators or settings are refused when the file is loaded, naming the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping

from core.datafiles import load_derived
from core.errors import InputError
from core.i18n import LANGS, Msg, has_key
from core.identity import Identity
from core.lifecycle.forms import HIGH_PRIORITIES, IntakeForm, answered
from core.org import Org, Pool

# --------------------------------------------------------------------------- completeness


@dataclass(frozen=True)
class RequiredFields:
    """The required-field table of ``data/intake_required_fields.yaml``."""

    common: tuple[str, ...]
    by_type: dict[str, tuple[str, ...]]
    optional_by_subtype: dict[str, frozenset[str]]

    def for_form(self, form: IntakeForm) -> tuple[str, ...]:
        """Fields required for the form's demand type and subtype, in form order."""
        names = list(self.common) + list(self.by_type.get(form.demand_type or "", ()))
        optional = self.optional_by_subtype.get(form.demand_subtype or "", frozenset())
        return tuple(n for n in names if n not in optional)


def _build_required(raw: Any) -> RequiredFields:
    from dataclasses import fields as dc_fields

    raw = raw or {}
    known = {f.name for f in dc_fields(IntakeForm)}
    common = tuple(raw.get("common") or ())
    by_type: dict[str, tuple[str, ...]] = {}
    optional: dict[str, frozenset[str]] = {}
    for type_name, spec in (raw.get("demand_types") or {}).items():
        by_type[type_name] = tuple((spec or {}).get("required") or ())
        for sub, sub_spec in ((spec or {}).get("subtypes") or {}).items():
            optional[sub] = frozenset((sub_spec or {}).get("optional") or ())
    for name in [*common, *(n for v in by_type.values() for n in v), *(n for v in optional.values() for n in v)]:
        if name not in known:
            raise InputError("error.data_entry_invalid", field="intake_required_fields.yaml", entry=name)
    return RequiredFields(common, by_type, optional)


def load_required_fields() -> RequiredFields:
    """The required-field table (rebuilt when the file changes)."""
    return load_derived("intake_required_fields.yaml", _build_required)


def missing_fields(form: IntakeForm) -> list[str]:
    """Names of the required fields ``form`` leaves empty, in form order (by demand type)."""
    return [name for name in load_required_fields().for_form(form) if not answered(getattr(form, name))]


# --------------------------------------------------------------------------- facts and conditions

# The facts a condition may test, and their kinds (for checking rules when loading them).
FACTS: dict[str, type] = {
    "gpus": int, "duration_days": int, "gpu_days": int, "pool": str, "pool_kind": str, "pool_is_reserve": bool,
    "pool_level": str, "gpu_model": str, "project_stage": str, "demand_type": str, "demand_subtype": str,
    "has_estimate": bool, "priority": str, "high_priority": bool,
    # GPUs the system approved by itself for the applicant / the department within the auto-approval
    # window, this request included (counted by the service: :func:`auto_approval_facts`)
    "user_auto_gpus": int, "department_auto_gpus": int,
}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "not_in": lambda a, b: a not in b,
    "in": lambda a, b: a in b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}
_NUMERIC_OPS = frozenset({"gt", "ge", "lt", "le"})


def facts(form: IntakeForm, org: Org, *, has_estimate: bool | None = None) -> dict[str, Any]:
    """The facts of a form the rules test (unknown pool or project give None facts)."""
    pool = org.pools.get(form.pool or "")
    project = org.projects.get(form.project or "")
    unit = org.units.get(org.clusters[pool.cluster].unit) if pool else None
    gpus, days = form.requested_gpus, form.duration_days
    return {
        "gpus": gpus, "duration_days": days, "gpu_days": (gpus or 0) * (days or 0),
        "pool": form.pool, "pool_kind": pool.kind if pool else None,
        "pool_is_reserve": pool.is_reserve if pool else False,
        "pool_level": unit.level if unit else None, "gpu_model": pool.gpu if pool else None,
        "project_stage": project.stage if project else None,
        "demand_type": form.demand_type, "demand_subtype": form.demand_subtype,
        "has_estimate": bool(form.estimate_id) if has_estimate is None else has_estimate,
        "priority": form.priority, "high_priority": form.priority in HIGH_PRIORITIES,
    }


@dataclass(frozen=True)
class Condition:
    """A parsed condition: a tree of (kind, payload) nodes evaluated against a facts dict."""

    kind: str  # all | any | not | test
    payload: Any

    def holds(self, f: Mapping[str, Any]) -> bool:
        """True when the condition holds for the facts ``f``."""
        if self.kind == "all":
            return all(c.holds(f) for c in self.payload)
        if self.kind == "any":
            return any(c.holds(f) for c in self.payload)
        if self.kind == "not":
            return not self.payload.holds(f)
        fact, op, value = self.payload
        actual = f.get(fact)
        if op in _NUMERIC_OPS and actual is None:
            return False
        return _OPS[op](actual, value)


def parse_condition(raw: Any, *, settings: Mapping[str, Any], where: str) -> Condition:
    """Parse and check a condition; :class:`InputError` names ``where`` (file and entry) if wrong."""

    def bad(detail: str) -> InputError:
        return InputError("error.data_entry_invalid", field=where.split(":")[0], entry=f"{where}: {detail}")

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            if value[1:] not in settings:
                raise bad(f"unknown setting {value}")
            return settings[value[1:]]
        if isinstance(value, list):
            return tuple(resolve(v) for v in value)
        return value

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad("a condition is a mapping")
    parts: list[Condition] = []
    for key, value in raw.items():
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise bad(f"{key} needs a list of conditions")
            parts.append(Condition(key, tuple(parse_condition(v, settings=settings, where=where) for v in value)))
            continue
        if key == "not":
            parts.append(Condition("not", parse_condition(value, settings=settings, where=where)))
            continue
        op = next((o for o in _OPS if key.endswith("_" + o)), None)
        fact = key[: -len(op) - 1] if op else None
        if op is None or fact not in FACTS:
            raise bad(f"unknown test {key}")
        value = resolve(value)
        if op in ("in", "not_in") and not isinstance(value, tuple):
            raise bad(f"{key} needs a list")
        if op in _NUMERIC_OPS and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise bad(f"{key} needs a number")
        parts.append(Condition("test", (fact, op, value)))
    return Condition("all", tuple(parts))


# --------------------------------------------------------------------------- compliance


@dataclass(frozen=True)
class ComplianceRule:
    """One compliance rule: id, message key, condition, and whether it blocks submission."""

    id: str
    message: str
    condition: Condition
    block: bool = False


@dataclass(frozen=True)
class Flag:
    """A compliance rule that matched a request."""

    id: str
    msg: Msg
    block: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (stored with the request)."""
        return {"id": self.id, "key": self.msg.key, "params": dict(self.msg.params), "block": self.block}


def _build_compliance(raw: Any) -> tuple[ComplianceRule, ...]:
    raw = raw or {}
    settings = raw.get("settings") or {}
    rules = []
    for i, entry in enumerate(raw.get("rules") or []):
        where = f"compliance_rules.yaml:rules[{i}] {entry.get('id', '')}"
        if not entry.get("id") or not entry.get("message"):
            raise InputError("error.data_entry_invalid", field="compliance_rules.yaml", entry=where)
        rules.append(ComplianceRule(entry["id"], entry["message"],
                                    parse_condition(entry.get("condition"), settings=settings, where=where),
                                    bool(entry.get("block", False))))
    return tuple(rules)


def load_compliance_rules() -> tuple[ComplianceRule, ...]:
    """The compliance rules (rebuilt when the file changes)."""
    return load_derived("compliance_rules.yaml", _build_compliance)


def _msg_params(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in f.items()}


def check_compliance(f: Mapping[str, Any], rules: tuple[ComplianceRule, ...] | None = None) -> list[Flag]:
    """The flags of every rule whose condition holds for the facts ``f``."""
    rules = load_compliance_rules() if rules is None else rules
    return [Flag(r.id, Msg(r.message, _msg_params(f)), r.block) for r in rules if r.condition.holds(f)]


# --------------------------------------------------------------------------- tier routing


@dataclass(frozen=True)
class Tier:
    """An approval tier: its condition, approver steps and expected review time."""

    id: str
    message: str
    condition: Condition
    steps: tuple[str, ...]
    expected_review_working_days: int


@dataclass(frozen=True)
class Tiers:
    """All tiers (first match wins) and the settings of ``data/approval_tiers.yaml``."""

    tiers: tuple[Tier, ...]
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Routing:
    """Where a request goes: the tier matched, its message, the approver roles in order."""

    tier: str
    msg: Msg
    steps: tuple[str, ...]
    expected_review_working_days: int

    @property
    def auto(self) -> bool:
        """True when the system approves at once (no human step)."""
        return not self.steps


# Approval steps are named by the role (and, for provincial ops, the level) that takes them.
STEP_ROLES = frozenset({"prov_ops_l1", "prov_ops_l2", "hq_ops", "dept_head", "committee", "executive"})
# The persona roles that take some step (what the review pages and services admit).
REVIEWER_ROLES = frozenset({"prov_ops", "hq_ops", "dept_head", "committee", "executive"})


def steps_taken_by(actor: Identity) -> frozenset[str]:
    """The approval steps ``actor`` may take: an L2 provincial operator may also do the L1 initial
    review (the seed's "省侧L1/L2" claim and review); everyone else takes the step named by their role."""
    if actor.role == "prov_ops":
        return frozenset({"prov_ops_l1", "prov_ops_l2"}) if actor.level == "L2" else frozenset({"prov_ops_l1"})
    return frozenset({actor.role}) & STEP_ROLES


def _build_tiers(raw: Any) -> Tiers:
    raw = raw or {}
    settings = raw.get("settings") or {}
    tiers = []
    for i, entry in enumerate(raw.get("tiers") or []):
        where = f"approval_tiers.yaml:tiers[{i}] {entry.get('id', '')}"
        steps = tuple(entry.get("steps") or ())
        if not entry.get("id") or not entry.get("message") or any(s not in STEP_ROLES | {"ops"} for s in steps):
            raise InputError("error.data_entry_invalid", field="approval_tiers.yaml", entry=where)
        tiers.append(Tier(entry["id"], entry["message"],
                          parse_condition(entry.get("condition"), settings=settings, where=where),
                          steps, int(entry.get("expected_review_working_days", 0))))
    if not tiers:
        raise InputError("error.data_entry_invalid", field="approval_tiers.yaml", entry="tiers")
    if any(s not in STEP_ROLES for s in settings.get("provincial_ops_steps") or ()):
        raise InputError("error.data_entry_invalid", field="approval_tiers.yaml",
                         entry="settings.provincial_ops_steps")
    for name in ("start_horizon_days", "auto_cap_window_days", "auto_cap_user_gpus", "auto_cap_department_gpus"):
        value = settings.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError("error.data_entry_invalid", field="approval_tiers.yaml", entry=f"settings.{name}")
    return Tiers(tuple(tiers), settings)


def load_tiers() -> Tiers:
    """The approval tiers (rebuilt when the file changes)."""
    return load_derived("approval_tiers.yaml", _build_tiers)


def _ops_steps(f: Mapping[str, Any], tiers: Tiers) -> tuple[str, ...]:
    """What the "ops" step of a tier means for this pool: the provincial L1 review then the L2
    assessment (``provincial_ops_steps`` in the settings), or HQ ops."""
    if f.get("pool_level") == "province":
        return tuple(tiers.settings.get("provincial_ops_steps") or ("prov_ops_l1", "prov_ops_l2"))
    return ("hq_ops",)


def auto_tier_ids(tiers: Tiers | None = None) -> tuple[str, ...]:
    """The tiers the system approves by itself (no steps): what the auto-approval caps count."""
    tiers = load_tiers() if tiers is None else tiers
    return tuple(t.id for t in tiers.tiers if not t.steps)


def auto_approval_facts(user_gpus: int, department_gpus: int, requested: int,
                        tiers: Tiers | None = None) -> dict[str, Any]:
    """The facts of the auto-approval caps: GPUs auto-approved in the window with this request
    (``user_gpus``/``department_gpus`` already approved + ``requested``), and the caps themselves
    (parameters of the tier message)."""
    settings = (load_tiers() if tiers is None else tiers).settings
    return {"user_auto_gpus": user_gpus + requested, "department_auto_gpus": department_gpus + requested,
            "auto_cap_user_gpus": settings.get("auto_cap_user_gpus"),
            "auto_cap_department_gpus": settings.get("auto_cap_department_gpus"),
            "auto_cap_window_days": settings.get("auto_cap_window_days")}


def check_start_horizon(start: date | None, today: date, tiers: Tiers | None = None) -> None:
    """Refuse a start date further ahead than ``start_horizon_days`` (field ``start_date``)."""
    settings = (load_tiers() if tiers is None else tiers).settings
    days = settings.get("start_horizon_days")
    if start is None or days is None:
        return
    latest = today + timedelta(days=int(days))
    if start > latest:
        raise InputError("rules.start_beyond_horizon", field="start_date", value=start.isoformat(),
                         latest=latest.isoformat(), days=int(days))


def route(f: Mapping[str, Any], tiers: Tiers | None = None) -> Routing:
    """The first tier whose condition holds for the facts ``f``; "ops" becomes the pool's ops steps."""
    tiers = load_tiers() if tiers is None else tiers
    ops = _ops_steps(f, tiers)
    for tier in tiers.tiers:
        if tier.condition.holds(f):
            steps = tuple(step for s in tier.steps for step in (ops if s == "ops" else (s,)))
            message = _route_message(tier.message, f, has_ops="ops" in tier.steps)
            return Routing(tier.id, Msg(message, _msg_params(f)), steps, tier.expected_review_working_days)
    # The last tier of the shipped file has an empty condition; a file without one routes to ops.
    return Routing("fallback", Msg(_route_message("tier.standard_ops", f, has_ops=True), _msg_params(f)), ops, 2)


def _route_message(key: str, f: Mapping[str, Any], *, has_ops: bool) -> str:
    """The tier's message, or its ``.province`` variant when the ops step is the provincial L1
    review then L2 assessment (a provincial pool) and the catalogs have one."""
    province = f"{key}.province"
    if has_ops and f.get("pool_level") == "province" and all(has_key(province, lang) for lang in LANGS):
        return province
    return key


def ops_role_for(f: Mapping[str, Any]) -> str:
    """The single ops step of a routine re-grant on this pool (a queued request, a preempted one):
    first-line provincial ops (L1, which L2 may also take) or HQ ops."""
    return "prov_ops_l1" if f.get("pool_level") == "province" else "hq_ops"


# --------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class CapacityCheck:
    """The capacity pre-check of a request against its target pool."""

    pool: str
    requested: int
    free: int
    fits: bool
    largest_fit: int
    alternatives: tuple[tuple[str, int], ...]  # (pool id, free GPUs), most room first

    def msg(self) -> Msg:
        """What to tell the applicant."""
        if self.fits:
            return Msg("lifecycle.capacity_ok", {"pool": self.pool, "free": self.free, "requested": self.requested})
        return Msg("lifecycle.capacity_short", {
            "pool": self.pool, "free": self.free, "requested": self.requested, "largest": self.largest_fit,
            "alternatives": ", ".join(f"{p} ({n})" for p, n in self.alternatives) or "-",
        })

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"pool": self.pool, "requested": self.requested, "free": self.free, "fits": self.fits,
                "largest_fit": self.largest_fit,
                "alternatives": [{"pool": p, "free": n} for p, n in self.alternatives]}


def largest_shape(free: int, requested: int, gpus_per_node: int) -> int:
    """The largest GPU count ≤ ``free`` worth offering: whole nodes above one node, else 1, 2, 4, 8…"""
    n = min(free, requested)
    if n <= 0:
        return 0
    if n >= gpus_per_node:
        return (n // gpus_per_node) * gpus_per_node
    power = 1
    while power * 2 <= n:
        power *= 2
    return power


def capacity_check(pool: Pool, requested: int, free_by_pool: Mapping[str, int], org: Org) -> CapacityCheck:
    """Compare ``requested`` with the pool's free GPUs; suggest a shape that fits and other pools.

    Alternatives are pools of the same GPU model or the same kind with enough room; reserve pools
    (strategic and dynamic) are never offered to ordinary requests.
    """
    free = max(0, free_by_pool.get(pool.id, pool.gpus))
    fits = requested <= free
    alternatives: list[tuple[str, int]] = []
    if not fits:
        for other in org.pools.values():
            if other.id == pool.id or other.is_reserve:
                continue
            if other.gpu != pool.gpu and other.kind != pool.kind:
                continue
            room = max(0, free_by_pool.get(other.id, other.gpus))
            if room >= requested:
                alternatives.append((other.id, room))
        alternatives.sort(key=lambda a: (-a[1], a[0]))
    return CapacityCheck(pool.id, requested, free, fits, largest_shape(free, requested, pool.gpus_per_node),
                         tuple(alternatives))


# --------------------------------------------------------------------------- numbers and deadlines


def request_number(year: int, request_id: int) -> str:
    """The number shown to people, e.g. CR-2026-000123."""
    return f"CR-{year}-{request_id:06d}"


def add_working_days(at: datetime, days: int) -> datetime:
    """``at`` plus ``days`` working days (Saturdays and Sundays skipped; holidays are not modelled).

    A request arriving on a weekend counts from the start of the next Monday, so one working day
    later is the end of that Monday.
    """
    current = at
    if current.weekday() >= 5:
        current = (current + timedelta(days=7 - current.weekday())).replace(hour=0, minute=0, second=0,
                                                                           microsecond=0)
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current
