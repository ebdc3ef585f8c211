"""Demo metrics for `make run`: the demo fleet's GPU samples and their daily rollups, made once.

:func:`ensure_demo_metrics` writes ``days`` days of samples ending yesterday (UTC) into the offline
folder — only when it holds no day partition yet — then rolls every day of the folder that has no
stored rollup into ``gpu_daily_rollups``, writes the demo services' request samples and the demo
namespaces' CPU samples (``<root>/cpu``) for days without them and rolls the CPU days without a
stored CPU rollup into ``cpu_daily_rollups``. Calling it again does nothing, so it is safe on every
start. With a Prometheus source configured and no explicit ``root`` it does nothing at all (live
data needs no demo).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_today
from core.db.session import unit_of_work
from core.errors import InputError
from core.metrics.cpu import CPU_SUBDIR, OfflineCpuSource, ensure_cpu_rollups, write_demo_cpu
from core.metrics.fleet import load_manifest, write_samples
from core.metrics.offline import OfflineSource
from core.metrics.persistence import count_rows, rollup_and_store
from core.metrics.serving import write_demo_serving
from core.metrics.sources import metrics_dir


def ensure_demo_metrics(sessions: sessionmaker[Session], *, days: int = 7, step_s: int = 300,
                        root: Path | str | None = None, today: date | None = None) -> dict:
    """Generate the demo samples when the folder is empty and roll up the days not yet stored.

    ``root`` defaults to :func:`core.metrics.sources.metrics_dir`; ``today`` (UTC) to the current
    date. Returns ``{"root", "generated_days", "rolled_up_days", "rows", "serving_days", "cpu_days",
    "cpu_rollup_days"}``; all zero
    on a second call. Raises :class:`InputError` on a bad ``days`` or ``step_s``.
    """

    from core.metrics.prometheus import prometheus_settings

    if days < 1:
        raise InputError("metrics.bad_days", field="days", value=days)
    if root is None and prometheus_settings().servers:
        return {"root": "", "generated_days": 0, "rolled_up_days": 0, "rows": 0, "serving_days": 0, "cpu_days": 0,
                "cpu_rollup_days": 0}
    root = Path(root) if root is not None else metrics_dir()
    source = OfflineSource(root)
    generated = 0
    if not source.days():
        today = today or utc_today()
        start = today - timedelta(days=days)
        write_samples(root, start=start, days=days, step_s=step_s)
        generated = days
    else:
        try:  # roll up at the step the samples were written with
            step_s = int(load_manifest(root).meta.get("step_s", step_s))
        except InputError:
            pass
    rolled, rows = 0, 0
    for day in source.days():
        with unit_of_work(sessions) as s:
            if count_rows(s, day):
                continue
        result = rollup_and_store(sessions=sessions, source=source, day=day, step_s=step_s)
        rolled += 1
        rows += result["inserted"]
    try:
        serving_days = write_demo_serving(root)["days"]
    except InputError:  # no fleet manifest: samples imported from elsewhere, no demo services to invent
        serving_days = 0
    try:
        cpu_days = write_demo_cpu(root)["days"]
    except InputError:  # no fleet manifest: no demo namespaces to invent CPU samples for
        cpu_days = 0
    cpu = OfflineCpuSource(root / CPU_SUBDIR)
    cpu_rollup_days = ensure_cpu_rollups(sessions, cpu, cpu.days())["days"]
    return {"root": str(root), "generated_days": generated, "rolled_up_days": rolled, "rows": rows,
            "serving_days": serving_days, "cpu_days": cpu_days, "cpu_rollup_days": cpu_rollup_days}
