"""AppTest: the inbox filters by kind and unread, opening a notice marks it read, a notice about a
request links to it (My requests for the applicant, Approvals for the approver, and the link opens
that request), and an approval item of a withdrawn request says no action is needed."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.lifecycle import services as lifecycle
from core.notifications import list_inbox
from tests.support import app_scenarios as scenarios
from tests.support.app_run import APP, no_exceptions, open_page, shows, text
from tests.support.expanders import set_expander

PAGE = "app_pages/inbox.py"


def _links(at) -> list[tuple[str, str]]:
    """(page, query string) of every link in the page's main area."""
    return [(link.proto.page, link.proto.query_string) for link in at.main.get("page_link")]


def _request_links(at, request_id: int) -> list[str]:
    """The pages the links to ``request_id`` open."""
    return [page for page, query in _links(at) if f"request={request_id}&" in query + "&"]


def test_the_applicant_filters_by_kind_and_unread_opens_a_notice_which_is_then_read_and_links_to_the_request(app_ctx):
    zhang = scenarios.persona("zhang.wei")
    view = lifecycle.submit(sessions=app_ctx.sessions, actor=zhang, form=scenarios.form(4, start_offset=0))
    at = open_page(PAGE)
    no_exceptions(at)
    # submitted, approved (automatic), allocation ready: three kinds, three unread
    assert len(at.expander) == 3, [e.label for e in at.expander]
    assert shows(at.caption, "inbox.unread", count=3)
    assert _request_links(at, view["id"]) == ["my-requests"] * 3

    at.selectbox(key="inbox_kind").select("decision").run()
    no_exceptions(at)
    [decision] = at.expander
    assert view["number"] in decision.label and decision.label.startswith("● ")

    at = set_expander(at, view["number"])  # the person opens it
    no_exceptions(at)
    assert shows(at.caption, "inbox.unread", count=2)
    [decision] = at.expander
    assert not decision.label.startswith("● ") and decision.proto.expanded  # read, and it stays open
    read = [n for n in list_inbox(sessions=app_ctx.sessions, actor=zhang) if not n["unread"]]
    assert [n["kind"] for n in read] == ["decision"]

    at.toggle(key="inbox_unread").set_value(True).run()
    assert len(at.expander) == 0
    assert shows(at.info, "inbox.none_match")
    at.selectbox(key="inbox_kind").select("all").run()
    no_exceptions(at)
    assert len(at.expander) == 2 and all(e.label.startswith("● ") for e in at.expander)


def test_an_approval_notice_opens_approvals_and_after_a_withdrawal_says_no_action_is_needed(app_ctx):
    zhang = scenarios.persona("zhang.wei")
    view = lifecycle.submit(sessions=app_ctx.sessions, actor=zhang, form=scenarios.form(16))
    at = open_page(PAGE, persona="li.na")
    at.selectbox(key="inbox_kind").select("approval").run()
    no_exceptions(at)
    [item] = at.expander
    assert view["number"] in item.label and text("inbox.no_action") not in item.label
    assert shows(at.warning, "inbox.action_needed")
    assert _request_links(at, view["id"]) == ["approvals"]

    # the link: Approvals with ?request=<id> opens that request
    follow = AppTest.from_file(APP, default_timeout=60)
    follow.query_params.update({"persona": "li.na", "lang": "en"})
    follow.run()
    follow.switch_page("app_pages/approvals.py")
    follow.query_params["request"] = str(view["id"])
    follow.run()
    no_exceptions(follow)
    assert follow.selectbox(key="approvals_table").value == view["id"]
    assert "request" not in follow.query_params  # opened once: picking another request is not undone

    lifecycle.cancel(sessions=app_ctx.sessions, actor=zhang, request_id=view["id"], reason="需求取消")
    for lang in ("en", "zh-CN"):
        at = open_page(PAGE, persona="li.na", lang=lang)
        at.selectbox(key="inbox_kind").select("approval").run()
        no_exceptions(at)
        [item] = at.expander
        assert item.label.endswith(text("inbox.no_action", lang)), item.label
        assert shows(at.success, "inbox.no_action.withdrawn", lang)
        assert not shows(at.warning, "inbox.action_needed", lang)
        assert _request_links(at, view["id"]) == ["my-requests"]  # nothing waits in Approvals any more


def test_every_kind_of_notice_has_its_icon_and_a_support_notice_reaches_the_inbox_at_once(app_ctx):
    """A notice is in the inbox as soon as it is queued (no e-mail run needed), whatever its kind."""
    from datetime import timedelta

    from core.adjust import support
    from core.notifications.templates import KINDS, OTHER_KIND
    from tests.support import clock
    from ui.inbox_view import KIND_ICON

    assert set(KIND_ICON) == {*KINDS, OTHER_KIND}
    raised = support.raise_request(sessions=app_ctx.sessions, actor=scenarios.persona("chen.jing"), pool="js-pool",
                                   gpus=4, starts_on=clock.today(), ends_on=clock.today() + timedelta(days=7),
                                   reason="副本已占满", namespace="js-llm-serving")
    at = open_page(PAGE, persona="li.na", lang="zh-CN")
    no_exceptions(at)
    assert any(f"#{raised['id']}" in e.label for e in at.expander), [e.label for e in at.expander]
