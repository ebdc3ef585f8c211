"""Pre-check rules: the intake form, completeness by demand type, compliance, routing, capacity."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from core.errors import InputError
from core.i18n import translate
from core.lifecycle.forms import IntakeForm, consistency_errors, parse_parameters
from core.lifecycle.rules import (
    _build_tiers, add_working_days, capacity_check, check_compliance, facts, largest_shape,
    load_compliance_rules, load_required_fields, load_tiers, missing_fields, parse_condition, request_number, route,
    steps_taken_by,
)
from core.identity import Identity
from core.org import load_org
from tests.support import clock
from tests.support.forms import TRAINING, inference_form, training_form

# ----------------------------------------------------------------- the form


def test_form_round_trips_through_its_dict():
    for form in (training_form(), inference_form(), IntakeForm()):
        assert IntakeForm.from_dict(form.to_dict()) == form


def test_form_converts_values_people_type():
    form = training_form(parameters="70b", requested_gpus="8", high_availability="yes",
                         key_libraries=["torch==2.3.1", "deepspeed==0.14"], extra_pools="hq-lang, hq-mm")
    assert form.parameters == 70e9 and form.requested_gpus == 8 and form.high_availability is True
    assert form.key_libraries == {"torch": "2.3.1", "deepspeed": "0.14"}
    assert form.extra_pools == ("hq-lang", "hq-mm")
    assert form.start_date == clock.day(0)
    assert parse_parameters("350M") == 350e6 and parse_parameters(7e9) == 7e9


@pytest.mark.parametrize(("field", "value", "key"), [
    ("requested_gpus", "many", "lifecycle.bad_value"),
    ("requested_gpus", 2.5, "lifecycle.whole_number"),
    ("requested_gpus", 0, "error.out_of_range"),
    ("duration_days", -3, "error.out_of_range"),
    ("start_date", "next monday", "lifecycle.bad_date"),
    ("demand_type", "mining", "error.choice"),
    ("demand_subtype", "online", "error.choice"),  # an inference subtype on a training form
    ("parameters", "big", "lifecycle.bad_value"),
    ("canary", "maybe", "lifecycle.bad_value"),
    ("favourite_colour", "blue", "lifecycle.unknown_field"),
])
def test_form_names_the_field_of_a_bad_value(field, value, key):
    with pytest.raises(InputError) as err:
        IntakeForm.from_dict({**TRAINING, field: value})
    assert err.value.field == field and err.value.key == key


def test_inconsistent_sla_is_refused_naming_the_field():
    with pytest.raises(InputError) as err:
        consistency_errors(inference_form(sla_latency_p99_ms=100))
    assert err.value.field == "sla_latency_p99_ms"
    with pytest.raises(InputError) as err:
        consistency_errors(inference_form(qps_peak=10))
    assert err.value.field == "qps_peak"


# ----------------------------------------------------------------- completeness


def test_complete_forms_miss_nothing():
    assert missing_fields(training_form()) == []
    assert missing_fields(inference_form()) == []


def test_an_empty_form_misses_the_common_fields_in_form_order():
    assert missing_fields(IntakeForm()) == list(load_required_fields().common)


@pytest.mark.parametrize("field", load_required_fields().by_type["training"])
def test_each_training_field_is_required_for_training(field):
    assert missing_fields(training_form(**{field: None})) == [field]


@pytest.mark.parametrize("field", load_required_fields().by_type["inference"])
def test_each_inference_field_is_required_for_inference(field):
    assert missing_fields(inference_form(**{field: None})) == [field]


def test_training_fields_are_not_asked_of_inference_and_vice_versa():
    assert missing_fields(inference_form(model_name=None, cuda_version=None)) == []
    assert missing_fields(training_form(model_location=None, qps_peak=None)) == []


def test_subtype_exemptions_research_has_no_run_schedule_and_batch_no_latency():
    research = training_form(demand_subtype="research", hours_per_run=None, runs_per_period=None, run_period=None)
    assert missing_fields(research) == []
    batch = inference_form(demand_subtype="offline_batch", sla_latency_mean_ms=None, sla_latency_p99_ms=None)
    assert missing_fields(batch) == []
    assert missing_fields(inference_form(sla_latency_p99_ms=None)) == ["sla_latency_p99_ms"]


def test_false_is_an_answer_but_empty_text_and_empty_libraries_are_not():
    assert missing_fields(inference_form(high_availability=False, canary=False)) == []
    assert missing_fields(training_form(business_background="   ", key_libraries={})) == [
        "business_background", "key_libraries"]


# ----------------------------------------------------------------- condition language


def test_conditions_combine_and_or_not_and_settings():
    cond = parse_condition({"gpus_gt": "$big", "any": [{"pool_kind_in": ["a"]}, {"not": {"duration_days_le": 7}}]},
                           settings={"big": 4}, where="t.yaml:x")
    assert cond.holds({"gpus": 5, "pool_kind": "a", "duration_days": 1})
    assert cond.holds({"gpus": 5, "pool_kind": "b", "duration_days": 8})
    assert not cond.holds({"gpus": 5, "pool_kind": "b", "duration_days": 7})
    assert not cond.holds({"gpus": 4, "pool_kind": "a", "duration_days": 1})
    assert not cond.holds({"gpus": None, "pool_kind": "a"})  # numbers compare false against a missing value
    assert parse_condition({}, settings={}, where="t").holds({})


@pytest.mark.parametrize("raw", [
    {"gpus_between": 3}, {"colour_in": ["red"]}, {"gpus_gt": "$nope"}, {"gpus_gt": "four"},
    {"pool_kind_in": "strategic_reserve"}, {"any": []}, ["gpus_gt", 4], {"__import__('os')_eq": 1},
])
def test_bad_conditions_are_refused_when_loaded_naming_the_file(raw):
    with pytest.raises(InputError) as err:
        parse_condition(raw, settings={}, where="compliance_rules.yaml:rules[0] x")
    assert err.value.field == "compliance_rules.yaml"


# ----------------------------------------------------------------- compliance


def _flags(form: IntakeForm) -> dict[str, bool]:
    return {f.id: f.block for f in check_compliance(facts(form, load_org()))}


def test_every_compliance_rule_has_a_message_in_both_languages():
    rules = load_compliance_rules()
    assert {r.id for r in rules} == {
        "exploration_on_strategic_reserve", "exploration_large_long_reserve", "large_and_long",
        "no_estimate_for_large_request", "inference_on_training_pool", "training_on_inference_pool",
        "finetune_beyond_window"}
    f = facts(training_form(), load_org())
    for r in rules:
        for lang in ("en", "zh-CN"):
            assert translate(r.message, lang, **{k: v for k, v in f.items()})


def test_a_plain_standard_request_raises_no_flag():
    assert _flags(training_form()) == {}


def test_exploration_project_on_the_strategic_reserve_is_flagged_but_not_blocked():
    form = training_form(department="dispatch", project="P-EXP-05", pool="hq-reserve", requested_gpus=8,
                         duration_days=10, demand_subtype="research")
    assert _flags(form) == {"exploration_on_strategic_reserve": False}


def test_exploration_project_taking_much_reserve_for_long_is_blocked():
    form = training_form(department="dispatch", project="P-EXP-05", pool="hq-reserve", requested_gpus=16,
                         duration_days=31, demand_subtype="research", estimate_id=1)
    flags = _flags(form)
    assert flags["exploration_large_long_reserve"] is True
    # one more day short of "long" and it is only a flag
    assert "exploration_large_long_reserve" not in _flags(replace(form, duration_days=30))


def test_large_and_long_request_is_flagged_above_both_thresholds_only():
    base = dict(demand_subtype="l1_foundation", pool="hq-lang", estimate_id=1)
    assert "large_and_long" in _flags(training_form(requested_gpus=65, duration_days=31, **base))
    assert "large_and_long" not in _flags(training_form(requested_gpus=64, duration_days=31, **base))
    assert "large_and_long" not in _flags(training_form(requested_gpus=65, duration_days=30, **base))


def test_more_than_one_node_without_an_estimate_is_flagged():
    assert "no_estimate_for_large_request" in _flags(training_form(requested_gpus=9, duration_days=5))
    assert "no_estimate_for_large_request" not in _flags(training_form(requested_gpus=9, duration_days=5,
                                                                       estimate_id=3))
    assert "no_estimate_for_large_request" not in _flags(training_form(requested_gpus=8, duration_days=5))


def test_demand_type_and_pool_kind_mismatch_is_flagged_both_ways():
    assert "inference_on_training_pool" in _flags(inference_form(pool="hq-lang"))
    assert "training_on_inference_pool" in _flags(training_form(pool="hq-inf"))


def test_fine_tuning_beyond_seven_days_is_flagged():
    assert "finetune_beyond_window" in _flags(training_form(duration_days=8))
    assert "finetune_beyond_window" not in _flags(training_form(duration_days=7))


# ----------------------------------------------------------------- routing


def _route(**over):
    return route(facts(training_form(**over), load_org()))


@pytest.mark.parametrize(("gpus", "days", "tier"), [
    (4, 7, "standard_auto"), (1, 1, "standard_auto"), (5, 7, "standard_ops"), (4, 8, "standard_ops"),
    (32, 30, "standard_ops"), (33, 30, "large_department"), (32, 31, "large_department"),
])
def test_tier_boundaries_on_an_hq_pool(gpus, days, tier):
    r = _route(requested_gpus=gpus, duration_days=days)
    assert r.tier == tier
    expected_steps = {"standard_auto": (), "standard_ops": ("hq_ops",), "large_department": ("hq_ops", "dept_head")}
    assert r.steps == expected_steps[tier]
    assert r.auto == (tier == "standard_auto")


def test_provincial_pools_route_to_provincial_ops():
    r = route(facts(training_form(department="js-it", project="P-JS-06", pool="js-pool", requested_gpus=8),
                    load_org()))
    assert r.steps == ("prov_ops_l1", "prov_ops_l2")
    r = route(facts(training_form(department="js-it", project="P-JS-06", pool="js-pool", requested_gpus=40),
                    load_org()))
    assert r.steps == ("prov_ops_l1", "prov_ops_l2", "dept_head")
    # the route says what happens: the province's L1 review and L2 assessment, not "ops manager"
    assert r.msg.key == "tier.large_department.province" and "L1" in r.msg.render("zh-CN") and "40" in r.msg.render("en")
    hq = _route(requested_gpus=8)
    assert hq.msg.key == "tier.standard_ops" and "L1" not in hq.msg.render("zh-CN")


@pytest.mark.parametrize(("role", "level", "steps"), [
    ("prov_ops", "L1", {"prov_ops_l1"}),
    ("prov_ops", "L2", {"prov_ops_l1", "prov_ops_l2"}),
    ("prov_ops", "", {"prov_ops_l1"}),
    ("hq_ops", "", {"hq_ops"}),
    ("dept_head", "", {"dept_head"}),
    ("applicant", "", set()),
    ("admin", "", set()),
])
def test_which_steps_each_role_and_level_takes(role, level, steps):
    assert steps_taken_by(Identity("x", "X", "x@example.com", role, level=level)) == steps


def test_provincial_ops_steps_outside_the_step_roles_are_refused():
    raw = {"settings": {"provincial_ops_steps": ["prov_ops"]}, "tiers": [{"id": "t", "message": "m", "steps": ["ops"]}]}
    with pytest.raises(InputError) as err:
        _build_tiers(raw)
    assert "provincial_ops_steps" in str(err.value.params)


def test_the_strategic_reserve_always_goes_to_committee_then_management_even_when_small():
    r = _route(pool="hq-reserve", requested_gpus=1, duration_days=1)
    assert r.tier == "strategic_reserve" and r.steps == ("committee", "executive")
    assert r.expected_review_working_days == 10


def test_routing_message_is_stored_as_a_key_with_the_request_facts():
    r = _route(requested_gpus=40)
    assert r.msg.key == "tier.large_department"
    assert "40" in r.msg.render("en") and "40" in r.msg.render("zh-CN")


def test_tier_thresholds_are_settings_of_the_data_file():
    s = load_tiers().settings
    assert (s["auto_max_gpus"], s["auto_max_days"], s["claim_working_days"]) == (4, 7, 1)


# ----------------------------------------------------------------- capacity


def test_capacity_fits_when_free_is_enough():
    org = load_org()
    c = capacity_check(org.pools["hq-ft"], 16, {"hq-ft": 16}, org)
    assert c.fits and c.free == 16 and c.alternatives == ()


def test_short_capacity_suggests_the_largest_shape_and_pools_of_the_same_model_or_kind_with_room():
    org = load_org()
    free = {p: org.pools[p].gpus for p in org.pools} | {"hq-mm": 20}
    c = capacity_check(org.pools["hq-mm"], 32, free, org)
    assert not c.fits and c.largest_fit == 16  # whole 8-GPU nodes
    pools = [p for p, _ in c.alternatives]
    # A800 pools with room; never the dynamic reserve (A800 too) nor the strategic reserve
    assert pools == ["hq-sci", "js-pool"]
    assert "hq-dynamic" not in pools and "hq-reserve" not in pools
    text = c.msg().render("en")
    assert "20" in text and "16" in text and "hq-sci" in text


@pytest.mark.parametrize(("free", "requested", "per_node", "expected"), [
    (20, 32, 8, 16), (7, 32, 8, 4), (3, 4, 8, 2), (0, 4, 8, 0), (12, 12, 4, 12), (5, 2, 8, 2),
])
def test_largest_shape(free, requested, per_node, expected):
    assert largest_shape(free, requested, per_node) == expected


# ----------------------------------------------------------------- numbers and deadlines


def test_request_number_is_year_and_zero_padded_id():
    assert request_number(2026, 123) == "CR-2026-000123"


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 3, 2, 10, tzinfo=timezone.utc), datetime(2026, 3, 3, 10, tzinfo=timezone.utc)),   # Mon→Tue
    (datetime(2026, 3, 6, 15, tzinfo=timezone.utc), datetime(2026, 3, 9, 15, tzinfo=timezone.utc)),   # Fri→Mon
    (datetime(2026, 3, 7, 15, tzinfo=timezone.utc), datetime(2026, 3, 10, 0, tzinfo=timezone.utc)),   # Sat→end of Mon
    (datetime(2026, 3, 8, 23, tzinfo=timezone.utc), datetime(2026, 3, 10, 0, tzinfo=timezone.utc)),   # Sun→end of Mon
])
def test_claim_deadline_is_one_working_day_skipping_weekends(at, expected):
    assert add_working_days(at, 1) == expected


@pytest.mark.parametrize("value", ["2026-12-01garbage", "2026-13-01", "01/12/2026"])
def test_a_date_with_anything_after_it_or_out_of_range_is_refused(value):
    with pytest.raises(InputError) as err:
        IntakeForm.from_dict({"start_date": value})
    assert err.value.key == "lifecycle.bad_date" and err.value.params["field"] == "start_date"


def test_an_iso_timestamp_names_its_day():
    assert IntakeForm.from_dict({"start_date": "2026-12-01T08:00:00+08:00"}).start_date == date(2026, 12, 1)


def test_a_start_date_before_today_is_refused_and_today_is_fine():
    form = IntakeForm.from_dict({"start_date": "2026-11-28"})
    with pytest.raises(InputError) as err:
        consistency_errors(form, today=date(2026, 11, 29))
    assert err.value.key == "lifecycle.start_in_past" and err.value.params["field"] == "start_date"
    consistency_errors(form, today=date(2026, 11, 28))
