"""Why a service is not a reclaim candidate (the reason keys the Reclaim page translates), and who
owned a namespace in a month: an allocation's days, the organisation's namespace mapping, and the
scope rule that lets provincial ops read their province's rows."""

from __future__ import annotations

import calendar
from datetime import timedelta

import polars as pl
import pytest

from core.errors import InputError
from core.i18n import LANGS, translate
from core.identity import Identity, load_personas
from core.metrics.schema import ROLLUP_SCHEMA
from core.org import load_org
from core.reclaim import common
from core.reclaim.candidates import REASONS, check_services, is_inference, reasons_not_candidate
from core.reclaim.ownership import TeamEntry, _build_teams, held_span, load_team_mapping, team_of
from core.reclaim.policy import load_policy
from tests.support import clock

POLICY = load_policy()  # peak below 0.20, a day counts from coverage 0.80, at least 7 counted days
FIRST = clock.month_start(-1)
DAYS = calendar.monthrange(FIRST.year, FIRST.month)[1]
LAST = FIRST + timedelta(days=DAYS - 1)
MONTH = FIRST.strftime("%Y-%m")


def _day(n: int):
    return FIRST + timedelta(days=n - 1)


def _check(peaks: dict[int, float], coverage: float = 1.0):
    rows = [{"day": _day(d), "cluster": "c", "hostname": "n1", "uuid": "GPU-1", "model": "L20", "namespace": "svc",
             "mean_util": 0.05, "peak_util": p, "mean_mem": 0.05, "peak_mem": p, "allocated_gpu_hours": 24.0,
             "used_gpu_hours": 1.2, "energy_kwh": 1.0, "samples": 1440, "expected_samples": 1440,
             "coverage": coverage} for d, p in peaks.items()]
    [c] = check_services(pl.DataFrame(rows, schema=ROLLUP_SCHEMA), MONTH, ["svc"], POLICY)
    return c


def _keys(check, *, inference=True, holding=True, days_present=DAYS) -> list[str]:
    return [r["key"] for r in reasons_not_candidate(check, inference=inference, holding=holding,
                                                    days_present=days_present, policy=POLICY)]


IDLE = {d: 0.10 for d in range(1, DAYS + 1)}


def test_an_idle_inference_service_that_holds_its_gpus_has_no_reason_not_to_be_a_candidate():
    c = _check(IDLE)
    assert c.candidate and _keys(c) == []


def test_each_rule_that_keeps_a_service_off_the_candidates_gives_its_own_reason():
    assert _keys(_check(IDLE), inference=False) == ["not_inference"]
    assert _keys(_check(IDLE), inference=None) == ["kind_unknown"]
    assert _keys(_check(IDLE), holding=False) == ["released"]
    late = _check({d: 0.10 for d in range(DAYS - 2, DAYS + 1)})
    assert _keys(late, days_present=3) == ["created_mid_month"]
    # it existed all month but only three days had enough samples
    assert _keys(late) == ["low_coverage"]
    assert _keys(_check(IDLE, coverage=0.79)) == ["low_coverage"]
    busy = _check({**IDLE, 12: 0.20})  # exactly the threshold is not below it
    assert _keys(busy) == ["busy_day"]
    [reason] = reasons_not_candidate(busy, inference=True, holding=True, days_present=DAYS, policy=POLICY)
    assert reason == {"key": "busy_day", "count": 1, "first": _day(12).isoformat(), "peak": 0.20, "threshold": 0.20}
    # several at once, in a fixed order
    assert _keys(busy, inference=False, holding=False) == ["not_inference", "released", "busy_day"]


def test_every_reason_reads_in_both_languages_with_its_parameters():
    params = {"days": 3, "min_days": 7, "min_coverage": 0.8, "count": 1, "first": FIRST.isoformat(), "peak": 0.55,
              "threshold": 0.2}
    for key in REASONS:
        for lang in LANGS:
            text = translate(f"reclaim.why.{key}", lang, **params)
            assert text and "{" not in text and key not in text, (key, lang, text)


def test_an_inference_service_is_one_in_an_inference_pool_or_of_the_inference_demand_type():
    assert is_inference("inference", "training", True, POLICY) is True
    assert is_inference("provincial", "inference", True, POLICY) is True
    assert is_inference("training_finetune", "training", True, POLICY) is False
    assert is_inference("inference", "", False, POLICY) is True
    assert is_inference("provincial", "", False, POLICY) is None  # usage nobody allocated: not known
    assert is_inference(None, "", False, POLICY) is None


def test_an_allocation_holds_its_namespace_from_its_start_to_the_day_before_its_end_or_its_release_day():
    assert held_span(_day(1), LAST + timedelta(days=1), None, FIRST, LAST) == (FIRST, LAST)
    assert held_span(FIRST - timedelta(days=30), _day(11), None, FIRST, LAST) == (FIRST, _day(10))  # end exclusive
    assert held_span(_day(5), None, _day(8), FIRST, LAST) == (_day(5), _day(8))  # the release day ran
    assert held_span(_day(5), None, None, FIRST, LAST) == (_day(5), LAST)
    assert held_span(LAST + timedelta(days=1), None, None, FIRST, LAST) is None  # starts after the month
    assert held_span(FIRST - timedelta(days=9), FIRST, None, FIRST, LAST) is None  # ended the day before
    assert held_span(None, None, None, FIRST, LAST) is None


def test_the_namespace_mapping_takes_the_first_matching_entry_and_refuses_an_unknown_department():
    teams = (TeamEntry("cs-old-*", "marketing"), TeamEntry("cs-*", "digital"), TeamEntry("js-infer", "js-it"))
    assert team_of("cs-old-7", teams).department == "marketing"
    assert team_of("cs-new", teams).department == "digital"
    assert team_of("js-infer", teams).department == "js-it" and team_of("js-infer-2", teams) is None
    assert _build_teams({"teams": [{"namespace": "a-*", "department": "research", "owner": "sun.li"}]}) == (
        TeamEntry("a-*", "research", owner="sun.li"),)
    for bad in ({"namespace": "a", "department": "nowhere"}, {"namespace": "", "department": "research"},
                {"namespace": "a", "department": "research", "project": "P-NONE"}, {"namespace": "a", "team": "x"}):
        with pytest.raises(InputError) as exc:
            _build_teams({"teams": [bad]})
        assert exc.value.params["field"] == "namespace_teams.yaml"
    assert isinstance(load_team_mapping(), tuple)  # the shipped file loads


def test_provincial_ops_may_see_rows_of_their_province_by_unit_or_department():
    org = load_org()
    js_ops = {p.id: p for p in load_personas()}["chen.jing"]
    hq_applicant = Identity("x", "X", "x@example.com", "applicant", department="数字化部")
    no_dept = Identity("y", "Y", "y@example.com", "applicant")
    assert common.may_see(js_ops, org, "", "", "JS")  # legacy usage on the Jiangsu cluster
    assert common.may_see(js_ops, org, "js-it", "someone", "HQ")  # a Jiangsu department on an HQ pool
    assert not common.may_see(js_ops, org, "digital", "zhang.wei", "HQ")
    assert not common.may_see(js_ops, org, "", "", "")
    assert common.may_see(hq_applicant, org, "digital") and not common.may_see(hq_applicant, org, "", "", "HQ")
    assert not common.may_see(no_dept, org, "", "", "HQ")  # no department: not everyone's legacy rows
