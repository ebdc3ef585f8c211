"""``python -m core jobs``: the daily rollup job and the demo sample generator.

* ``jobs rollup --day YYYY-MM-DD [--source offline --root DIR] [--step 60]`` — roll one UTC day of
  raw samples up into ``gpu_daily_rollups`` and the services' request samples of that day into
  ``serving_daily_rollups`` (from Prometheus when configured, else ``<root>/serving``; one query set
  per server and day), in one transaction (re-running a day replaces it; idempotent), and the
  namespaces' CPU figures into ``cpu_daily_rollups`` (Prometheus, else ``<root>/cpu``).
* ``jobs rollup --from YYYY-MM-DD [--to YYYY-MM-DD] [--workers N] [...]`` — a backfill: the GPU days are
  rolled up concurrently (:func:`core.metrics.rollup.rollup_days`), the service days one by one, then
  stored day by day as above; days without any samples are skipped.
* ``jobs fleet --start YYYY-MM-DD --days N [--root DIR] [--scale 1] [--seed 7] [--step 60]`` — write
  the demo fleet's samples (Parquet, one partition per day) and its manifest.
* ``jobs queue-snapshot`` — record a ``queue_reorder`` adjustment for every waiting request whose
  place in its pool's queue changed since the last run (aging, arrival, release); idempotent, cron-safe.
* ``jobs autoscaler-events`` — read the HorizontalPodAutoscalers of every cluster (live backend only)
  and record a ``scale_event`` per HPA whose desired replicas changed; idempotent, cron-safe.
* ``jobs daily [--today YYYY-MM-DD]`` — the reclaim daily job (``reclaim daily``) plus a queue snapshot.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

from core.cli import add_json_flag, emit
from core.cli.inputs import day as _day
from core.cli.inputs import date_bounds, real, sample_step, whole, work_limit
from core.errors import InputError


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``jobs`` group."""
    from core.metrics.offline import DEFAULT_ROOT

    jobs = groups.add_parser("jobs", help="scheduled jobs (daily rollups) and demo samples", description="Jobs.")
    sub = jobs.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from core.cli.reclaim import add_daily

    add_daily(sub)  # `jobs daily`: expiry notices, expiries, warnings, reclaim candidates (cron) ...
    sub.choices["daily"].set_defaults(handler=_daily)  # ... and a queue snapshot
    sub.choices["daily"].description = ("Expiry notices, expiries, warnings and reclaim candidates (as `reclaim "
                                        "daily`), then a queue snapshot (as `jobs queue-snapshot`). Idempotent.")

    snap = sub.add_parser("queue-snapshot", help="record every waiting request whose place in its pool's queue changed "
                                                 "since the last run (idempotent, cron-safe)",
                          description="Compute the queue and record one queue_reorder adjustment (actor system) per "
                                      "request whose position in its pool's queue changed since the last snapshot, "
                                      "with before/after position and effective priority and the reason (aging, "
                                      "arrival, release). The first run only stores the positions.")
    add_json_flag(snap)
    snap.set_defaults(handler=_queue_snapshot)

    scale = sub.add_parser("autoscaler-events", help="record the scale events of the HorizontalPodAutoscalers on the "
                                                     "clusters (live backend; idempotent, cron-safe)",
                           description="List the autoscaling/v2 HorizontalPodAutoscalers of every cluster in "
                                       "data/org.yaml and record one scale_event adjustment per HPA in an allocation's "
                                       "namespace whose desired replicas changed since the last run (time = "
                                       "status.lastScaleTime, reason from its conditions). With the plan backend "
                                       "there is no live cluster and nothing is recorded.")
    add_json_flag(scale)
    scale.set_defaults(handler=_autoscaler_events)

    roll = sub.add_parser("rollup", help="roll one UTC day (--day) or a range of days (--from/--to, a backfill) "
                                         "of raw GPU samples up into gpu_daily_rollups and of service request "
                                         "samples into serving_daily_rollups")
    when = roll.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=_day, help="UTC day, YYYY-MM-DD")
    when.add_argument("--from", dest="first", type=_day, help="first UTC day of a backfill, YYYY-MM-DD")
    roll.add_argument("--to", dest="last", type=_day, help="last UTC day of a backfill, inclusive (default: --from)")
    roll.add_argument("--workers", type=whole("workers"), default=None,
                      help="days of a backfill rolled up at once (default: one per CPU)")
    roll.add_argument("--source", choices=list(GPU_SOURCES), default="auto",
                      help="where the GPU samples come from: prometheus (the COMPUTELOOP_PROMETHEUS_URLS servers), "
                           "offline (the --root files) or auto (default: Prometheus when configured, else the files "
                           "— the rule the service and CPU figures follow)")
    roll.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"offline samples folder (default {DEFAULT_ROOT})")
    roll.add_argument("--step", type=whole("step"), default=60, help="scrape step in seconds (default 60)")
    add_json_flag(roll)
    roll.set_defaults(handler=_rollup, parser=roll)

    fleet = sub.add_parser("fleet", help="generate demo GPU samples (Parquet, one folder per day) and the fleet manifest")
    fleet.add_argument("--start", type=_day, required=True, help="first UTC day, YYYY-MM-DD")
    fleet.add_argument("--days", type=whole("days"), default=1, help="number of days (default 1; at most the samples of work.max_fleet_samples in data/cli_limits.yaml)")
    fleet.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"output folder (default {DEFAULT_ROOT})")
    fleet.add_argument("--scale", type=real("scale"), default=1.0, help="GPUs per pool × scale (1 ≈ 1,000 GPUs, 10 ≈ 10,000)")
    fleet.add_argument("--seed", type=whole("seed"), default=7, help="random seed (default 7)")
    fleet.add_argument("--step", type=sample_step("sample_step"), default=60, help="sample step in seconds (default 60)")
    fleet.add_argument("--shard-gpus", type=whole("shard_gpus"), default=10_000,
                       help="GPUs per file of a day (default 10,000): a larger fleet is generated and written in "
                            "shards of that many GPUs, one shard's day in memory at a time")
    add_json_flag(fleet)
    fleet.set_defaults(handler=_fleet)


