"""Personas, roles and each person's notice language."""

from __future__ import annotations

from core.identity import ROLE_MENU, load_personas, notice_lang


def test_every_persona_has_a_known_role_and_only_provincial_ops_have_a_level():
    people = load_personas()
    assert {p.role for p in people} == set(ROLE_MENU)
    assert all((p.level in ("L1", "L2")) == (p.role == "prov_ops") for p in people)
    assert all(p.lang in ("", "zh-CN", "en") for p in people)


def test_notices_go_out_in_the_persons_language_else_the_default_else_chinese(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_DEFAULT_LANG", raising=False)
    assert notice_lang("zhao.min") == "en"          # personas.yaml: lang: en
    assert notice_lang("zhang.wei") == "zh-CN"      # no preference
    assert notice_lang("someone.else") == "zh-CN"   # not a persona
    monkeypatch.setenv("COMPUTELOOP_DEFAULT_LANG", "en")
    assert notice_lang("someone.else") == "en" and notice_lang("zhao.min") == "en"
