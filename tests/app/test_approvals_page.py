"""AppTest: a provincial request goes through the L1 initial review, then the L2 assessment; each
reviewer sees which step their decision is."""

from __future__ import annotations

import os

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.demo import JS_APPLICANT, _training_form
from core.lifecycle import services as lifecycle
from tests.support.app_run import no_exceptions, open_page, text


def test_l1_reviews_then_l2_assesses_a_provincial_request():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    r = lifecycle.submit(sessions=ctx.sessions, actor=JS_APPLICANT,
                         form=_training_form(project="P-JS-06", department="js-it", applicant=JS_APPLICANT.name,
                                             pool="js-pool", gpu="A800-80GB", gpus=8, days=7))
    l1 = open_page("app_pages/approvals.py", persona="chen.jing")
    l1.selectbox(key="approvals_table").set_value(r["id"]).run()
    no_exceptions(l1)
    step1 = text("review.your_step", seq=1, total=2, step=text("role.prov_ops_l1"))
    assert step1 in [c.value for c in l1.caption], [c.value for c in l1.caption]
    l1.radio(key="rv_decision").set_value("approve")
    l1.text_area(key="rv_reason").input("初审通过")
    next(b for b in l1.button if b.label == text("review.submit")).click().run()
    no_exceptions(l1)
    assert text("review.decided") in [s.value for s in l1.success]

    l2 = open_page("app_pages/approvals.py", persona="wu.hao", lang="zh-CN")
    l2.selectbox(key="approvals_table").set_value(r["id"]).run()
    no_exceptions(l2)
    step2 = text("review.your_step", "zh-CN", seq=2, total=2, step=text("role.prov_ops_l2", "zh-CN"))
    assert step2 in [c.value for c in l2.caption], [c.value for c in l2.caption]
    # the L1 operator has nothing more to do on it
    again = open_page("app_pages/approvals.py", persona="chen.jing")
    no_exceptions(again)
    assert not again.dataframe or r["number"] not in again.dataframe[0].value.to_string()
