"""The lifecycle's identifiers have names in both languages, and every id the code records has one."""

from __future__ import annotations

import re

import pytest

from core.config import PROJECT_ROOT
from core.i18n import LANGS, catalog
from core.lifecycle import labels
from core.lifecycle.green_channel import TIER as GREEN_TIER
from core.lifecycle.provisioning import ALLOCATION_STATUSES
from core.lifecycle.rules import load_tiers

CORE = sorted((PROJECT_ROOT / "core").rglob("*.py"))


def _keys() -> list[str]:
    return ([f"audit_action.{a}" for a in labels.REQUEST_AUDIT_ACTIONS]
            + [f"step_status.{s}" for s in labels.STEP_STATUSES]
            + [f"backend_name.{b}" for b in labels.BACKENDS]
            + [f"audit_reason.{r}" for r in labels.SYSTEM_REASONS]
            + [f"allocation_status.{s}" for s in ALLOCATION_STATUSES]
            + [f"tier_name.{t.id}" for t in load_tiers().tiers] + [f"tier_name.{GREEN_TIER}"])


@pytest.mark.parametrize("lang", LANGS)
def test_every_identifier_has_a_name_in_both_languages(lang):
    assert [k for k in _keys() if k not in catalog(lang)] == []


def _request_audit_actions_in_code() -> set[str]:
    """Literal actions of audit events written against a request (subject "request:<id>")."""
    found = set()
    for path in CORE:
        text = path.read_text(encoding="utf-8")
        # the lifecycle's own helper (core/lifecycle/services.py _audit), always about a request
        helper = r'\b_audit\(' if path.parent.name == "lifecycle" else r'\bsvc\._audit\('
        found |= set(re.findall(helper + r's, [\w.]+, "([a-z_]+\.[a-z_]+)"', text))
        found |= set(re.findall(r'audit\(s, [\w.]+, "([a-z_]+\.[a-z_]+)", f"request:', text))
        found |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)",\s*subject=f"request:', text))
    return found


def test_every_audit_action_recorded_against_a_request_is_named():
    found = _request_audit_actions_in_code()
    assert {"request.transition", "request.step_decided", "allocation.provisioned", "extension.requested"} <= found
    assert sorted(found - set(labels.REQUEST_AUDIT_ACTIONS)) == []


def test_every_system_reason_of_a_status_change_is_named():
    reasons = set()
    for path in CORE:
        reasons |= set(re.findall(r'_move\(s, \w+, [^,]+, [\w.]+, f?"([a-z_]+)(?::\{|")',
                                  path.read_text(encoding="utf-8")))
    assert {"submitted", "claimed", "expiry_notice", "reclaim"} <= reasons
    assert sorted(reasons - set(labels.SYSTEM_REASONS) - {"tier", "emergency", "expiry_notice", "reclaim"}) == []


def test_changes_read_as_statuses_and_steps_in_the_language():
    moved = {"action": "request.transition", "before": {"status": "submitted"}, "after": {"status": "in_review"},
             "reason": "claimed"}
    assert labels.event_change(moved, "zh-CN") == "已提交 → 评估中"
    assert labels.reason_text(moved, "zh-CN") == "认领评估"
    step = {"action": "request.step_decided", "before": {"step": 2, "status": "pending"},
            "after": {"step": 2, "role": "dept_head", "status": "adjusted"}, "reason": "fewer GPUs"}
    assert labels.event_change(step, "en") == "step 2 Department head: approved with changes"
    assert labels.reason_text(step, "en") == "fewer GPUs"  # a person's words stay as written
    created = {"action": "request.created", "before": None, "after": {"status": "draft"}, "reason": ""}
    assert labels.event_change(created, "zh-CN") == "→ 草稿"
    preempted = {"action": "allocation.preempted", "before": {"status": "active"}, "after": {"status": "released"},
                 "reason": "emergency:CR-2026-000009"}
    assert labels.event_change(preempted, "zh-CN") == "使用中 → 已释放"
    assert labels.reason_text(preempted, "zh-CN") == "让位于紧急任务 CR-2026-000009"
    auto = {"action": "request.transition", "before": {"status": "submitted"}, "after": {"status": "approved"},
            "reason": "tier:standard_auto"}
    assert labels.reason_text(auto, "en") == "approved by its route: standard, automatic"


def test_an_identifier_without_a_name_is_shown_as_it_is_not_as_a_key(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")
    assert labels.action_name("request.teleported", "zh-CN") == "request.teleported"
    assert labels.role_name("astronaut", "en") == "astronaut"
    message = {"key": "tier.standard_ops", "params": {}}
    assert labels.tier_name("new_tier", "zh-CN", message) == "超出标准额度：由运营经理审批。"
    assert labels.tier_name("new_tier", "en") == "new_tier"
    assert labels.tier_name(None, "en") == "-" and labels.backend_name(None, "en") == "-"
    assert labels.backend_name("live", "zh-CN") == "直接下发到集群"
