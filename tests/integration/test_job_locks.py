"""Jobs that may overlap (issue 11, "What did not hold" 7; "What to build" 7), on SQLite and
PostgreSQL, with two threads or two processes: the daily job, a day's rollup, notice sending and
report publishing each take a database lock; the second copy waits or does nothing and says so;
nothing is written twice; a killed holder leaves no lock behind."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import polars as pl
import pytest
from sqlalchemy import func, select

from core.cluster.backends import PlanBackend
from core.config import PROJECT_ROOT
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow
from core.metrics import persistence as metrics_store
from core.metrics.schema import ROLLUP_SCHEMA
from core.notifications.outbox import enqueue
from core.notifications.sender import deliver_pending
from core.notifications.transport import RecordingTransport
from core.reclaim.daily import run_daily
from core.reports import service as reports
from core.reports.persistence import PublishedReportImmutable
from tests.support import clock
from tests.support.forms import SMALL
from tests.support.people import APPLICANT, HQ_OPS
from tests.support.report_data import rollup_row

WAIT_S = 20  # longest a thread waits for the other side (a hang fails the test instead of blocking it)


def _audits(ctx, action: str) -> int:
    with unit_of_work(ctx.sessions) as s:
        return s.scalar(select(func.count()).select_from(AuditEventRow).where(AuditEventRow.action == action))


def _in_thread(target) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test's assertions
            out["error"] = exc

    thread = threading.Thread(target=run, name="first")
    thread.start()
    return thread, out


# ----------------------------------------------------------------- the daily job


class _PausingBackend(PlanBackend):
    """The plan backend whose dry runs wait until the test lets them go (the first run, mid-step)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()

    def deprovision(self, spec, dry_run=True):
        self.inside.set()
        assert self.go.wait(WAIT_S)
        return super().deprovision(spec, dry_run)


def _expired(ctx) -> int:
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    with unit_of_work(ctx.sessions) as s:
        s.scalars(select(AllocationRow).where(AllocationRow.request_id == r["id"])).one().ends_on = clock.today()
    return r["id"]


def test_two_daily_runs_at_once_one_works_and_the_other_says_another_run_holds_the_lock(ctx):
    request_id = _expired(ctx)
    pausing = _PausingBackend()
    thread, first = _in_thread(lambda: run_daily(sessions=ctx.sessions, today=clock.today(), provisioner=pausing))
    assert pausing.inside.wait(WAIT_S)  # the first run is in its expiry step, holding the lock
    second = run_daily(sessions=ctx.sessions, today=clock.today(), provisioner=PlanBackend())
    pausing.go.set()
    thread.join(WAIT_S)
    assert "error" not in first, first.get("error")
    assert second["locked"] is True and second["message"]["key"] == "rules.job_locked"
    assert second["errors"] == {} and "expiries" not in second
    assert first["result"]["locked"] is False and first["result"]["errors"] == {}
    assert len(first["result"]["expiries"]["reclaimed"]) == 1
    assert _audits(ctx, "reclaim.executed") == _audits(ctx, "allocation.reclaimed") == 1
    assert svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] == "reclaimed"


_HOLDER = """
import sys
from core.db.locks import job_lock
from core.db.session import make_engine
with job_lock(make_engine(sys.argv[1]), sys.argv[2]) as held:
    print("held" if held else "busy", flush=True)
    sys.stdin.read()
"""


def test_a_daily_run_in_another_process_holds_the_lock_until_it_is_killed(ctx, db_url):
    request_id = _expired(ctx)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, db_url, "daily_job"], cwd=PROJECT_ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_daily(sessions=ctx.sessions, today=clock.today(), provisioner=PlanBackend())["locked"] is True
        assert _audits(ctx, "reclaim.executed") == 0
    finally:
        holder.kill()  # kill -9: the holder never releases anything itself
        holder.wait(WAIT_S)
    done = run_daily(sessions=ctx.sessions, today=clock.today(), provisioner=PlanBackend())
    assert done["locked"] is False and len(done["expiries"]["reclaimed"]) == 1
    assert svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] == "reclaimed"


def test_the_daily_command_run_twice_at_once_exits_0_saying_another_run_holds_the_lock(ctx, cli):
    from core.db.locks import job_lock

    with job_lock(ctx.sessions, "daily_job") as held:
        assert held
        code, out, err = cli("reclaim", "daily")
    assert (code, err) == (0, "") and "holds its lock" in out


# ----------------------------------------------------------------- publishing


