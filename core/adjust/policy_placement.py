"""Where each autoscaling policy runs: the pool (and so the cluster and province) of the allocation
that holds the policy's namespace — what the alert rules (:mod:`core.cluster.alert_rules`) are
rendered and routed by."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.adjust.persistence import ScalingPolicyRow
from core.adjust.services import _policy_of
from core.cluster.alert_rules import PlacedPolicy
from core.db.session import unit_of_work
from core.identity import OPS_ROLES, Identity, require
from core.lifecycle.persistence import HOLDING_ALLOCATION, AllocationRow
from core.lifecycle.provisioning import pool_in_scope
from core.org import load_org

# Ops, and the jobs that render the rules for GitOps (``python -m core alerts render``).
PLACEMENT_ROLES = OPS_ROLES | {"system"}
ALERT_RULES_JOB = Identity(id="system:alert-rules", name="ComputeLoop", email="", role="system")


@dataclass(frozen=True)
class Placement:
    """The placed policies, and the ``namespace/deployment`` of those no holding allocation places."""

    placed: tuple[PlacedPolicy, ...]
    unplaced: tuple[str, ...]


def placed_policies(*, sessions: sessionmaker[Session], actor: Identity) -> Placement:
    """Every autoscaling policy with the pool of the allocation holding its namespace (one query
    each for policies and allocations, whatever their number); provincial ops get their
    province's only.

    Raises:
        PermissionDenied: not ops, an admin or a system job.
    """
    require(actor, PLACEMENT_ROLES, "render alert rules")
    org = load_org()
    with unit_of_work(sessions) as s:
        pools = dict(s.execute(select(AllocationRow.namespace, AllocationRow.pool_id)
                               .where(AllocationRow.namespace.is_not(None),
                                      AllocationRow.status.in_(HOLDING_ALLOCATION))
                               .order_by(AllocationRow.id)).all())
        rows = s.scalars(select(ScalingPolicyRow).order_by(ScalingPolicyRow.namespace, ScalingPolicyRow.deployment))
        policies = [_policy_of(r) for r in rows]
    placed, unplaced = [], []
    for policy in policies:
        pool = pools.get(policy.namespace)
        if pool is not None and pool not in org.pools:
            pool = None  # a pool since removed from data/org.yaml: nothing to route it by
        if pool is not None and not pool_in_scope(actor, org, pool):
            continue
        if pool is None:
            if actor.role != "prov_ops":
                unplaced.append(f"{policy.namespace}/{policy.deployment}")
            continue
        placed.append(PlacedPolicy(policy, pool))
    return Placement(tuple(placed), tuple(unplaced))