def _rollup(args: argparse.Namespace) -> int:
    if args.day is not None and args.last is not None:
        args.parser.error("--to goes with --from, not with --day")
    if args.day is None:
        return _backfill(args)
    from core import context
    from core.metrics.persistence import rollup_and_store
    from core.metrics.serving_rollup import day_parts

    gpu = gpu_source(args.source, args.root)
    ctx = context.build()
    serving, cpu = _serving_source(args.root), _cpu_source(args.root)
    try:
        started = time.perf_counter()
        parts = day_parts(serving, args.day)
        result = rollup_and_store(sessions=ctx.sessions, source=gpu, day=args.day, step_s=args.step,
                                  serving=(parts, _kind(serving)), cpu=_cpu_parts(cpu, args.day))
        result["seconds"] = round(time.perf_counter() - started, 3)
        result["gpu_source"] = source_name(gpu)
    finally:
        ctx.engine.dispose()
        for source in (gpu, serving, cpu):
            _close(source)
    emit(args, result, lambda: (f"{result['day']}: {result['rows']} rows ({result['gpus']} GPUs, "
                                f"{result['namespaces']} namespaces, mean coverage {result['coverage']:.3f}); "
                                f"replaced {result['deleted']}, inserted {result['inserted']}; "
                                f"{_serving_text(result['serving'])}; {_cpu_text(result['cpu'])} in {result['seconds']} s"))
    return 0


GPU_SOURCES = ("auto", "prometheus", "offline")


