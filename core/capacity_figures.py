"""The capacity figures (资源水位), each defined once: the water level, the published board, the
Apply check and the approvals all compute them through these functions.

Per pool (a cluster, a GPU model or the fleet is the sum of its pools), on one day:

* **total** — the pool's GPUs: those of the inventory nodes labelled with the pool when the
  caller read the inventory (the water level), else the pool's size in ``data/org.yaml`` (what
  the capacity checks grant against). :func:`total`.
* **allocated** — GPUs the portal granted that count against the pool on that day
  (:func:`counts_on`): an allocation held now (approved, provisioning, failed — the approval
  stands — or active) and a scheduled one from its start date; on a past day, an allocation
  from its start date until the day it was released. Observed usage never enters it.
* **reserved** — in a reserve pool (strategic reserve, dynamic reserve), its GPUs not allocated:
  held back for the committee's and the green channel's grants, never given to an ordinary
  request; 0 in every other pool. :func:`reserved`.
* **available** — total − allocated − reserved, never below 0: what an ordinary request can
  still be granted on that day. A busy GPU of an allocation is inside "allocated", so it is never
  available. :func:`available`. (The Apply check's "free" of an ordinary pool for a one-day window
  from today is this figure; for a reserve pool it is the reserve's own free GPUs, "reserved".)
* **in use** — GPUs observed busy: utilisation at least ``water_level.in_use_util`` of
  ``data/metrics_thresholds.yaml`` (:func:`busy`), whoever runs on them.
* **in use without an allocation** — the busy GPUs whose namespace no allocation counting on that
  day owns (or that run in no namespace): legacy usage ops must bring under management. The
  portal's grants do not know these GPUs, so they are not subtracted from "available"; this
  figure says how many there are.

Over a month (the board) each figure is the mean over the month's days (up to the day the report
is built, for the current month) of the day's figure: allocated and reserved from the
allocations of each day, in use from the daily rollups — a GPU-day whose mean utilisation reaches
the threshold counts for the hours it was observed, divided by 24 × the days counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from core.lifecycle.allocations import COMMITTED, booking
from core.org import Pool

# The figures in the order pages show them.
FIGURES: tuple[str, ...] = ("total", "allocated", "reserved", "available", "in_use", "in_use_unallocated")


# --------------------------------------------------------------------------- allocations


@dataclass(frozen=True)
class Holding:
    """An allocation as the figures see it: its pool and GPUs, status, window, release day and namespace."""

    pool: str
    gpus: int
    status: str
    starts_on: date | None
    ends_on: date | None
    released_on: date | None = None
    namespace: str | None = None

    @classmethod
    def from_mapping(cls, a: Mapping[str, Any]) -> "Holding":
        """From a report's allocation dict (``pool, gpus, status, starts_on, ends_on, released_on,
        namespace``); without a status, a released one is ``released`` and any other ``active``."""
        status = a.get("status") or ("released" if a.get("released_on") else "active")
        return cls(str(a.get("pool") or ""), int(a.get("gpus") or 0), status, a.get("starts_on"), a.get("ends_on"),
                   a.get("released_on"), a.get("namespace") or None)


def counts_on(h: Holding, day: date, today: date) -> bool:
    """Whether ``h`` counts against its pool on ``day`` (see the module docstring).

    From today on, the booking rule of the capacity checks
    (:func:`core.lifecycle.allocations.booking`); on a past day, what happened: from its start date
    (always, when it has none) until the day it was released (a held allocation past its end date
    and not reclaimed yet still counts).
    """
    if day >= today:
        b = booking(h.pool, h.gpus, h.status, h.starts_on, h.ends_on, today)
        return b is not None and b.start <= day < b.end
    if h.starts_on is not None and h.starts_on > day:
        return False
    if h.released_on is not None:
        return day < h.released_on
    if h.status == "scheduled":
        return h.ends_on is None or day < h.ends_on
    return h.status in COMMITTED


def allocated_on(holdings: Iterable[Holding], day: date, today: date) -> dict[str, int]:
    """GPUs allocated per pool on ``day`` (pools with none are left out)."""
    out: dict[str, int] = {}
    for h in holdings:
        if h.gpus and counts_on(h, day, today):
            out[h.pool] = out.get(h.pool, 0) + h.gpus
    return out


def owned_on(holdings: Iterable[Holding], day: date, today: date) -> set[str]:
    """Namespaces owned on ``day`` by an allocation that counts then."""
    return {h.namespace for h in holdings if h.namespace and counts_on(h, day, today)}


# --------------------------------------------------------------------------- one pool, one day


def total(pool: Pool, on_nodes: int | None = None) -> int:
    """The pool's GPUs: ``on_nodes`` (GPUs of the inventory nodes carrying the pool) when known,
    else its size in ``data/org.yaml``."""
    return int(pool.gpus if on_nodes is None else on_nodes)


def reserved(pool: Pool, size: float, allocated: float) -> float:
    """GPUs of a reserve pool not allocated (held back from ordinary requests); 0 elsewhere."""
    return max(size - allocated, 0) if pool.is_reserve else 0


def available(pool: Pool, size: float, allocated: float) -> float:
    """total − allocated − reserved, never below 0."""
    return max(size - allocated - reserved(pool, size, allocated), 0)


@dataclass(frozen=True)
class Figures:
    """The :data:`FIGURES` of a pool (or a sum of pools); GPU counts on a day, means over a month.
    ``in_use`` and ``in_use_unallocated`` are None when nothing was observed (no metrics read)."""

    total: float
    allocated: float
    reserved: float
    available: float
    in_use: float | None = None
    in_use_unallocated: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The figures by name."""
        return asdict(self)


