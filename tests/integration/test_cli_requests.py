"""``python -m core requests`` on SQLite and PostgreSQL: every operation of the Apply, My requests
and Approvals pages from the command line, JSON output, translated text, one-line errors (exit 2)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from core.lifecycle import services as svc
from core.lifecycle.persistence import RequestRow
from tests.support.cli import json_of as _json, refused as _bad
from tests.support.forms import MEDIUM
from tests.support.people import APPLICANT


def _form(tmp_path, form: dict, name: str = "form.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(form, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _requests(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(RequestRow))


def test_precheck_says_what_submitting_would_say_and_writes_nothing(ctx, cli, tmp_path):
    out = _json(cli("requests", "precheck", "--file", _form(tmp_path, MEDIUM), "--as", "zhang.wei", "--json"))
    assert out["missing"] == [] and out["tier"]["id"] == "standard_ops" and out["tier"]["steps"] == ["hq_ops"]
    assert out["capacity"]["fits"] and out["capacity"]["requested"] == 16
    code, text, _ = cli("requests", "precheck", "--file", _form(tmp_path, MEDIUM), "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and "受理单信息完整" in text and "审批路径（超出标准额度，运营审批）" in text
    incomplete = {k: v for k, v in MEDIUM.items() if k not in ("requested_gpus", "business_background")}
    out = _json(cli("requests", "precheck", "--file", _form(tmp_path, incomplete), "--as", "zhang.wei", "--json"))
    assert {"requested_gpus", "business_background"} <= set(out["missing"]) and out["tier"] is None
    assert _requests(ctx) == 0
    not_object = _form(tmp_path, [1, 2], "list.json")
    _bad(cli("requests", "precheck", "--file", not_object, "--as", "zhang.wei"), names=not_object)
    _bad(cli("requests", "precheck", "--as", "zhang.wei"), names="--file")


def test_a_draft_is_saved_printed_resumed_and_submitted_under_one_id(ctx, cli, tmp_path):
    half = {k: v for k, v in MEDIUM.items() if k != "requested_gpus"}
    saved = _json(cli("requests", "draft", "save", "--file", _form(tmp_path, half), "--as", "zhang.wei", "--json"))
    rid = str(saved["id"])
    assert saved["status"] == "draft" and saved["number"] is None
    form = _json(cli("requests", "draft", "form", rid, "--as", "zhang.wei"))  # always JSON: it is edited and saved again
    assert form["project"] == MEDIUM["project"] and form["requested_gpus"] is None
    # submitting the incomplete draft names the missing field and changes nothing
    _bad(cli("requests", "draft", "submit", rid, "--as", "zhang.wei"), names="requested_gpus")
    assert _json(cli("requests", "show", rid, "--as", "zhang.wei", "--json"))["status"] == "draft"
    # someone else may not resume it
    _bad(cli("requests", "draft", "save", "--id", rid, "--file", _form(tmp_path, MEDIUM), "--as", "li.na"), names="error:")
    form["requested_gpus"] = 16
    again = _json(cli("requests", "draft", "save", "--id", rid, "--file", _form(tmp_path, form, "edited.json"),
                      "--as", "zhang.wei", "--json"))
    assert again["id"] == saved["id"] and again["requested_gpus"] == 16
    code, text, _ = cli("requests", "draft", "save", "--id", rid, "--file", _form(tmp_path, form, "edited.json"),
                        "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and f"草稿 #{rid} 已保存" in text
    submitted = _json(cli("requests", "draft", "submit", rid, "--as", "zhang.wei", "--json"))
    assert submitted["id"] == saved["id"] and submitted["status"] == "submitted" and submitted["number"].startswith("CR-")
    assert _requests(ctx) == 1
    _bad(cli("requests", "draft", "form", rid, "--as", "zhang.wei"), names="is already Submitted; only drafts")
    _bad(cli("requests", "draft", "submit", rid, "--as", "zhang.wei", "--lang", "zh-CN"), names="已处于“已提交”状态")


def test_the_reviewers_queue_claim_feasibility_timeline_and_cancel(ctx, cli):
    rid = str(svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)["id"])
    queue = _json(cli("requests", "pending", "--as", "li.na", "--json"))
    assert [r["id"] for r in queue] == [int(rid)]
    code, text, _ = cli("requests", "pending", "--as", "li.na", "--lang", "zh-CN")
    assert code == 0 and "待第 1/1 步：总部运营" in text and "认领截止" in text
    _bad(cli("requests", "pending", "--as", "zhang.wei"), names="error:")  # applicants approve nothing

    items = _json(cli("requests", "feasibility", rid, "--as", "li.na", "--json"))
    assert {i["id"] for i in items} == {"gpu_fit", "capacity", "storage_fit", "network_domain", "software", "conflict"}
    code, text, _ = cli("requests", "feasibility", rid, "--as", "li.na", "--lang", "zh-CN")
    assert code == 0 and len(text.splitlines()) == 6 and "软硬件兼容性" in text and "资源池余量" in text and "[通过]" in text
    _bad(cli("requests", "feasibility", rid, "--as", "zhang.wei"), names="error:")
    _bad(cli("requests", "feasibility", "abc", "--as", "li.na"), names="argument id")

    claimed = _json(cli("requests", "claim", rid, "--as", "li.na", "--json"))
    assert claimed["status"] == "in_review" and claimed["claimed_by"] == "li.na"
    _bad(cli("requests", "claim", rid, "--as", "li.na"), names="error:")  # not waiting to be claimed any more
    code, text, _ = cli("requests", "pending", "--as", "li.na", "--lang", "zh-CN")
    assert "已由 li.na 认领" in text

    events = _json(cli("requests", "timeline", rid, "--as", "zhang.wei", "--json"))
    assert [e["action"] for e in events] == ["request.created", "request.transition", "request.transition"]
    code, text, _ = cli("requests", "timeline", rid, "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and "状态变更 已提交 → 评估中 认领评估" in text and "request." not in text

    _bad(cli("requests", "cancel", rid, "--reason", "  ", "--as", "zhang.wei"), names="error: reason:")
    _bad(cli("requests", "cancel", rid, "--as", "zhang.wei"), names="--reason")
    cancelled = _json(cli("requests", "cancel", rid, "--reason", "no longer needed", "--as", "zhang.wei", "--json"))
    assert cancelled["status"] == "cancelled"
    assert _json(cli("requests", "pending", "--as", "li.na", "--json")) == []
    assert cli("requests", "pending", "--as", "li.na", "--lang", "zh-CN")[1].strip() == "没有申请。"


def test_text_output_names_roles_step_statuses_and_actions_in_the_chosen_language(ctx, cli):
    rid = str(svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)["id"])
    code, before, _ = cli("requests", "show", rid, "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and "第 1 步 总部运营：待处理" in before and "认领截止" in before
    _json(cli("requests", "decide", rid, "--decision", "approve", "--reason", "ok", "--step", "hq_ops", "--as", "li.na",
              "--json"))
    code, zh, _ = cli("requests", "show", rid, "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and "第 1 步 总部运营：已同意 li.na ok" in zh
    assert "审批环节决定 第 1 步 总部运营：已同意" in zh and "集群资源配置完成 清单交付（GitOps）" in zh
    for raw in ("hq_ops", "claim by", "request.", "allocation.", "step 1", "approved", "pending", "draft→"):
        assert raw not in zh, raw
    code, en, _ = cli("requests", "show", rid, "--as", "zhang.wei")
    assert code == 0 and "step 1 HQ ops: approved li.na ok" in en and "status changed Submitted → In review" in en
