"""Preemption and defragmentation (碎片整理) simulations on a pool's nodes — pure functions.

Allocations do not record their nodes, so the node layout is *replayed*: every allocation the
pool ever held is placed when it was granted and removed when it was released, in time order,
the way a bin-packing scheduler fills nodes (multi-node work takes empty nodes first; work that
fits on one node goes to the fullest node with room — best fit). Released work leaves holes:
that is the fragmentation. With live placement (pods' nodes) the same functions take a layout
read from the cluster instead.

:func:`simulate_preemption` removes the chosen allocations; :func:`simulate_defragmentation`
repacks the running ones (largest first, best fit) into as few nodes as possible. Both return
free GPUs per node before and after and the waiting requests that would then fit. Moving
running work between nodes cannot be done from the portal: applying a defragmentation means
recording the agreed regrouping plan for the ops team.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from core.adjust.queue import Waiting, fits, nodes_needed


@dataclass(frozen=True)
class Placed:
    """An allocation as the layout sees it."""

    allocation_id: int
    number: str
    gpus: int
    granted_at: datetime
    released_at: datetime | None = None
    priority: str = "normal"


def node_sizes(pool_gpus: int, gpus_per_node: int) -> list[int]:
    """GPUs per node of a pool (the last node holds the remainder), as :class:`~core.cluster.inventory.FakeInventory`."""
    out, left = [], pool_gpus
    while left > 0:
        out.append(min(gpus_per_node, left))
        left -= out[-1]
    return out


def _place(free: list[int], gpus: int, gpn: int) -> dict[int, int]:
    """Take ``gpus`` from ``free`` (in place); returns node index → GPUs taken."""
    taken: dict[int, int] = {}
    left = gpus
    if gpus > gpn:
        for i, f in enumerate(free):
            if left >= gpn and f == gpn:
                taken[i] = f
                free[i] = 0
                left -= f
    if left > 0:
        room = [i for i, f in enumerate(free) if f >= left]
        if room:
            i = min(room, key=lambda j: (free[j], j))
            taken[i] = taken.get(i, 0) + left
            free[i] -= left
            left = 0
    while left > 0:  # no single node has room: spread over the emptiest nodes
        i = max(range(len(free)), key=lambda j: (free[j], -j))
        if free[i] <= 0:
            break
        used = min(free[i], left)
        taken[i] = taken.get(i, 0) + used
        free[i] -= used
        left -= used
    return taken


def layout(sizes: Sequence[int], allocations: Sequence[Placed], gpn: int) -> tuple[list[int], dict[int, dict[int, int]]]:
    """Replay grants and releases in time order: (free GPUs per node, allocation → {node: GPUs}) of the holders."""
    free = list(sizes)
    where: dict[int, dict[int, int]] = {}
    events = []
    for a in allocations:
        events.append((a.granted_at, 1, a))
        if a.released_at is not None:
            events.append((a.released_at, 0, a))  # at equal times releases come first
    for _, kind, a in sorted(events, key=lambda e: (e[0], e[1], e[2].allocation_id)):
        if kind == 1:
            where[a.allocation_id] = _place(free, a.gpus, gpn)
        else:
            for i, n in where.pop(a.allocation_id, {}).items():
                free[i] += n
    return free, where


def fitting(waiting: Sequence[Waiting], free_per_node: Sequence[int], gpn: int) -> list[str]:
    """Numbers of waiting requests that fit now, taken in the given (queue) order."""
    free = list(free_per_node)
    out = []
    for w in waiting:
        if fits(w.gpus, free, gpn):
            _place(free, w.gpus, gpn)
            out.append(w.number)
    return out


def _summary(free: Sequence[int], sizes: Sequence[int]) -> dict[str, Any]:
    return {"free_per_node": list(free), "free": sum(free), "whole_free_nodes": sum(1 for f, s in zip(free, sizes) if f == s),
            "largest_block": max(free, default=0)}


def simulate_preemption(pool: str, sizes: Sequence[int], gpn: int, allocations: Sequence[Placed],
                        stop: Sequence[int], waiting: Sequence[Waiting]) -> dict[str, Any]:
    """Free GPUs per node before and after stopping the allocations ``stop``; which waiting requests fit."""
    before, where = layout(sizes, allocations, gpn)
    after = list(before)
    freed = 0
    for aid in stop:
        for i, n in where.get(aid, {}).items():
            after[i] += n
            freed += n
    return {"pool": pool, "stop": list(stop), "freed": freed, "before": _summary(before, sizes),
            "after": _summary(after, sizes), "fits_before": fitting(waiting, before, gpn),
            "fits_after": fitting(waiting, after, gpn)}


def simulate_defragmentation(pool: str, sizes: Sequence[int], gpn: int, allocations: Sequence[Placed],
                             waiting: Sequence[Waiting]) -> dict[str, Any]:
    """Repack the running allocations largest first (best fit): before/after per node, the moves, what then fits."""
    before, where = layout(sizes, allocations, gpn)
    holders = {a.allocation_id: a for a in allocations if a.allocation_id in where}
    after = list(sizes)
    new_where: dict[int, dict[int, int]] = {}
    for a in sorted(holders.values(), key=lambda a: (-a.gpus, a.granted_at, a.allocation_id)):
        new_where[a.allocation_id] = _place(after, a.gpus, gpn)
    moves = [{"allocation_id": aid, "number": holders[aid].number, "gpus": holders[aid].gpus,
              "from": sorted(where[aid]), "to": sorted(new_where[aid])}
             for aid in sorted(holders) if sorted(where[aid]) != sorted(new_where[aid])]
    return {"pool": pool, "before": _summary(before, sizes), "after": _summary(after, sizes), "moves": moves,
            "fits_before": fitting(waiting, before, gpn), "fits_after": fitting(waiting, after, gpn),
            "nodes_needed": {w.number: nodes_needed(w.gpus, gpn) for w in waiting}}
