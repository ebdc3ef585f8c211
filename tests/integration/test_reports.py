"""Publishing reports on SQLite and PostgreSQL: drafts, immutable published snapshots, corrections,
de-identification and who may read what."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text

from core.db.models import OutboxRow
from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import PermissionDenied, load_personas
from core.reports import service as reports
from core.reports.persistence import PublishedReportImmutable, ReportRow
from tests.support.report_data import seed_rollups

PEOPLE = {p.id: p for p in load_personas()}
OPS, APPLICANT, EXEC = PEOPLE["li.na"], PEOPLE["zhang.wei"], PEOPLE["wang.qiang"]


def _published(ctx, deidentified=True):
    seed_rollups(ctx)
    draft = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    return reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"], deidentified=deidentified)


def test_a_draft_holds_the_numbers_and_notifies_ops_once(ctx):
    seed_rollups(ctx)
    first = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    again = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    assert first["id"] == again["id"] and again["version"] == 1 and again["status"] == "draft"
    assert again["snapshot"]["economics"]["gpu_hours_used"] == pytest.approx(2 * (21.6 + 0.24))
    with unit_of_work(ctx.sessions) as s:
        notices = s.scalars(select(OutboxRow).where(OutboxRow.template == "report_draft_ready")).all()
        assert {n.recipient_id for n in notices} == {"li.na", "zhao.min"}


def test_publish_freezes_the_snapshot_and_every_update_is_refused(ctx):
    pub = _published(ctx)
    assert pub["status"] == "published" and pub["published_by"] == "li.na"
    with pytest.raises(PublishedReportImmutable):
        reports.publish(sessions=ctx.sessions, actor=OPS, report_id=pub["id"])
    with pytest.raises(PublishedReportImmutable):  # the ORM hook
        with unit_of_work(ctx.sessions) as s:
            s.get(ReportRow, pub["id"]).coverage = 0.0
    with pytest.raises(Exception):  # the database trigger, even for raw SQL
        with unit_of_work(ctx.sessions) as s:
            s.execute(text("UPDATE reports SET coverage = 0 WHERE id = :id"), {"id": pub["id"]})
    with pytest.raises(Exception):
        with unit_of_work(ctx.sessions) as s:
            s.execute(text("DELETE FROM reports WHERE id = :id"), {"id": pub["id"]})
    again = reports.get_report(sessions=ctx.sessions, actor=EXEC, report_id=pub["id"])
    assert again["snapshot"] == pub["snapshot"] and again["coverage"] == pub["coverage"]


def test_a_correction_is_version_2_with_its_reason_and_version_1_stays_readable(ctx):
    pub = _published(ctx)
    with pytest.raises(InputError) as err:
        reports.correct(sessions=ctx.sessions, actor=OPS, report_id=pub["id"], reason="  ")
    assert err.value.field == "reason"
    draft = reports.correct(sessions=ctx.sessions, actor=OPS, report_id=pub["id"], reason="energy double counted")
    v2 = reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"])
    assert v2["version"] == 2 and v2["correction_reason"] == "energy double counted" and v2["supersedes"] == pub["id"]
    versions = reports.list_reports(sessions=ctx.sessions, actor=EXEC, month="2026-03", scope="HQ")
    assert [v["version"] for v in versions] == [2, 1]
    assert reports.get_report(sessions=ctx.sessions, actor=EXEC, report_id=pub["id"])["version"] == 1
    assert reports.latest_published(sessions=ctx.sessions, actor=EXEC, month="2026-03", scope="HQ")["version"] == 2


def test_de_identification_masks_owner_names_and_shows_projects_by_code(ctx):
    seed_rollups(ctx)
    draft = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    with unit_of_work(ctx.sessions) as s:  # a draft may change: give one entity an owner and a project
        row = s.get(ReportRow, draft["id"])
        snap = dict(row.snapshot)
        snap["entities"] = [{**snap["entities"][0], "kind": "project", "id": "P-LLM-01", "name_zh": "光明电力大模型",
                             "name_en": "Guangming power LLM", "owner": "张伟"}, {**snap["entities"][1], "owner": "zhang.wei"}]
        row.snapshot = snap
    pub = reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"], deidentified=True)
    ents = pub["snapshot"]["entities"]
    assert [e["owner"] for e in ents] == ["张*", "z***"]
    assert ents[0]["name_zh"] == "P-LLM-01" and "光明" not in str(pub["snapshot"])
    assert pub["deidentified"] is True and pub["snapshot"]["deidentified"] is True


def test_executives_and_employees_read_published_reports_only(ctx):
    seed_rollups(ctx)
    draft = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    assert reports.list_reports(sessions=ctx.sessions, actor=EXEC) == []
    assert reports.list_reports(sessions=ctx.sessions, actor=APPLICANT) == []
    for reader in (EXEC, APPLICANT):
        with pytest.raises(PermissionDenied):
            reports.get_report(sessions=ctx.sessions, actor=reader, report_id=draft["id"])
    with pytest.raises(PermissionDenied):
        reports.build_draft(sessions=ctx.sessions, actor=APPLICANT, month="2026-03", scope="HQ")
    with pytest.raises(PermissionDenied):
        reports.publish(sessions=ctx.sessions, actor=EXEC, report_id=draft["id"])
    reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"])
    assert [r["id"] for r in reports.list_reports(sessions=ctx.sessions, actor=APPLICANT)] == [draft["id"]]


def test_provincial_ops_build_only_their_province(ctx):
    prov = PEOPLE["chen.jing"]
    with pytest.raises(PermissionDenied):
        reports.build_draft(sessions=ctx.sessions, actor=prov, month="2026-03", scope="HQ")
    assert reports.build_draft(sessions=ctx.sessions, actor=prov, month="2026-03", scope="JS")["scope"] == "JS"


def test_the_monthly_cli_job_builds_the_draft(ctx, monkeypatch, capsys):
    from core.cli import OneLineParser, report

    def run(argv):  # the group on its own parser (the lead wires it into core.cli.build_parser)
        parser = OneLineParser(prog="python -m core")
        report.register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
        args = parser.parse_args(argv)
        try:
            return args.handler(args)
        except InputError:
            return 2

    seed_rollups(ctx)
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", ctx.engine.url.render_as_string(hide_password=False))
    assert run(["report", "monthly", "--month", "2026-03", "--scope", "HQ", "--json"]) == 0
    assert '"status": "draft"' in capsys.readouterr().out
    assert run(["report", "monthly", "--month", "2026-3"]) == 2


def test_the_report_lists_the_months_warnings_and_reclaims(ctx):
    from datetime import datetime, timezone

    from core.reclaim.persistence import ReclaimRecordRow, WarningRow
    from core.reports.service import reclaims_of_month, warnings_of_month

    now = datetime(2026, 10, 15, tzinfo=timezone.utc)
    with ctx.sessions.begin() as s:
        s.add(WarningRow(resource="ns-idle", month="2026-10", level="yellow", status="new", owner="zhang.wei",
                         department="digital", unit="HQ", pool_id="hq-inf", util=0.05, mem=0.1, gpu_hours=700.0,
                         coverage=0.98, days_in_scope=31, days_observed=31, series=[], created_at=now, updated_at=now))
        s.add(WarningRow(resource="ns-js", month="2026-10", level="orange", status="new", owner="x", department="js-it",
                         unit="JS", pool_id="js-pool", util=0.9, mem=0.8, gpu_hours=900.0, coverage=1.0,
                         days_in_scope=31, days_observed=31, series=[], created_at=now, updated_at=now))
        s.add(ReclaimRecordRow(dedup_key="return:1", kind="return", status="completed", pool_id="hq-ft", gpus=4,
                               release_gpus=4, owner="zhang.wei", department="digital", reason="done", voluntary=True,
                               created_by="zhang.wei", created_at=now))
    with ctx.sessions() as s:
        hq = warnings_of_month(s, "2026-10", "HQ")
        assert hq["available"] and [w["resource"] for w in hq["items"]] == ["ns-idle"]
        assert len(warnings_of_month(s, "2026-10", "company")["items"]) == 2
        rec = reclaims_of_month(s, "2026-10", "company")
        assert rec["available"] and rec["items"][0]["voluntary"] is True
        assert reclaims_of_month(s, "2026-09", "company")["items"] == []


# --------------------------------------------------------------------------- permission matrix

OK, DENIED, HIDDEN = "ok", "denied", "hidden"   # HIDDEN: the call works but the HQ draft is not in its answer
BY_ROLE = {"applicant": APPLICANT, "prov_ops_other": PEOPLE["chen.jing"], "hq_ops": OPS,
           "dept_head": PEOPLE["zhou.lei"], "committee": PEOPLE["sun.li"], "executive": EXEC, "admin": PEOPLE["zhao.min"]}
assert BY_ROLE["prov_ops_other"].role == "prov_ops" and BY_ROLE["prov_ops_other"].province != "HQ"
OPS_ONLY = [DENIED, DENIED, OK, DENIED, DENIED, DENIED, OK]
EVERYONE = [OK] * 7
MATRIX: dict[str, dict[str, str]] = {
    #                        applicant  prov_ops(JS)  hq_ops  dept_head  committee  executive  admin
    "preview":               dict(zip(BY_ROLE, OPS_ONLY)),
    "build_draft":           dict(zip(BY_ROLE, OPS_ONLY)),
    "publish":               dict(zip(BY_ROLE, OPS_ONLY)),
    "correct":               dict(zip(BY_ROLE, OPS_ONLY)),
    "analysis_report":       dict(zip(BY_ROLE, OPS_ONLY)),
    "list_reports_draft":    dict(zip(BY_ROLE, [HIDDEN, HIDDEN, OK, HIDDEN, HIDDEN, HIDDEN, OK])),
    "get_report_draft":      dict(zip(BY_ROLE, OPS_ONLY)),
    "list_reports_published": dict(zip(BY_ROLE, EVERYONE)),
    "get_report_published":  dict(zip(BY_ROLE, EVERYONE)),
    "latest_published":      dict(zip(BY_ROLE, EVERYONE)),
}


def _report_call(service: str, ctx, actor, draft_id: int, published_id: int) -> str:
    from core.reports import analysis

    common = {"sessions": ctx.sessions, "actor": actor}
    month = {"month": "2026-03", "scope": "HQ"}
    if service == "list_reports_draft":
        return OK if draft_id in [r["id"] for r in reports.list_reports(**common)] else HIDDEN
    if service == "list_reports_published":
        return OK if published_id in [r["id"] for r in reports.list_reports(**common)] else HIDDEN
    {
        "preview": lambda: reports.preview(**common, **month),
        "build_draft": lambda: reports.build_draft(**common, **month),
        "publish": lambda: reports.publish(**common, report_id=draft_id),
        "correct": lambda: reports.correct(**common, report_id=published_id, reason="recount"),
        "analysis_report": lambda: analysis.analysis_report(**common, **month),
        "get_report_draft": lambda: reports.get_report(**common, report_id=draft_id),
        "get_report_published": lambda: reports.get_report(**common, report_id=published_id),
        "latest_published": lambda: reports.latest_published(**common, **month)["id"],
    }[service]()
    return OK


@pytest.mark.parametrize("service", sorted(MATRIX))
def test_permission_matrix_every_report_service_for_every_role(ctx, service):
    """An HQ report of March 2026 published (v1) and a fresh HQ draft per role; the role acts on them."""
    published = _published(ctx, deidentified=False)
    outcomes = {}
    for role, actor in BY_ROLE.items():
        draft = reports.correct(sessions=ctx.sessions, actor=OPS, report_id=published["id"], reason="fresh draft")
        try:
            outcomes[role] = _report_call(service, ctx, actor, draft["id"], published["id"])
        except PermissionDenied:
            outcomes[role] = DENIED
    assert outcomes == MATRIX[service]


def test_provincial_ops_read_their_provinces_drafts_and_no_other(ctx):
    seed_rollups(ctx)
    prov = PEOPLE["chen.jing"]
    hq = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    js = reports.build_draft(sessions=ctx.sessions, actor=prov, month="2026-03", scope="JS")
    assert [r["id"] for r in reports.list_reports(sessions=ctx.sessions, actor=prov)] == [js["id"]]
    assert reports.get_report(sessions=ctx.sessions, actor=prov, report_id=js["id"])["scope"] == "JS"
    with pytest.raises(PermissionDenied):
        reports.get_report(sessions=ctx.sessions, actor=prov, report_id=hq["id"])
    assert {r["id"] for r in reports.list_reports(sessions=ctx.sessions, actor=OPS)} == {hq["id"], js["id"]}
    published = reports.publish(sessions=ctx.sessions, actor=OPS, report_id=hq["id"])  # published: everyone reads it
    assert {r["id"] for r in reports.list_reports(sessions=ctx.sessions, actor=prov)} == {js["id"], published["id"]}
    assert reports.get_report(sessions=ctx.sessions, actor=prov, report_id=hq["id"])["status"] == "published"


def test_incidents_count_every_failed_provisioning_run_from_the_audit_trail(ctx, monkeypatch):
    """A request whose provisioning failed twice (a step raised) and whose third run died counts three times."""
    from datetime import timedelta, timezone

    from core.lifecycle import provisioning as prov
    from core.lifecycle import services as svc
    from core.cluster.backends import PlanBackend
    from tests.support.forms import MEDIUM
    from tests.support.backends import DyingBackend, RaisingBackend

    monkeypatch.setattr(prov, "backend_for", lambda org: RaisingBackend())
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)
    svc.decide(sessions=ctx.sessions, actor=OPS, request_id=r["id"], decision="approve", reason="ok")      # fails: 1
    prov.retry(sessions=ctx.sessions, actor=OPS, request_id=r["id"], provisioner=RaisingBackend())        # fails: 2
    with pytest.raises(KeyboardInterrupt):                                                                  # dies: 3
        prov.retry(sessions=ctx.sessions, actor=OPS, request_id=r["id"], provisioner=DyingBackend())
    with ctx.sessions() as s:
        since = s.get(svc.RequestRow, r["id"]).provisioning_at
    later = (since if since.tzinfo else since.replace(tzinfo=timezone.utc)) + timedelta(
        minutes=prov.load_provisioning_defaults().stalled_after_minutes + 1)
    assert prov.recover_stalled(sessions=ctx.sessions, actor=OPS, now=later) == [r["id"]]
    assert prov.retry(sessions=ctx.sessions, actor=OPS, request_id=r["id"], provisioner=PlanBackend())["status"] == "active"

    with ctx.sessions() as s:
        events = reports.provision_failures(s, date(2000, 1, 1), date(2100, 1, 1))
    assert [(e["request_id"], e["cause"], e["attempt"]) for e in events] == [
        (r["id"], "failed", 1), (r["id"], "failed", 2), (r["id"], "interrupted", None)]
    month = events[0]["at"].strftime("%Y-%m")
    in_month = sum(e["at"].strftime("%Y-%m") == month for e in events)   # the dead run is found minutes later
    hq = reports.build_draft(sessions=ctx.sessions, actor=OPS, month=month, scope="HQ")["snapshot"]["health"]["incidents"]
    assert hq["count"] == in_month and hq["requests"] == 1 and hq["items"][0]["step"] == "ResourceQuota/allocation"
    js = reports.build_draft(sessions=ctx.sessions, actor=OPS, month=month, scope="JS")["snapshot"]["health"]["incidents"]
    assert js["count"] == 0 and js["available"] is True
