"""AppTest: the autoscaling page (扩缩容策略) — form, HPA/KEDA YAML with downloads, save recorded."""

from __future__ import annotations

import os

from core.adjust import services as adjust
from core.context import build
from core.identity import load_personas
from tests.support.app_run import no_exceptions, open_page, shows, text


def test_a_new_policy_shows_the_hpa_and_keda_yaml_with_downloads():
    at = open_page("app_pages/scaling.py", persona="li.na")
    no_exceptions(at)
    codes = " ".join(c.value for c in at.code)
    assert "HorizontalPodAutoscaler" in codes and "ScaledObject" in codes and "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in codes
    labels = [b.label for b in at.get("download_button")]
    assert text("scaling.download_hpa") in labels and text("scaling.download_keda") in labels


def test_saving_a_policy_records_the_change():
    at = open_page("app_pages/scaling.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    at.text_input(key="sc_namespace_new").input("cs-infer")
    at.text_input(key="sc_deployment_new").input("qwen-chat")
    at.number_input(key="sc_max_replicas_new").set_value(6)
    at.text_input(key="sc_reason").input("晚高峰扩容上限")
    next(b for b in at.button if b.label == text("scaling.save", "zh-CN")).click().run()
    no_exceptions(at)
    assert shows(at.success, "scaling.saved", "zh-CN"), [e.value for e in at.error]
    ctx = build(os.environ["COMPUTELOOP_DATABASE_URL"])
    admin = next(p for p in load_personas() if p.id == "zhao.min")
    rows = adjust.list_adjustments(sessions=ctx.sessions, actor=admin, kind="scale_policy_change")
    assert rows[0]["after"]["max_replicas"] == 6 and rows[0]["actor"] == "li.na"


def test_a_bad_name_is_shown_as_a_field_error():
    at = open_page("app_pages/scaling.py", persona="zhao.min")
    at.text_input(key="sc_namespace_new").input("Bad_NS")
    at.text_input(key="sc_reason").input("test")
    next(b for b in at.button if b.label == text("scaling.save")).click().run()
    no_exceptions(at)
    prefix = text("error.field_prefix", field=text("fieldname.namespace"))  # the field's label, not its id
    assert any(e.value.startswith(prefix) for e in at.error), [e.value for e in at.error]
