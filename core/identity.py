"""Who is acting: personas, roles and the permission checks the services use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from core.datafiles import load_yaml
from core.errors import ComputeLoopError
from core.i18n import Msg

# role -> menu (role group of the navigation)
ROLE_MENU: dict[str, str] = {
    "applicant": "user",
    "prov_ops": "ops",
    "hq_ops": "ops",
    "dept_head": "ops",
    "committee": "executive",
    "executive": "executive",
    "admin": "admin",
}
OPS_ROLES = frozenset({"prov_ops", "hq_ops", "admin"})


class PermissionDenied(ComputeLoopError):
    """The actor's role may not do this.

    ``action`` is an English phrase ("save an estimate"); it is shown through the catalog key
    ``action.<phrase with underscores>`` so the message is whole in either language.
    """

    def __init__(self, key: str, **params: object) -> None:
        if isinstance(params.get("action"), str):
            params["action"] = Msg(action_key(params["action"]))
        if params.get("role") in ROLE_MENU:
            params["role"] = Msg(f"role.{params['role']}")
        super().__init__(key, **params)


def action_key(action: str) -> str:
    """The catalog key of an action phrase: 'save an estimate' → 'action.save_an_estimate'."""
    return "action." + re.sub(r"[^a-z0-9]+", "_", action.lower()).strip("_")


@dataclass(frozen=True)
class Identity:
    """The person acting, as the services see them."""

    id: str
    name: str
    email: str
    role: str
    department: str = ""
    province: str = "HQ"
    # provincial ops work in two levels (seed: 省侧L1/L2): L1 claims and does the initial review,
    # L2 also does the in-depth feasibility assessment. Empty for every other role.
    level: str = ""
    # the language of their notices (zh-CN or en); empty: the portal's default, Chinese first
    lang: str = ""

    @property
    def menu(self) -> str:
        """The navigation menu (role group) of this identity."""
        return ROLE_MENU.get(self.role, "user")


def load_personas() -> list[Identity]:
    """The demo personas from ``data/personas.yaml``."""
    raw = load_yaml("personas.yaml") or {}
    return [Identity(**p) for p in raw.get("personas", [])]


def notice_lang(person_id: str) -> str:
    """The language of ``person_id``'s notices: their persona's ``lang``, else the configured
    default language, else Chinese (the first of :data:`core.i18n.LANGS`)."""
    from core import config
    from core.i18n import LANGS

    chosen = next((p.lang for p in load_personas() if p.id == person_id and p.lang), "")
    return chosen or config.load().default_lang or LANGS[0]


@dataclass(frozen=True)
class RoleRule:
    """One entry of ``data/oidc.yaml`` roles: members of ``group`` act as ``role``."""

    group: str
    role: str
    province: str = ""
    level: str = ""


@dataclass(frozen=True)
class ClaimMapping:
    """Which OIDC claims carry what (``data/oidc.yaml``), and the group → role rules in order."""

    email: str
    subject: str
    name: str
    department: str
    groups: str
    roles: tuple[RoleRule, ...]


def load_claim_mapping() -> ClaimMapping:
    """``data/oidc.yaml``, checked: unknown roles, provincial ops without a province or a bad level
    are refused naming the entry (a mistake there must not grant anything)."""
    from core.errors import InputError
    from core.org import load_org

    raw = load_yaml("oidc.yaml") or {}
    claims = raw.get("claims") or {}
    provinces = {u.id for u in load_org().units.values() if u.level == "province"}
    rules = []
    for i, entry in enumerate(raw.get("roles") or []):
        where = f"oidc.yaml:roles[{i}]"
        try:
            rule = RoleRule(**{str(k): str(v) for k, v in (entry or {}).items()})
        except TypeError:
            raise InputError("error.data_entry_invalid", field="roles", entry=where) from None
        if rule.role not in ROLE_MENU or (
                rule.role == "prov_ops" and (rule.province not in provinces or rule.level not in ("L1", "L2"))):
            raise InputError("error.data_entry_invalid", field="roles", entry=where)
        rules.append(rule)
    return ClaimMapping(email=str(claims.get("email", "email")), subject=str(claims.get("subject", "sub")),
                        name=str(claims.get("name", "name")), department=str(claims.get("department", "department")),
                        groups=str(claims.get("groups", "groups")), roles=tuple(rules))


def identity_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping | None = None) -> Identity | None:
    """The identity of a signed-in (OIDC) user from their ID token's ``claims`` (see ``data/oidc.yaml``).

    Returns None when the claims carry neither an e-mail nor a subject (no stable id: refused).
    Role from the first group rule that matches, else applicant; department from the department
    claim when it names a department of ``data/org.yaml``, else none; province from the department's
    unit, or the rule's province for provincial ops.
    """
    from core.org import load_org

    mapping = mapping or load_claim_mapping()
    org = load_org()
    email = str(claims.get(mapping.email) or "").strip()
    subject = str(claims.get(mapping.subject) or "").strip()
    user_id = email.lower() or subject
    if not user_id:
        return None
    raw_groups = claims.get(mapping.groups) or []
    groups = {raw_groups} if isinstance(raw_groups, str) else {str(g) for g in raw_groups}
    rule = next((r for r in mapping.roles if r.group in groups), None)
    dept_claim = str(claims.get(mapping.department) or "").strip()
    dept = org.departments.get(org.department_id(dept_claim)) if dept_claim else None
    province = rule.province if rule and rule.province else (dept.unit if dept else "HQ")
    return Identity(id=user_id, name=str(claims.get(mapping.name) or "").strip() or email or subject, email=email,
                    role=rule.role if rule else "applicant", department=dept.name_zh if dept else "",
                    province=province, level=rule.level if rule else "")


APPLY_ROLES = frozenset({"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})


def may_apply(actor: Identity) -> bool:
    """True when ``actor`` may fill in a resource application: a role that applies, and for
    applicants and department heads (who apply for their own department) a department."""
    return actor.role in APPLY_ROLES and (actor.role not in ("applicant", "dept_head") or bool(actor.department))


def require(actor: Identity, roles: frozenset[str] | set[str], action: str) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` has one of ``roles``."""
    if actor.role not in roles:
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)