def gpu_source(choice: str, root: Path):
    """The GPU samples' source for ``--source``: the configured Prometheus-compatible servers, the
    offline files under ``root``, or (auto) the servers when configured, else the files.
    ``prometheus`` without ``COMPUTELOOP_PROMETHEUS_URLS`` is refused (field ``source``)."""
    from core.errors import InputError
    from core.metrics.offline import OfflineSource
    from core.metrics.prometheus import source_from_settings

    live = None if choice == "offline" else source_from_settings()
    if choice == "prometheus" and live is None:
        raise InputError("metrics.no_prometheus", field="source", variable="COMPUTELOOP_PROMETHEUS_URLS")
    return live if live is not None else OfflineSource(root)


def source_name(source) -> str:
    """"prometheus" or "offline", as the result and the log say where the samples came from."""
    from core.metrics.offline import OfflineSource

    return "offline" if isinstance(source, OfflineSource) else "prometheus"


def _cpu_source(root: Path):
    from core.metrics.cpu import cpu_source

    return cpu_source(root)


def _cpu_parts(source, day: date):
    from core.metrics.cpu import day_parts, source_kind

    return day_parts(source, day), source_kind(source)


def _cpu_text(cpu: dict | None) -> str:
    if cpu is None:
        return "no CPU samples"
    return (f"CPU of {cpu['namespaces']} namespaces from {cpu['source']} ({cpu['cpu_core_hours']:,.1f} core-hours): "
            f"replaced {cpu['deleted']}, inserted {cpu['inserted']}")


def _serving_source(root: Path):
    from core.metrics.serving import serving_source

    return serving_source(root)


def _kind(source) -> str:
    from core.metrics.serving import source_kind

    return source_kind(source)


def _close(source) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


def _serving_text(serving: dict | None) -> str:
    if serving is None:
        return "no service request samples"
    return (f"{serving['services']} services from {serving['source']} ({serving['requests']:,.0f} requests, mean "
            f"coverage {serving['coverage']:.3f}): replaced {serving['deleted']}, inserted {serving['inserted']}")


class _Computed:
    """A metrics source that hands back one day's rollup computed beforehand (by the backfill)."""

    def __init__(self, rows) -> None:
        self.rows = rows

    def daily_gpu_stats(self, day: date, *, step_s: int = 60):
        return self.rows


def _backfill(args: argparse.Namespace) -> int:
    """``--from/--to``: the days rolled up concurrently (``rollup_days``), then each day stored as the
    daily job stores it (one transaction per day). Days without samples are skipped and their stored
    rows left alone; :class:`InputError` (field "from") when no day of the range has samples."""
    from core import context
    from core.errors import InputError
    from core.metrics.persistence import rollup_and_store
    from core.metrics.rollup import rollup_days
    from core.metrics.serving_rollup import day_parts

    first, last = args.first, args.last or args.first
    check_backfill(first, last)
    started = time.perf_counter()
    gpu = gpu_source(args.source, args.root)
    try:
        computed = rollup_days(gpu, first, last, step_s=args.step, workers=args.workers)
    finally:
        _close(gpu)
    serving, cpu = _serving_source(args.root), _cpu_source(args.root)
    try:
        kind = _kind(serving)
        served = {day: (day_parts(serving, day), kind) for day in computed}
        cpus = {day: _cpu_parts(cpu, day) for day in computed}
    finally:
        _close(serving)
        _close(cpu)
    rolled_up = round(time.perf_counter() - started, 3)
    has = {day: bool(rows.height or served[day][0].height or cpus[day][0].height) for day, rows in computed.items()}
    if not any(has.values()):
        raise InputError("metrics.no_samples", field="from", day=f"{first.isoformat()} – {last.isoformat()}")
    ctx = context.build()
    try:
        stored = [rollup_and_store(sessions=ctx.sessions, source=_Computed(rows), day=day, step_s=args.step,
                                   serving=served[day], cpu=cpus[day])
                  for day, rows in computed.items() if has[day]]
    finally:
        ctx.engine.dispose()
    result = {
        "from": first.isoformat(), "to": last.isoformat(), "days": stored,
        "skipped": [d.isoformat() for d in computed if not has[d]],
        "services": sum(r["serving"]["inserted"] for r in stored if r["serving"]),
        "cpu_rows": sum(r["cpu"]["inserted"] for r in stored if r["cpu"]),
        "rows": sum(r["rows"] for r in stored), "deleted": sum(r["deleted"] for r in stored),
        "inserted": sum(r["inserted"] for r in stored),
        "rollup_seconds": rolled_up, "seconds": round(time.perf_counter() - started, 3),
    }
    emit(args, result, lambda: (f"{result['from']} – {result['to']}: {len(stored)} days, {result['rows']} rows "
                                f"(rolled up in {result['rollup_seconds']} s); replaced {result['deleted']}, inserted "
                                f"{result['inserted']}, {result['services']} service rows, {result['cpu_rows']} CPU rows in {result['seconds']} s"
                                + (f"; no samples on {', '.join(result['skipped'])}" if result["skipped"] else "")))
    return 0


