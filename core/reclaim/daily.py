"""The daily job (``python -m core reclaim daily``): expiry notices, expiries, retained data whose
notice period ended, scheduled allocations whose start date has come (provisioned now), the last
complete month's warnings and reclaim candidates, and provisioning runs that died (marked failed
so they can be retried).

Every step is idempotent (dedup keys and unique keys), so running it again after a run that failed
midway does only what is still missing. Two runs at once (a cron overlap, two replicas) do not
race: the job holds the database lock ``daily_job`` (:func:`core.db.locks.job_lock`) and a second
run that finds it held does nothing and says so (``locked``). A step that fails is reported and
the others still run.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.cluster.backends import Provisioner
from core.db.locks import job_lock
from core.errors import ComputeLoopError
from core.lifecycle import provisioning
from core.reclaim import services, warning_service
from core.reclaim.common import SYSTEM
from core.reclaim.warnings import previous_month

log = logging.getLogger(__name__)

LOCK = "daily_job"


def run_daily(*, sessions: sessionmaker[Session], today: date, provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Run every daily step for ``today``; returns what each did (and ``errors`` per step).

    When another run holds the job's lock, nothing is done: ``{"locked": True, "message": {...}}``
    (a message key saying so) with no steps and no errors.
    """
    month = previous_month(today)
    out: dict[str, Any] = {"today": today.isoformat(), "month": month, "errors": {}, "locked": False}
    with job_lock(sessions, LOCK) as held:
        if not held:
            log.info("daily job for %s: another run holds the lock; nothing done", today)
            out.update(locked=True, message={"key": "rules.job_locked", "params": {"job": LOCK}})
            return out
        steps = {
            "notices": lambda: services.send_expiry_notices(sessions=sessions, today=today),
            "expiries": lambda: services.reclaim_expired(sessions=sessions, today=today, provisioner=provisioner),
            "data_release": lambda: services.release_retained_data(sessions=sessions, today=today,
                                                                   provisioner=provisioner),
            "scheduled": lambda: provisioning.start_scheduled(sessions=sessions, today=today, provisioner=provisioner),
            "warnings": lambda: warning_service.raise_warnings(sessions=sessions, actor=SYSTEM, month=month),
            "candidates": lambda: services.detect_candidates(sessions=sessions, actor=SYSTEM, month=month),
            "stalled_provisioning": lambda: provisioning.recover_stalled(sessions=sessions, actor=SYSTEM),
        }
        for name, step in steps.items():
            try:
                out[name] = step()
            except ComputeLoopError as exc:
                log.warning("daily step %s failed: %s", name, exc)
                out["errors"][name] = {"key": exc.key, "message": str(exc)}
    return out
