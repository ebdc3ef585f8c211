"""Who owned a namespace in a month — the owner of its warnings and reclaim candidates.

In order:

1. **allocation** — the portal allocation that held the namespace in the month: its window
   (``starts_on`` through the day before ``ends_on``, or through its release day) overlaps the
   month; when several did, the one holding it on the most days of the month (then the latest).
   Owner, department, province (the request's unit) and pool are the allocation's.
2. **team_mapping** — none did: the organisation's namespace→team mapping
   (``data/namespace_teams.yaml``), first matching entry. Department and province from the entry,
   the owner only when the entry names one.
3. **none** — neither: legacy usage with no owner. Province and pool still come from where the
   namespace ran (the pool of its nodes, else the only pool of its cluster and GPU model — the
   board's rule), so the province's ops see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase
from typing import Any, Iterable

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import aware
from core.datafiles import load_derived
from core.errors import InputError
from core.lifecycle.persistence import HOLDING_ALLOCATION, AllocationRow, RequestRow
from core.org import Org, load_org
from core.reclaim.warnings import month_bounds

SOURCES: tuple[str, ...] = ("allocation", "team_mapping", "none")


@dataclass(frozen=True)
class TeamEntry:
    """One entry of ``data/namespace_teams.yaml``."""

    namespace: str
    department: str
    owner: str = ""
    email: str = ""
    project: str = ""


@dataclass(frozen=True)
class Owned:
    """A namespace's owner in a month and where it ran."""

    namespace: str
    source: str
    owner: str = ""
    email: str = ""
    department: str = ""
    unit: str = ""
    pool_id: str = ""
    project: str = ""
    allocation_id: int | None = None
    request_id: int | None = None
    number: str | None = None
    demand_type: str = ""
    gpus: int = 0
    holding: bool = True  # the allocation still holds its GPUs (legacy usage: assumed running)
    span: tuple[date, date] | None = None  # the days of the month the allocation held it
    first_seen: date | None = None  # the first day of the month with usage

    def as_dict(self) -> dict[str, Any]:
        """The fields a warning or candidate view shows."""
        return {"owner": self.owner, "owner_source": self.source, "department": self.department,
                "unit": self.unit, "pool": self.pool_id, "allocation_id": self.allocation_id,
                "request_id": self.request_id}


def _build_teams(raw: Any) -> tuple[TeamEntry, ...]:
    org = load_org()
    out = []
    for i, entry in enumerate((raw or {}).get("teams") or []):
        where = f"teams[{i}]"
        try:
            team = TeamEntry(**{str(k): str(v or "") for k, v in (entry or {}).items()})
        except TypeError:
            raise InputError("error.data_entry_invalid", field="namespace_teams.yaml", entry=where) from None
        if not team.namespace.strip() or team.department not in org.departments or (
                team.project and team.project not in org.projects):
            raise InputError("error.data_entry_invalid", field="namespace_teams.yaml",
                             entry=f"{where} {team.namespace}")
        out.append(team)
    return tuple(out)


def load_team_mapping() -> tuple[TeamEntry, ...]:
    """``data/namespace_teams.yaml``, checked against the organisation (a typo names its entry)."""
    return load_derived("namespace_teams.yaml", _build_teams)


def team_of(namespace: str, teams: Iterable[TeamEntry]) -> TeamEntry | None:
    """The first entry whose namespace (or pattern) matches ``namespace``."""
    return next((t for t in teams if fnmatchcase(namespace, t.namespace)), None)


def held_span(starts_on: date | None, ends_on: date | None, released_on: date | None,
              first: date, last: date) -> tuple[date, date] | None:
    """The days of ``first``..``last`` an allocation held its namespace (inclusive), or None.

    ``ends_on`` is exclusive (start + granted days); the release day itself still counts (the
    namespace ran that day)."""
    if starts_on is None:
        return None
    end = last
    if ends_on is not None:
        end = min(end, ends_on - timedelta(days=1))
    if released_on is not None:
        end = min(end, released_on)
    start = max(starts_on, first)
    return (start, end) if start <= end else None


