"""Signed-in (OIDC) identities: role, department, province and level from the ID token's claims
(data/oidc.yaml), failing closed on anything unmapped."""

from __future__ import annotations

import pytest

from core import config, identity
from core.errors import InputError
from core.identity import ROLE_MENU, identity_from_claims, load_claim_mapping, may_apply


def claims(**over):
    return {"sub": "u-123", "email": "Wang.Fang@Example.com", "name": "王芳", **over}


@pytest.mark.parametrize(("groups", "role", "province", "level"), [
    (["computeloop-admins"], "admin", "HQ", ""),
    (["computeloop-hq-ops"], "hq_ops", "HQ", ""),
    (["computeloop-js-ops-l1"], "prov_ops", "JS", "L1"),
    (["computeloop-js-ops-l2"], "prov_ops", "JS", "L2"),
    (["computeloop-dept-heads"], "dept_head", "HQ", ""),
    (["computeloop-committee"], "committee", "HQ", ""),
    (["computeloop-executives"], "executive", "HQ", ""),
    ([], "applicant", "HQ", ""),
])
def test_each_role_comes_from_a_group_claim(groups, role, province, level):
    who = identity_from_claims(claims(groups=groups, department="digital"))
    assert (who.role, who.province, who.level) == (role, province, level)
    assert who.id == "wang.fang@example.com" and who.name == "王芳" and who.department == "数字化部"


def test_every_role_can_be_granted_by_the_mapping():
    assert {r.role for r in load_claim_mapping().roles} == set(ROLE_MENU) - {"applicant"}  # the default


def test_the_first_matching_rule_wins_most_privileged_first():
    who = identity_from_claims(claims(groups=["computeloop-hq-ops", "computeloop-admins"]))
    assert who.role == "admin"


def test_a_provincial_department_gives_its_province_and_the_department_may_be_named():
    who = identity_from_claims(claims(department="江苏信通公司"))
    assert (who.role, who.department, who.province) == ("applicant", "江苏信通公司", "JS")
    assert may_apply(who)


def test_an_unmapped_user_is_an_applicant_of_no_department_who_may_not_apply():
    who = identity_from_claims(claims(groups=["some-other-group"], department="no-such-dept"))
    assert (who.role, who.department, who.province) == ("applicant", "", "HQ")
    assert not may_apply(who)
    assert may_apply(identity_from_claims(claims(groups=["computeloop-hq-ops"])))  # ops apply for others


def test_without_an_email_the_subject_is_the_id_and_without_either_nobody_is_signed_in():
    assert identity_from_claims(claims(email="")).id == "u-123"
    assert identity_from_claims(claims(email="", sub="")) is None
    a, b = identity_from_claims(claims(email="", sub="u-1")), identity_from_claims(claims(email="", sub="u-2"))
    assert a.id != b.id  # users without an e-mail no longer share one id


def test_a_single_group_string_is_read_as_one_group():
    assert identity_from_claims(claims(groups="computeloop-hq-ops")).role == "hq_ops"


@pytest.mark.parametrize("entry", [
    {"group": "x", "role": "root"},                                   # unknown role
    {"group": "x", "role": "prov_ops", "level": "L1"},                # no province
    {"group": "x", "role": "prov_ops", "province": "HQ", "level": "L1"},  # HQ is not a province
    {"group": "x", "role": "prov_ops", "province": "JS", "level": "L3"},
    {"group": "x", "role": "admin", "colour": "red"},                  # unknown key
])
def test_a_bad_mapping_entry_is_refused_naming_it(monkeypatch, entry):
    monkeypatch.setattr(identity, "load_yaml", lambda name: {"claims": {}, "roles": [entry]})
    with pytest.raises(InputError) as err:
        load_claim_mapping()
    assert err.value.params["entry"] == "oidc.yaml:roles[0]"


@pytest.mark.parametrize(("value", "valid", "demo"), [
    ("", False, False), ("odic", False, False), ("sso", False, False), ("none", False, False),
    ("demo", True, True), (" Demo ", True, True), ("oidc", True, False), ("OIDC", True, False),
])
def test_only_demo_or_oidc_start_the_portal_and_only_demo_is_demo(monkeypatch, value, valid, demo):
    monkeypatch.setenv("COMPUTELOOP_AUTH", value)
    cfg = config.load()
    assert (cfg.auth_valid, cfg.demo) == (valid, demo)


def test_unset_sign_in_is_refused(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_AUTH", raising=False)
    assert not config.load().auth_valid
