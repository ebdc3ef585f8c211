"""The water-level trend (:func:`core.metrics.water_level.trend`) summed in the database.

:func:`core.metrics.water_level.trends` groups daily rollup rows per pool and day (or month).
Reading every row of 30 days for it (≈ 465,000 rows on a 10k-GPU fleet) cost 3 s; the figures
are only sums, so here the database sums them and Python reads one row per pool and day.

A rollup row's pool is that of its node in the inventory (``hostname`` → ``pool``, nodes of no
pool left out), which the database does not hold: the inventory's (hostname, pool) pairs go in
as one JSON parameter that the database turns into a table (SQLite's ``json_each``, PostgreSQL's
``json_array_elements``) joined on ``hostname`` — the same inner join the polars path makes. As a
``VALUES`` list of two bind parameters a node it cost 1.1 s of SQLAlchemy compiling for the 12,600
nodes of a 100,800-GPU fleet, and SQLite's limit of 32,766 parameters stopped at some 16,000 nodes.

One query, :func:`pool_day_sums`: per pool and day Σ allocated GPU-hours, Σ used GPU-hours,
Σ ``mean_util × samples`` of the rows with a utilisation and Σ ``samples`` of those rows. The rows
of ``gpu_daily_rollups`` with ``day`` between ``first`` and ``last`` (the ``day`` index keeps it to
those days) are summed per node and day first, then those sums per pool and day: joining every
row to the node list made SQLite index the whole table on ``hostname`` at each read (1.2 s on a
10k-GPU fleet, against 0.55 s).

:func:`trend_frame` derives the trend from them exactly as ``trends`` does: per pool and period
(the day, or the first day of its month) the sums of its days, and the mean utilisation =
Σ ``mean_util × samples`` ÷ Σ ``samples`` (NaN when no row has a utilisation, as polars divides
0 by 0). The figures equal the polars path's up to the order floating-point sums are taken in
(tests/integration/test_water_level_trend_sql.py).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Iterable

import polars as pl
from sqlalchemy import String, case, column, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause

from core.metrics.persistence import GpuDailyRollupRow as R
from core.metrics.water_level import TREND_SCHEMA

SUMS_SCHEMA = {"pool": pl.Utf8, "day": pl.Date, "allocated_gpu_hours": pl.Float64, "used_gpu_hours": pl.Float64,
               "util_weighted": pl.Float64, "util_samples": pl.Int64}


def pool_day_sums(session: Session, first: date, last: date, node_pools: Iterable[tuple[str, str]]) -> pl.DataFrame:
    """Per pool and day (:data:`SUMS_SCHEMA`) the sums of the rollup rows with ``first <= day <= last``
    on the nodes of ``node_pools`` — (hostname, pool) pairs, one per inventory node (pool "" left out)."""
    pairs = [(str(h), str(p)) for h, p in node_pools if p != ""]
    if not pairs:
        return pl.DataFrame(schema=SUMS_SCHEMA)
    nodes = _node_pools(session, pairs)
    rated = R.mean_util.is_not(None)
    per_host = (select(R.hostname, R.day,
                       func.sum(R.allocated_gpu_hours).label("allocated"), func.sum(R.used_gpu_hours).label("used"),
                       func.sum(case((rated, R.mean_util * R.samples), else_=0.0)).label("weighted"),
                       func.sum(case((rated, R.samples), else_=0)).label("samples"))
                .where(R.day.between(first, last)).group_by(R.day, R.hostname).subquery())
    query = (select(nodes.c.pool, per_host.c.day, func.sum(per_host.c.allocated), func.sum(per_host.c.used),
                    func.sum(per_host.c.weighted), func.sum(per_host.c.samples))
             .join_from(per_host, nodes, nodes.c.hostname == per_host.c.hostname)
             .group_by(nodes.c.pool, per_host.c.day))
    rows = [(pool, day, float(alloc or 0), float(used or 0), float(w or 0), int(n or 0))
            for pool, day, alloc, used, w, n in session.execute(query)]
    return pl.DataFrame(rows, schema=SUMS_SCHEMA, orient="row")


# The pairs as a table, per database the portal runs on (SQLite, PostgreSQL).
_JSON_TABLES = {
    "sqlite": "SELECT json_extract(value, '$[0]') AS hostname, json_extract(value, '$[1]') AS pool "
              "FROM json_each(:nodes)",
    "postgresql": "SELECT x ->> 0 AS hostname, x ->> 1 AS pool FROM json_array_elements(CAST(:nodes AS json)) AS x",
}


def _node_pools(session: Session, pairs: list[tuple[str, str]]) -> FromClause:
    """The (hostname, pool) pairs as a table with those two columns, sent as one JSON parameter."""
    sql = _JSON_TABLES[session.get_bind().dialect.name]
    return (text(sql).bindparams(nodes=json.dumps(pairs, ensure_ascii=False))
            .columns(column("hostname", String), column("pool", String)).subquery("node_pools"))


def trend_frame(sums: pl.DataFrame, *, period: str = "day") -> pl.DataFrame:
    """Per pool and day (``period="day"``) or month (its first day): :data:`TREND_SCHEMA` from
    :func:`pool_day_sums` (``period`` is checked by the caller)."""
    if sums.height == 0:
        return pl.DataFrame(schema=TREND_SCHEMA)
    key = pl.col("day") if period == "day" else pl.col("day").dt.truncate("1mo")
    return (sums.with_columns(period=key).group_by("pool", "period")
            .agg(pl.col("allocated_gpu_hours").sum(), pl.col("used_gpu_hours").sum(),
                 (pl.col("util_weighted").sum() / pl.col("util_samples").sum()).alias("mean_util"))
            .select([pl.col(c).cast(t) for c, t in TREND_SCHEMA.items()]).sort("pool", "period"))