def check_backfill(first: date, last: date) -> None:
    """Refuse a backfill that ends before it starts or spans more than ``work.max_backfill_days``."""
    if last < first:
        raise InputError("cliinput.to_before_from", field="--to", first=first.isoformat(), last=last.isoformat())
    days, most = (last - first).days + 1, work_limit("max_backfill_days")
    if days > most:
        raise InputError("cliinput.backfill_too_long", field="--to", days=days, limit=most)


def fleet_gpus(scale: float) -> int:
    """GPUs of the demo fleet at ``scale`` (each pool of data/org.yaml: max(1, round(gpus × scale))),
    as :func:`core.metrics.fleet.build_fleet` makes it."""
    from core.org import load_org

    return sum(max(1, round(pool.gpus * scale)) for pool in load_org().pools.values())


def check_fleet_samples(*, gpus: int, days: int, step_s: int, field: str) -> None:
    """Refuse a sample run of more than ``work.max_fleet_samples`` samples (GPUs × days × 86,400 / step)."""
    samples, most = gpus * days * (86400 // step_s + (1 if 86400 % step_s else 0)), work_limit("max_fleet_samples")
    if samples > most:
        raise InputError("cliinput.fleet_too_large", field=field, gpus=gpus, days=days, step=step_s,
                         samples=f"{samples:.3g}", limit=f"{most:.3g}")


def _fleet(args: argparse.Namespace) -> int:
    from core.metrics.fleet import write_samples

    latest = date_bounds()[1]
    if args.start + timedelta(days=args.days - 1) > latest:
        raise InputError("cliinput.range_after_latest", field="--days", start=args.start.isoformat(), days=args.days,
                         latest=latest.isoformat())
    check_fleet_samples(gpus=fleet_gpus(args.scale), days=args.days, step_s=args.step, field="--days")
    if args.root.exists() and not args.root.is_dir():
        raise InputError("cliinput.root_not_folder", field="--root", path=str(args.root))
    started = time.perf_counter()
    try:
        result = write_samples(args.root, start=args.start, days=args.days, step_s=args.step, seed=args.seed,
                               scale=args.scale, shard_gpus=args.shard_gpus)
    except OSError as exc:  # a parent that is a file, no permission, disk full
        raise InputError("cliinput.file_unwritable", field="--root", detail=exc.strerror or type(exc).__name__) from None
    result["seconds"] = round(time.perf_counter() - started, 3)
    result.pop("files")
    emit(args, result, lambda: (f"{result['rows']} samples of {result['gpus']} GPUs over {result['days']} days "
                                f"written to {result['root']} in {result['seconds']} s"))
    return 0


def _snapshot_text(result: dict, lang: str) -> str:
    from core.i18n import translate

    if result["baseline"]:
        return translate("records.cli.queue_baseline", lang, waiting=result["waiting"])
    lines = [translate("records.cli.queue_done", lang, waiting=result["waiting"], recorded=len(result["recorded"]),
                       new=result["new"], left=result["left"])]
    lines += [translate("records.cli.queue_line", lang, number=r["number"], pool=r["pool"], before=r["before"],
                        after=r["after"], reasons=", ".join(translate(f"records.reason.{c}", lang) for c in r["reasons"]))
              for r in result["recorded"]]
    return "\n".join(lines)


def _queue_snapshot(args: argparse.Namespace) -> int:
    from core import context
    from core.adjust.recorder import snapshot_queue

    ctx = context.build()
    try:
        result = snapshot_queue(sessions=ctx.sessions)
    finally:
        ctx.engine.dispose()
    emit(args, result, lambda: _snapshot_text(result, args.lang))
    return 0


def _daily(args: argparse.Namespace) -> int:
    """``reclaim daily``'s steps, then the queue snapshot as one more step (its failure is reported
    in ``errors["queue"]`` like any other step's)."""
    from core import context
    from core.adjust.recorder import snapshot_queue
    from core.cli.reclaim import summary
    from core.errors import ComputeLoopError
    from core.reclaim.common import now
    from core.reclaim.daily import run_daily

    ctx = context.build()
    try:
        result = run_daily(sessions=ctx.sessions, today=args.today or now().date())
        try:
            result["queue"] = snapshot_queue(sessions=ctx.sessions)
        except ComputeLoopError as exc:
            result["errors"]["queue"] = {"key": exc.key, "message": str(exc)}
        if not result.get("locked"):
            _support_transfers(ctx.sessions, args.today or now().date(), result)
    finally:
        ctx.engine.dispose()
    queue = result.get("queue")
    emit(args, result, lambda: summary(result) + (
        "\n" + _snapshot_text(queue, args.lang) if queue else ""))
    return 1 if result["errors"] else 0


def _support_transfers(sessions, today: date, result: dict) -> None:  # noqa: ANN001 - a session factory
    """The daily step of support requests (core.adjust.support.run_transfers), under the daily job's
    lock: transfers whose window came start, those whose window ended go back. Its failure is
    reported in ``errors["support"]`` like any other step's."""
    from core.adjust.support import run_transfers
    from core.db.locks import job_lock
    from core.errors import ComputeLoopError
    from core.reclaim.daily import LOCK

    with job_lock(sessions, LOCK) as held:
        if not held:
            return
        try:
            result["support"] = run_transfers(sessions=sessions, today=today)
        except ComputeLoopError as exc:
            result["errors"]["support"] = {"key": exc.key, "message": str(exc)}


def _autoscaler_events(args: argparse.Namespace) -> int:
    from core import context
    from core.adjust.recorder import record_scale_events
    from core.cluster.autoscalers import live_source
    from core.i18n import translate
    from core.org import load_org

    org = load_org()
    source = live_source(org)
    if source is None:
        result = {"live": False, "recorded": [], "message": translate("records.cli.no_live_cluster", args.lang)}
        emit(args, result, lambda: result["message"])
        return 0
    ctx = context.build()
    try:
        result = {"live": True, **record_scale_events(sessions=ctx.sessions, source=source,
                                                      clusters=sorted(org.clusters), org=org)}
    finally:
        ctx.engine.dispose()
    lines = [translate("records.cli.scale_done", args.lang, clusters=len(result["clusters"]),
                       hpas=sum(result["clusters"].values()), recorded=len(result["recorded"]),
                       baseline=result["baseline"], ignored=result["ignored"])]
    lines += [translate("records.cli.scale_line", args.lang, subject=r["subject"], hpa=r["hpa"], cluster=r["cluster"],
                        before=r["before"], after=r["after"], at=r["at"].isoformat())
              for r in result["recorded"]]
    lines += [translate("records.cli.cluster_error", args.lang, cluster=c, message=e["message"])
              for c, e in result["errors"].items()]
    emit(args, result, lambda: "\n".join(lines))
    return 1 if result["errors"] else 0
