"""Judging a month's services for reclaim: each namespace's owner in the month
(:mod:`core.reclaim.ownership`), the candidate rule (:mod:`core.reclaim.candidates`) and, when a
service is not a candidate, why — one definition for the daily detection and the Reclaim page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import polars as pl
from sqlalchemy.orm import Session

from core.org import Org, load_org
from core.reclaim.candidates import CandidateCheck, check_services, is_inference, reasons_not_candidate
from core.reclaim.ownership import Owned, owners_in_month
from core.reclaim.policy import ReclaimPolicy, load_policy
from core.reclaim.warnings import month_bounds


@dataclass
class Judged:
    """One service's month: its owner, the rule's verdict and the reasons it is not a candidate."""

    owned: Owned
    check: CandidateCheck
    eligible: bool  # an inference service whose GPUs are still held: the rule applies to it
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def candidate(self) -> bool:
        """True when the month makes it a reclaim candidate."""
        return self.eligible and self.check.candidate


def judge(s: Session, frame: pl.DataFrame, month: str, namespaces: Iterable[str], *, org: Org | None = None,
          policy: ReclaimPolicy | None = None, node_pools: dict[str, str] | None = None) -> dict[str, Judged]:
    """Each of ``namespaces`` judged for ``month`` from ``frame`` (the month's rollup rows)."""
    org = org or load_org()
    policy = policy or load_policy()
    owned = owners_in_month(s, namespaces, month, frame, org, node_pools)
    checks = {c.namespace: c for c in check_services(frame, month, owned, policy)}
    _, last = month_bounds(month)
    out: dict[str, Judged] = {}
    for ns, o in owned.items():
        pool = org.pools.get(o.pool_id)
        inference = is_inference(pool.kind if pool else None, o.demand_type, o.source == "allocation", policy)
        if o.span is not None:
            days = (o.span[1] - o.span[0]).days + 1
        else:  # no allocation: it existed from the first day it was seen
            days = (last - o.first_seen).days + 1 if o.first_seen else 0
        check = checks[ns]
        out[ns] = Judged(owned=o, check=check, eligible=bool(inference) and o.holding,
                         reasons=reasons_not_candidate(check, inference=inference, holding=o.holding,
                                                       days_present=days, policy=policy))
    return out
