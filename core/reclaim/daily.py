"""The daily job (``python -m core reclaim daily``): expiry notices, expiries, retained data whose
notice period ended, the last complete month's warnings and reclaim candidates, and provisioning
runs that died (marked failed so they can be retried).

Every step is idempotent (dedup keys and unique keys), so running it twice, or again after a
run that failed midway, does only what is still missing — safe from cron or a Kubernetes CronJob.
A step that fails is reported and the others still run.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.cluster.backends import Provisioner
from core.errors import ComputeLoopError
from core.lifecycle import provisioning
from core.reclaim import services, warning_service
from core.reclaim.common import SYSTEM
from core.reclaim.warnings import previous_month

log = logging.getLogger(__name__)


def run_daily(*, sessions: sessionmaker[Session], today: date, provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Run every daily step for ``today``; returns what each did (and ``errors`` per step)."""
    month = previous_month(today)
    steps = {
        "notices": lambda: services.send_expiry_notices(sessions=sessions, today=today),
        "expiries": lambda: services.reclaim_expired(sessions=sessions, today=today, provisioner=provisioner),
        "data_release": lambda: services.release_retained_data(sessions=sessions, today=today, provisioner=provisioner),
        "warnings": lambda: warning_service.raise_warnings(sessions=sessions, actor=SYSTEM, month=month),
        "candidates": lambda: services.detect_candidates(sessions=sessions, actor=SYSTEM, month=month),
        "stalled_provisioning": lambda: provisioning.recover_stalled(sessions=sessions, actor=SYSTEM),
    }
    out: dict[str, Any] = {"today": today.isoformat(), "month": month, "errors": {}}
    for name, step in steps.items():
        try:
            out[name] = step()
        except ComputeLoopError as exc:
            log.warning("daily step %s failed: %s", name, exc)
            out["errors"][name] = {"key": exc.key, "message": str(exc)}
    return out
