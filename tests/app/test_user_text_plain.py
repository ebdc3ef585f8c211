"""AppTest: text people type is shown as typed, not rendered as Markdown (issue 11, item 8).

A warning reply holding a link and a remote image, and a rejection reason holding a link and a
heading, reach the page escaped (core.text.plain): the markdown element's body has no ``[text](url)``
or ``![alt](url)`` left that Streamlit would turn into a link or an image. A reply longer than
data/input_limits.yaml allows is refused on the page with the field named.
"""

from __future__ import annotations

import os

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine, unit_of_work
from core.lifecycle import services as lifecycle
from core.reclaim.persistence import WarningRow
from core.text import input_limits, plain
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, text
from tests.support.forms import training_form
from tests.support.people import APPLICANT, HQ_OPS

LINK = "[click](http://evil)"
IMAGE = "![x](http://evil/x.png)"


def _ctx():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    return build(url)


def _seed_warning() -> int:
    ctx = _ctx()
    now = clock.now()
    with unit_of_work(ctx.sessions) as s:
        w = WarningRow(resource="a-ns-1", month=f"{clock.month_start(-1):%Y-%m}", level="yellow", status="new",
                       owner=APPLICANT.id, department="digital", unit="HQ", pool_id="hq-ft", util=0.05, mem=0.1,
                       gpu_hours=744.0, coverage=0.9, days_in_scope=31, days_observed=28, series=[],
                       created_at=now, updated_at=now, new_at=now)
        s.add(w)
        s.flush()
        wid = w.id
    ctx.engine.dispose()
    return wid


def _unescaped(body: str) -> bool:
    """True when ``body`` still holds the link or the image as Markdown would read them."""
    return LINK in body or IMAGE in body or "](http" in body


def test_a_warning_reply_with_a_link_and_an_image_is_shown_as_text():
    wid = _seed_warning()
    at = open_page("app_pages/warnings.py", persona=APPLICANT.id)
    at.selectbox(key="warn_pick").set_value(wid).run()
    at.text_area(key="warn_reply").input(f"see {LINK} and {IMAGE}")
    at.button(key="warn_send").click().run()
    no_exceptions(at)
    bodies = [m.value for m in at.markdown if "click" in m.value]
    assert bodies, [m.value for m in at.markdown]
    assert not [b for b in bodies if _unescaped(b)], bodies
    assert any(plain(f"see {LINK} and {IMAGE}") in b for b in bodies), bodies


def test_a_reply_over_the_limit_is_refused_naming_the_field():
    wid = _seed_warning()
    limit = input_limits()["reply"]
    at = open_page("app_pages/warnings.py", persona=APPLICANT.id)
    at.selectbox(key="warn_pick").set_value(wid).run()
    at.text_area(key="warn_reply").input("x" * (limit + 1))
    at.button(key="warn_send").click().run()
    no_exceptions(at)
    refusal = text("error.field_prefix", field=text("fieldname.reply")) + " " + text("input.too_long", length=limit + 1, limit=limit)
    assert refusal in [e.value for e in at.error], [e.value for e in at.error]
    assert not [m.value for m in at.markdown if "xxxxxxxxxx" in m.value]       # nothing was stored


def test_a_rejection_reason_with_a_link_and_a_heading_is_shown_as_text():
    ctx = _ctx()
    request = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT,
                               form=training_form(requested_gpus=16, duration_days=10))   # waits for HQ ops
    lifecycle.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"], decision="reject",
                     reason=f"# No\n{LINK}")
    ctx.engine.dispose()
    at = open_page("app_pages/my_requests.py", persona=APPLICANT.id)
    at.selectbox(key="myreq_table").select(request["id"]).run()
    no_exceptions(at)
    bodies = [m.value for m in at.markdown if "click" in m.value]
    assert bodies and not [b for b in bodies if _unescaped(b) or "\n# No" in b or b.startswith("# No")], bodies
    assert any(plain(f"# No\n{LINK}") in b for b in bodies), bodies
