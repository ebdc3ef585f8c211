"""AppTest: the Estimate page computes, explains, saves and recommends, in both languages."""

from __future__ import annotations

import pytest

from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from tests.support.app_run import no_exceptions, open_page, shows, text

PAGE = "app_pages/estimate.py"


def _button(at, key, lang="en"):
    """The button labelled with the catalog text of ``key``."""
    label = text(key, lang)
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def _metric(at, key):
    label = text(key)
    matches = [m for m in at.metric if m.label == label]
    assert matches, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return matches[0].value


def test_training_estimate_shows_the_computed_figures():
    at = open_page(PAGE)
    at.number_input(key="tr_gpus").set_value(64)
    at.number_input(key="tr_tokens_b").set_value(200.0)
    _button(at, "training.submit").click().run()
    no_exceptions(at)
    expected = estimate_training(TrainingInput(
        model=ModelSpec(params=6.74e9, layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=11008,
                        gated_mlp=True, vocab=32000, seq_len=4096),
        tokens=200e9, gpu="A100-80GB", gpus=64))
    assert _metric(at, "training.out.gpu_hours") == f"{expected.gpu_hours:,.0f}"
    assert _metric(at, "training.out.wall_clock") == text("unit.days", value=f"{expected.wall_clock_hours / 24:,.1f}")
    assert shows(at.success, "training.memory.fits")


def test_a_layout_that_cannot_exist_names_the_field_instead_of_crashing():
    at = open_page(PAGE)
    at.checkbox(key="tr_manual_layout").check()
    at.selectbox(key="tr_tp").set_value(8)
    at.number_input(key="tr_gpus").set_value(12)
    _button(at, "training.submit").click().run()
    no_exceptions(at)
    field = text("error.field_prefix", field=text("fieldname.gpus"))
    assert any(e.value.startswith(field) and "12" in e.value for e in at.error), [e.value for e in at.error]


def test_manual_layout_takes_expert_parallelism_for_a_mixture_of_experts_model():
    """EP on the manual layout reaches the memory estimate (the title names it) and, on a dense
    model, is refused naming the field."""
    at = open_page(PAGE)
    at.number_input(key="tr_params_b").set_value(671.0)
    at.number_input(key="tr_active_b").set_value(37.0)
    at.selectbox(key="tr_gpu").set_value("H800-SXM")
    at.number_input(key="tr_gpus").set_value(256)
    at.checkbox(key="tr_manual_layout").check()
    at.selectbox(key="tr_tp").set_value(8)
    at.selectbox(key="tr_pp").set_value(8)
    at.selectbox(key="tr_ep").set_value(4)
    _button(at, "training.submit").click().run()
    no_exceptions(at)
    titles = [m.value for m in at.markdown if "EP 4" in m.value]
    assert titles, [m.value for m in at.markdown][:10]

    at.number_input(key="tr_active_b").set_value(0.0)  # dense now
    _button(at, "training.submit").click().run()
    no_exceptions(at)
    field = text("error.field_prefix", field=text("fieldname.ep"))
    assert any(e.value.startswith(field) for e in at.error), [e.value for e in at.error]


def test_memory_that_does_not_fit_lists_changes_that_would_fit():
    at = open_page(PAGE)
    at.selectbox(key="tr_gpu").set_value("A100-40GB")
    at.number_input(key="tr_gpus").set_value(8)
    at.checkbox(key="tr_manual_layout").check()
    at.selectbox(key="tr_zero").set_value(0)
    _button(at, "training.submit").click().run()
    no_exceptions(at)
    assert shows(at.error, "training.memory.no_fit")
    assert shows(at.markdown, "remedy.lora"), [m.value for m in at.markdown]


def test_saved_estimate_appears_in_the_list():
    at = open_page(PAGE)
    _button(at, "training.submit").click().run()
    at.text_input(key="tr_title").input("Llama 2 7B pre-training")
    _button(at, "estimate.save").click().run()
    no_exceptions(at)
    assert shows(at.success, "estimate.saved", id=1), [s.value for s in at.success]
    at.switch_page("app_pages/saved_estimates.py").run()
    no_exceptions(at)
    assert "Llama 2 7B pre-training" in at.dataframe[0].value.to_string()


def test_recommendation_lists_a_pareto_set_and_explains_the_choice():
    at = open_page(PAGE)
    _button(at, "recommend.run").click().run()
    no_exceptions(at)
    assert at.dataframe, "no Pareto table"
    assert any(shows(at.markdown, key) for key in ("recommend.choice_deadline", "recommend.choice_budget",
                                                   "recommend.choice_balanced")), [m.value for m in at.markdown]
    assert any(shows(at.markdown, key) for key in ("recommend.choice_uses_tp", "recommend.tp_needs_nvlink"))


def test_llm_serving_sizes_every_catalog_gpu():
    at = open_page(PAGE)
    _button(at, "serving.submit").click().run()
    no_exceptions(at)
    tables = [d.value for d in at.dataframe]
    assert any("TP" in t.columns and len(t) >= 10 for t in tables)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_page_speaks_the_chosen_language(lang):
    at = open_page(PAGE, lang=lang)
    no_exceptions(at)
    assert at.title[0].value == text("estimate.title", lang)
    _button(at, "training.submit", lang)
    assert text("training.submit", "zh-CN") != text("training.submit", "en")


def test_reopening_a_saved_estimate_fills_the_form():
    inputs = TrainingInput(model=ModelSpec(params=13e9, layers=40, hidden=5120, heads=40), tokens=3e11,
                           gpu="H100-SXM", gpus=32, precision="fp8", workload="finetune").to_dict()
    at = open_page("app_pages/home.py")
    at.session_state["estimate_prefill"] = inputs
    at.switch_page(PAGE).run()
    no_exceptions(at)
    assert at.number_input(key="tr_gpus").value == 32
    assert at.selectbox(key="tr_gpu").value == "H100-SXM"
    assert at.selectbox(key="tr_precision").value == "fp8"
    assert at.number_input(key="tr_layers").value == 40
