"""Expiry notices (到期提醒) arrive exactly once at a real SMTP server (aiosmtpd on loopback), across
repeated daily runs and a run that dies midway, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from email.header import decode_header, make_header

import pytest

from core.notifications.sender import deliver_pending
from core.reclaim import services as reclaim
from core.reclaim.daily import run_daily
from tests.support.reclaim import active_allocation as _active

SUBJECT = re.compile(r"命名空间 (\S+) 的资源将在 (\d+) 天后到期")


class Crash(RuntimeError):
    """The daily job's process dying (not a handled ComputeLoopError)."""


def _arrived(smtp) -> Counter:  # noqa: F811 - the fixture object
    """(namespace, days) of every expiry notice the SMTP server accepted, with counts."""
    out: Counter = Counter()
    for m in smtp.handler.messages:
        found = SUBJECT.search(str(make_header(decode_header(m["Subject"]))))
        if found:
            out[(found.group(1), int(found.group(2)))] += 1
    return out


def _deliver(ctx, smtp) -> None:  # noqa: F811
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport)


def test_each_expiry_notice_arrives_once_across_repeated_and_interrupted_daily_runs(ctx, smtp, monkeypatch):  # noqa: F811
    _, a1 = _active(ctx)
    _, a2 = _active(ctx)
    assert a1.ends_on == a2.ends_on and a1.namespace != a2.namespace
    today = a1.ends_on - timedelta(days=7)

    # 1. a run that dies after the first allocation's notice was queued
    real = reclaim.enqueue
    calls = {"n": 0}

    def dies_on_the_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash("killed midway")
        return real(*args, **kwargs)

    monkeypatch.setattr(reclaim, "enqueue", dies_on_the_second)
    with pytest.raises(Crash):
        run_daily(sessions=ctx.sessions, today=today)
    monkeypatch.setattr(reclaim, "enqueue", real)
    _deliver(ctx, smtp)
    assert _arrived(smtp) == Counter({(a1.namespace, 7): 1})

    # 2. the next two runs finish the job and add nothing twice, however often delivery runs
    for _ in range(2):
        run_daily(sessions=ctx.sessions, today=today)
        _deliver(ctx, smtp)
        _deliver(ctx, smtp)
    assert _arrived(smtp) == Counter({(a1.namespace, 7): 1, (a2.namespace, 7): 1})

    # 3. three days and one day before expiry: each notice once more per allocation, twice-run days
    for days in (3, 1):
        for _ in range(2):
            run_daily(sessions=ctx.sessions, today=a1.ends_on - timedelta(days=days))
            _deliver(ctx, smtp)
    assert _arrived(smtp) == Counter({(ns, d): 1 for ns in (a1.namespace, a2.namespace) for d in (7, 3, 1)})
    # every expiry mail has its own Message-ID (derived from the dedup key)
    ids = [m["Message-ID"] for m in smtp.handler.messages if SUBJECT.search(str(make_header(decode_header(m["Subject"]))))]
    assert len(ids) == len(set(ids)) == 6
