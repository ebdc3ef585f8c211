"""Who is acting: personas, roles and the permission checks the services use."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def identity_for_email(email: str, name: str) -> Identity:
    """Identity of a signed-in (OIDC) user: role from ``oidc_roles``, applicant otherwise."""
    raw = load_yaml("personas.yaml") or {}
    role = (raw.get("oidc_roles") or {}).get(email.lower(), "applicant")
    return Identity(id=email.lower(), name=name or email, email=email, role=role)


def require(actor: Identity, roles: frozenset[str] | set[str], action: str) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` has one of ``roles``."""
    if actor.role not in roles:
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)