def test_two_publishers_at_once_the_second_is_told_the_report_is_published(ctx, monkeypatch):
    draft = reports.build_draft(sessions=ctx.sessions, actor=HQ_OPS, month=clock.month(-1), scope="HQ")
    inside, second_done = threading.Event(), threading.Event()
    real = reports.deidentify

    def slow(snapshot):  # the first publisher pauses inside its transaction
        if threading.current_thread().name == "first":
            inside.set()
            second_done.wait(2)
        return real(snapshot)

    monkeypatch.setattr(reports, "deidentify", slow)
    thread, first = _in_thread(lambda: reports.publish(sessions=ctx.sessions, actor=HQ_OPS, report_id=draft["id"],
                                                       deidentified=True))
    assert inside.wait(WAIT_S)
    with pytest.raises(PublishedReportImmutable) as err:
        reports.publish(sessions=ctx.sessions, actor=HQ_OPS, report_id=draft["id"], deidentified=True)
    second_done.set()
    thread.join(WAIT_S)
    assert "error" not in first, repr(first.get("error"))
    assert first["result"]["status"] == "published" and err.value.key == "reports.immutable"
    assert _audits(ctx, "report.publish") == 1


# ----------------------------------------------------------------- a day's rollup


class _Rolled:
    """A metrics source handing back one day's rollup rows."""

    def __init__(self, rows: pl.DataFrame) -> None:
        self.rows = rows

    def daily_gpu_stats(self, day, *, step_s=60):
        return self.rows


def test_two_rollups_of_one_day_at_once_take_turns_and_store_the_day_once(ctx, monkeypatch):
    day = clock.day(-1)
    rows = pl.DataFrame([rollup_row(day, f"GPU-{i}", "hq-beijing-2", "H20", f"ns-{i % 3}", 0.5, 0.4)
                         for i in range(12)], schema=ROLLUP_SCHEMA)
    inside, second_done = threading.Event(), threading.Event()
    real = metrics_store.replace_day

    def slow(session, d, frame, now=None):  # the first run pauses with the day replaced, not committed
        counts = real(session, d, frame, now=now)
        if threading.current_thread().name == "first":
            inside.set()
            second_done.wait(2)
        return counts

    monkeypatch.setattr(metrics_store, "replace_day", slow)
    store = lambda: metrics_store.rollup_and_store(sessions=ctx.sessions, source=_Rolled(rows), day=day)  # noqa: E731
    thread, first = _in_thread(store)
    assert inside.wait(WAIT_S)
    second = store()  # waits for the first, then replaces the day again
    second_done.set()
    thread.join(WAIT_S)
    assert "error" not in first, repr(first.get("error"))
    assert first["result"]["inserted"] == second["inserted"] == rows.height
    assert second["deleted"] == rows.height  # it came after the first had committed
    with unit_of_work(ctx.sessions) as s:
        assert metrics_store.count_rows(s, day) == rows.height


# ----------------------------------------------------------------- notice sending


class _PausingTransport(RecordingTransport):
    """Records mails; the first send waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()

    def send(self, mail) -> None:
        self.inside.set()
        assert self.go.wait(WAIT_S)
        super().send(mail)


def test_two_notice_runs_at_once_the_second_does_nothing_and_says_so(ctx):
    with unit_of_work(ctx.sessions) as s:
        for i in range(3):
            enqueue(s, dedup_key=f"expiry:lock-test:{i}", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email,
                    lang="en", template="expiry_notice",
                    params={"namespace": f"ns-{i}", "days_left": 3, "expires_on": clock.iso(3)})
    pausing, other = _PausingTransport(), RecordingTransport()
    thread, first = _in_thread(lambda: deliver_pending(sessions=ctx.sessions, transport=pausing))
    assert pausing.inside.wait(WAIT_S)
    second = deliver_pending(sessions=ctx.sessions, transport=other)
    pausing.go.set()
    thread.join(WAIT_S)
    assert "error" not in first, repr(first.get("error"))
    assert second.locked is True and second.sent == 0 and other.sent == []
    assert first["result"].locked is False and first["result"].sent == 3 and len(pausing.sent) == 3


# ----------------------------------------------------------------- SQLite lock files


def test_a_sqlite_lock_file_is_gone_after_its_holder_and_waiters_still_take_turns(tmp_path):
    """Many threads, each with its own open of the lock file, take one lock by turns while every
    holder removes the file on release: never two inside at once, and no file left behind."""
    from sqlalchemy import create_engine

    from core.db.locks import job_lock, lock_file

    database = tmp_path / "portal.db"
    engine = create_engine(f"sqlite:///{database}")
    inside, most, done = [0], [0], []
    guard = threading.Lock()

    def worker(k: int) -> None:
        for _ in range(20):
            with job_lock(engine, "rollup:2026-11-01", wait=WAIT_S) as held:
                assert held
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                threading.Event().wait(0.001)
                with guard:
                    inside[0] -= 1
        done.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 3)
    assert sorted(done) == list(range(6)) and most[0] == 1
    assert not lock_file(database, "rollup:2026-11-01").exists()
    with job_lock(engine, "rollup:2026-11-01") as held:  # free again, and taken without waiting
        assert held and lock_file(database, "rollup:2026-11-01").exists()
    assert list(tmp_path.glob("*.lock")) == []
    engine.dispose()
