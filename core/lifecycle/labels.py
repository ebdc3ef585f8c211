"""Readable names, in a language, of the lifecycle's identifiers: roles, approval step statuses,
audit actions, approval routes (tiers) and provisioning backends. The command line and the
pages' tables show these instead of the raw ids (``hq_ops``, ``request.transition``, ``plan``).

An id that has no name in the catalogs (a tier added to data/approval_tiers.yaml, an audit
action newer than the catalogs) is shown as it is, never as a message key and never as an
error: the tests pin that every id the code and the data files produce has its name.
"""

from __future__ import annotations

from typing import Any, Mapping

from core.i18n import catalog, translate

STEP_STATUSES = ("pending", "approved", "adjusted", "rejected")
BACKENDS = ("plan", "live")
# Every action recorded in the audit trail of a request (subject "request:<id>").
REQUEST_AUDIT_ACTIONS = (
    "request.created", "request.draft_saved", "request.transition", "request.step_decided", "request.emergency",
    "request.emergency_reviewed", "allocation.provisioned", "allocation.provision_failed", "allocation.preempted",
    "allocation.suspended", "allocation.suspend_failed", "allocation.reclaimed", "allocation.refreshed",
    "allocation.refresh_failed", "extension.requested",
    "extension.approved", "extension.refused", "training_result.recorded", "demo.namespace_bound",
    "demo.backdated", "allocation.started",
)


def _named(key: str, fallback: str, lang: str) -> str:
    return translate(key, lang) if key in catalog(lang) else fallback


def role_name(role: str | None, lang: str) -> str:
    """``hq_ops`` → 总部运营 / HQ ops."""
    return _named(f"role.{role}", role or "-", lang)


def status_name(status: str | None, lang: str) -> str:
    """A request status (``submitted`` → 已提交)."""
    return _named(f"status.{status}", status or "-", lang)


def step_status_name(status: str | None, lang: str) -> str:
    """An approval step's status (``pending`` → 待处理)."""
    return _named(f"step_status.{status}", status or "-", lang)


def action_name(action: str, lang: str) -> str:
    """An audit action (``request.transition`` → 状态变更)."""
    return _named(f"audit_action.{action}", action, lang)


def backend_name(backend: str | None, lang: str) -> str:
    """A provisioning backend (``plan`` → 清单交付（GitOps）); ``-`` when there is none yet."""
    return _named(f"backend_name.{backend}", backend, lang) if backend else "-"


def tier_name(tier: str | None, lang: str, message: Mapping[str, Any] | None = None) -> str:
    """The short name of an approval route; without one, the route's own message; ``-`` if none."""
    if not tier:
        return "-"
    key = f"tier_name.{tier}"
    if key in catalog(lang):
        return translate(key, lang)
    if message and message.get("key"):
        return translate(message["key"], lang, **dict(message.get("params") or {}))
    return tier


def event_change(event: Mapping[str, Any], lang: str) -> str:
    """What an audit event of a request changed, in words: statuses before → after, or the step decided."""
    before, after = event.get("before") or {}, event.get("after") or {}
    if event.get("action") == "request.step_decided":
        return translate("cli.event.step", lang, seq=after.get("step", "?"), role=role_name(after.get("role"), lang),
                         status=step_status_name(after.get("status"), lang))
    old, new = before.get("status"), after.get("status")
    action = str(event.get("action", ""))
    if (not old and not new) or action.startswith("extension."):  # the action's name says it all
        return ""
    prefix = "allocation_status" if action.startswith("allocation.") else "status"

    def name(status: str | None) -> str:
        return _named(f"{prefix}.{status}", status, lang) if status else ""

    return " ".join(part for part in (name(old), "→", name(new)) if part)


# Reasons the system records with a status change; anything else is a person's own words.
SYSTEM_REASONS = ("submitted", "claimed", "capacity_short", "provision", "retry", "provisioned", "provisioning_failed",
                  "provisioning_interrupted", "preempted", "extension_requested", "start_date")
_REASON_IS_BACKEND = ("allocation.provisioned", "allocation.suspended", "allocation.suspend_failed",
                      "allocation.refreshed", "allocation.refresh_failed")
_REASON_WITH_VALUE = {"tier": "tier", "emergency": "number", "expiry_notice": "days"}


def reason_text(event: Mapping[str, Any], lang: str) -> str:
    """An audit event's reason: system codes (``claimed``, ``tier:standard_auto``) in words, people's as written."""
    reason = str(event.get("reason") or "")
    action = str(event.get("action", ""))
    if action in _REASON_IS_BACKEND:
        return backend_name(reason, lang) if reason else ""
    if action != "request.transition" and not action.startswith("allocation."):
        return reason
    if action == "allocation.reclaimed":
        return _named(f"reclaim.kind.{reason}", reason, lang)
    if reason in SYSTEM_REASONS:
        return translate(f"audit_reason.{reason}", lang)
    code, _, value = reason.partition(":")
    if code == "reclaim" and value:
        return _named(f"reclaim.kind.{value}", reason, lang)
    if value and code in _REASON_WITH_VALUE:
        shown = tier_name(value, lang) if code == "tier" else value
        return translate(f"audit_reason.{code}", lang, **{_REASON_WITH_VALUE[code]: shown})
    return reason