def pool_figures(pool: Pool, *, allocated: float, size: float | None = None, in_use: float | None = None,
                 in_use_unallocated: float | None = None) -> Figures:
    """The figures of ``pool`` on one day, from its allocated GPUs (and its observed usage)."""
    size = total(pool) if size is None else size
    return Figures(size, allocated, reserved(pool, size, allocated), available(pool, size, allocated),
                   in_use, in_use_unallocated)


def summed(figures: Iterable[Figures]) -> Figures:
    """The sum of several pools' figures (observed ones stay None only when none was observed)."""
    listed = list(figures)

    def add(name: str) -> float | None:
        values = [getattr(f, name) for f in listed if getattr(f, name) is not None]
        return sum(values) if values or name not in ("in_use", "in_use_unallocated") else None

    return Figures(**{name: add(name) for name in FIGURES})


# --------------------------------------------------------------------------- observed usage


def busy(util: str, threshold: float) -> pl.Expr:
    """The one test of a GPU in use: its utilisation column ``util`` at least ``threshold``."""
    return pl.col(util) >= threshold


def usage(rows: pl.DataFrame, owned: pl.DataFrame, threshold: float, *, by: str = "pool",
          util: str = "util", weight: str = "weight") -> dict[Any, tuple[float, float]]:
    """Per value of ``by``: (in use, in use without an allocation) — the summed ``weight`` of the
    busy rows, and of those whose namespace ``owned`` does not list.

    ``rows`` carry ``by``, ``namespace``, ``util`` and ``weight`` (1 per GPU for a live reading;
    the share of the period a GPU-day was observed for a month) and, for a month, ``day``;
    ``owned`` lists the owned ``namespace`` (with ``day`` when the rows have one). Rows whose
    ``by`` is null (a GPU of no known pool) are grouped under None.
    """
    if rows.height == 0:
        return {}
    keys = ["namespace", "day"] if "day" in owned.columns else ["namespace"]
    marked = owned.select(keys).unique().with_columns(_owned=pl.lit(True))
    hot = rows.filter(busy(util, threshold)).join(marked, on=keys, how="left")
    agg = hot.group_by(by).agg(pl.col(weight).sum().alias("in_use"),
                               pl.col(weight).filter(pl.col("_owned").is_null()).sum().alias("unallocated"))
    return {r[by]: (float(r["in_use"]), float(r["unallocated"] or 0.0)) for r in agg.to_dicts()}


def owned_frame(holdings: Sequence[Holding], days: Sequence[date], today: date) -> pl.DataFrame:
    """(day, namespace) of every namespace owned on each of ``days``."""
    rows = [(d, ns) for d in days for ns in owned_on(holdings, d, today)]
    return pl.DataFrame(rows, schema={"day": pl.Date, "namespace": pl.Utf8}, orient="row")


# --------------------------------------------------------------------------- a month


def month_days(first: date, last: date, today: date) -> list[date]:
    """The days a month's means are taken over: every day of the month, except the days after
    ``today`` when the month holds today."""
    end = min(last, today) if first <= today <= last else last
    return [first + timedelta(days=i) for i in range((end - first).days + 1)]


@dataclass(frozen=True)
class MonthFigures:
    """A month's mean figures per pool, per GPU model and for the scope, and the month-end allocation."""

    days: list[date]
    pools: dict[str, Figures]
    models: dict[str, Figures]
    scope: Figures
    allocated_at_end: dict[str, int]
    unattributed_in_use: float


def month_figures(pools: Sequence[Pool], holdings: Sequence[Holding], rows: pl.DataFrame, *, first: date,
                  last: date, today: date, threshold: float) -> MonthFigures:
    """The month's figures of ``pools`` (see the module docstring).

    ``rows`` are the month's rollup rows of the scope with ``pool`` (null: not attributable to a
    pool), ``model``, ``namespace``, ``mean_util``, ``day`` and ``hours`` (observed hours).
    """
    days = month_days(first, last, today)
    n = len(days)
    mine = [h for h in holdings if h.pool in {p.id for p in pools}]
    daily = [allocated_on(mine, d, today) for d in days]
    counted = set(days)
    frame = rows.filter(pl.col("day").is_in(sorted(counted))) if rows.height else rows
    if frame.height:
        frame = frame.with_columns(weight=pl.col("hours") / (24.0 * n))
        owned = owned_frame(mine, days, today)
        by_pool = usage(frame, owned, threshold, by="pool", util="mean_util")
        by_model = usage(frame, owned, threshold, by="model", util="mean_util")
    else:
        by_pool, by_model = {}, {}
    out: dict[str, Figures] = {}
    for p in pools:
        per_day = [pool_figures(p, allocated=a.get(p.id, 0)) for a in daily]
        mean = {k: sum(getattr(f, k) for f in per_day) / n for k in ("total", "allocated", "reserved", "available")}
        used, unowned = by_pool.get(p.id, (0.0, 0.0))
        out[p.id] = Figures(**mean, in_use=used, in_use_unallocated=unowned)
    models: dict[str, Figures] = {}
    for model in sorted({p.gpu for p in pools}):
        part = summed(out[p.id] for p in pools if p.gpu == model)
        used, unowned = by_model.get(model, (0.0, 0.0))
        models[model] = Figures(part.total, part.allocated, part.reserved, part.available, used, unowned)
    in_use = sum(v[0] for v in by_model.values())
    unowned = sum(v[1] for v in by_model.values())
    scope = summed(out.values())
    scope = Figures(scope.total, scope.allocated, scope.reserved, scope.available, in_use, unowned)
    return MonthFigures(days, out, models, scope, allocated_on(mine, last, today),
                        by_pool.get(None, (0.0, 0.0))[0])