def _places(frame: pl.DataFrame, org: Org, node_pools: dict[str, str]) -> dict[str, tuple[str, str, date, int]]:
    """Namespace → (pool, unit, first day seen, GPUs seen): the pool and cluster where it used the
    most GPU-hours."""
    from core.reports.build import _row_pools  # the board's rule for placing a row in a pool

    rows = frame.filter(pl.col("namespace") != "")
    if rows.height == 0:
        return {}
    rows = _row_pools(rows, org, node_pools)
    seen = {r["namespace"]: (r["first"], r["gpus"]) for r in rows.group_by("namespace").agg(
        pl.col("day").min().alias("first"), pl.col("uuid").n_unique().alias("gpus")).to_dicts()}
    top = (rows.group_by("namespace", "cluster", "pool").agg(pl.col("allocated_gpu_hours").sum().alias("h"))
           .sort(["namespace", "h", "cluster"], descending=[False, True, False])
           .unique(subset="namespace", keep="first", maintain_order=True))
    out: dict[str, tuple[str, str, date, int]] = {}
    for r in top.to_dicts():
        cluster = org.clusters.get(r["cluster"])
        first, gpus = seen[r["namespace"]]
        out[r["namespace"]] = (r["pool"] or "", cluster.unit if cluster else "", first, int(gpus))
    return out


def _from_allocation(ns: str, alloc: AllocationRow, req: RequestRow, span: tuple[date, date], org: Org,
                     first_seen: date | None) -> Owned:
    dept = org.departments.get(req.department)
    return Owned(namespace=ns, source="allocation", owner=req.created_by, email=req.created_by_email or "",
                 department=req.department, unit=req.unit or (dept.unit if dept else ""), pool_id=alloc.pool_id,
                 project=req.project, allocation_id=alloc.id, request_id=req.id, number=req.number,
                 demand_type=req.demand_type, gpus=alloc.gpus, holding=alloc.status in HOLDING_ALLOCATION,
                 span=span, first_seen=first_seen)


def owners_in_month(s: Session, namespaces: Iterable[str], month: str, frame: pl.DataFrame,
                    org: Org | None = None, node_pools: dict[str, str] | None = None) -> dict[str, Owned]:
    """The owner of each of ``namespaces`` in ``month`` (see the module docstring).

    Args:
        frame: the month's rollup rows (at least those of ``namespaces``): where each one ran.
        node_pools: hostname → pool of the GPU nodes (default: the offline inventory's).
    One query for the allocations, whatever the number of namespaces.
    """
    names = sorted({n for n in namespaces if n})
    if not names:
        return {}
    org = org or load_org()
    first, last = month_bounds(month)
    if node_pools is None:
        from core.reports.service import node_pools as inventory_pools

        node_pools = inventory_pools()
    places = _places(frame.filter(pl.col("namespace").is_in(names)), org, node_pools)
    best: dict[str, tuple[tuple, AllocationRow, RequestRow, tuple[date, date]]] = {}
    query = (select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id)
             .where(AllocationRow.namespace.in_(names)))
    for alloc, req in s.execute(query):
        released = aware(alloc.released_at).date() if alloc.released_at else None
        start = alloc.starts_on or (aware(alloc.created_at).date() if alloc.created_at else None)
        span = held_span(start, alloc.ends_on, released, first, last)
        if span is None:
            continue
        rank = ((span[1] - span[0]).days, span[0], alloc.id)
        if alloc.namespace not in best or rank > best[alloc.namespace][0]:
            best[alloc.namespace] = (rank, alloc, req, span)
    teams = load_team_mapping()
    out: dict[str, Owned] = {}
    for ns in names:
        pool, unit, seen, gpus = places.get(ns, ("", "", None, 0))
        if ns in best:
            _, alloc, req, span = best[ns]
            out[ns] = _from_allocation(ns, alloc, req, span, org, seen)
            continue
        team = team_of(ns, teams)
        if team is not None:
            out[ns] = Owned(namespace=ns, source="team_mapping", owner=team.owner, email=team.email,
                            department=team.department, unit=org.departments[team.department].unit, pool_id=pool,
                            project=team.project, gpus=gpus, first_seen=seen)
        else:
            out[ns] = Owned(namespace=ns, source="none", unit=unit, pool_id=pool, gpus=gpus, first_seen=seen)
    return out
