"""Provisioning backends that fail on purpose: one that raises, one whose run dies mid-way."""

from __future__ import annotations

from core.cluster.backends import ClusterError, PlanBackend

QUOTA_STEP = "ResourceQuota/allocation"


class RaisingBackend:
    """A fake backend that raises at one step (as a broken adapter would)."""

    name = "fake"

    def __init__(self, step: str = QUOTA_STEP) -> None:
        self.step = step
        self.calls = 0

    def provision(self, spec):
        self.calls += 1
        raise ClusterError("cluster.api_error", step=self.step, status=500, reason="injected")

    def deprovision(self, spec, dry_run=True):
        return []


class DyingBackend(PlanBackend):
    """The process dies in the middle of a run (as on a restart of the app or the job's pod)."""

    def provision(self, spec):
        raise KeyboardInterrupt
