"""The demo fleet: GPUs from ``data/org.yaml``, workloads from ``data/fleet.yaml``, and raw
DCGM-like samples (:data:`core.metrics.schema.SAMPLE_SCHEMA`) generated for a date range.

Everything is deterministic for a seed: the fleet (nodes, UUIDs, which namespace runs which
workload kind) comes from ``numpy.random.default_rng(seed)``; the samples of a range come from one
generator seeded with ``(seed, start day)`` and are produced day by day (the energy counters carry
over from one day to the next, so they are monotonic apart from the injected counter resets).

Files written by :func:`write_samples` (the layout :class:`core.metrics.offline.OfflineSource` reads)::

    <root>/manifest.json                      the fleet manifest (see FleetManifest.to_json)
    <root>/day=YYYY-MM-DD/part.parquet        that UTC day's samples, rows ordered by GPU then time, with
                                              series ids (:func:`core.metrics.offline.write_day_file`)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl

from core.datafiles import load_yaml
from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.metrics.offline import write_day_file
from core.metrics.schema import SAMPLE_SCHEMA
from core.org import load_org

WORKLOAD_KINDS = ("training", "inference", "idle_service", "burst", "unallocated")
LOCAL_UTC_OFFSET_H = 8  # diurnal curves follow Beijing time
_MJ_PER_WS = 1000.0


@dataclass(frozen=True)
class FleetGPU:
    """One GPU of the demo fleet and the workload on it (static over the generated range)."""

    uuid: str
    cluster: str
    pool: str
    hostname: str
    gpu: str
    model: str
    memory_mib: float
    tdp_w: float
    namespace: str
    pod: str
    kind: str


@dataclass(frozen=True)
class FleetManifest:
    """The generated fleet: every GPU with its node, pool and workload; lookups for tests and pages."""

    seed: int
    scale: float
    gpus: tuple[FleetGPU, ...]
    meta: dict = field(default_factory=dict)

    @property
    def nodes(self) -> list[str]:
        """Distinct node names, in fleet order."""
        return list(dict.fromkeys(g.hostname for g in self.gpus))

    @property
    def pools(self) -> list[str]:
        """Distinct pool ids, in fleet order."""
        return list(dict.fromkeys(g.pool for g in self.gpus))

    def namespaces(self) -> dict[str, str]:
        """Namespace → workload kind (unallocated GPUs have no namespace and are left out)."""
        return {g.namespace: g.kind for g in self.gpus if g.namespace}

    def by_kind(self, kind: str) -> list[FleetGPU]:
        """The GPUs running workload ``kind``."""
        return [g for g in self.gpus if g.kind == kind]

    def frame(self) -> pl.DataFrame:
        """One row per GPU."""
        return pl.DataFrame([asdict(g) for g in self.gpus])

    def to_json(self) -> str:
        """The manifest as JSON (``{"seed", "scale", "meta", "gpus": [...], "namespaces": {...}}``)."""
        return json.dumps({"seed": self.seed, "scale": self.scale, "meta": self.meta,
                           "gpus": [asdict(g) for g in self.gpus], "namespaces": self.namespaces()},
                          ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "FleetManifest":
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        return cls(seed=raw["seed"], scale=raw["scale"], meta=raw.get("meta", {}),
                   gpus=tuple(FleetGPU(**g) for g in raw["gpus"]))


def _settings() -> dict:
    raw = load_yaml("fleet.yaml") or {}
    for key in ("mix", "sizes", "kinds", "power", "imperfections"):
        if key not in raw:
            raise InputError("error.data_entry_invalid", field="fleet.yaml", entry=key)
    return raw


def _uuid(rng: np.random.Generator) -> str:
    b = rng.integers(0, 256, size=16, dtype=np.uint8).tobytes().hex()
    return f"GPU-{b[0:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:32]}"


def build_fleet(*, seed: int = 7, scale: float = 1.0) -> FleetManifest:
    """The demo fleet: each pool of ``data/org.yaml`` with ``round(gpus × scale)`` GPUs.

    ``scale`` 1 gives the org's ~1,000 GPUs; 10 gives the 10,000-GPU benchmark fleet. Raises
    :class:`InputError` (field "scale") when ``scale`` is not positive.
    """
    if not scale > 0:
        raise InputError("metrics.bad_scale", field="scale", value=scale)
    settings, org, catalog = _settings(), load_org(), load_catalog()
    rng = np.random.default_rng(seed)
    gpus: list[FleetGPU] = []
    for pool in org.pools.values():
        n = max(1, round(pool.gpus * scale))
        per_node = pool.gpus_per_node
        spec = catalog.get(pool.gpu)
        kinds = _assign_kinds(rng, n, per_node, settings["mix"].get(pool.kind, {}), settings["sizes"])
        ns_counter: dict[str, int] = {}
        for block_kind, start, size in kinds:
            if block_kind == "unallocated":
                namespace = ""
            else:
                prefix = {"training": "train", "inference": "svc", "idle_service": "svc", "burst": "dev"}[block_kind]
                ns_counter[prefix] = ns_counter.get(prefix, 0) + 1
                namespace = f"{pool.id}-{prefix}-{ns_counter[prefix]:02d}"
            for i in range(start, start + size):
                node, index = divmod(i, per_node)
                pod = ""
                if namespace:
                    # training: one worker pod per node; services: one pod per GPU
                    replica = node - start // per_node if block_kind == "training" else i - start
                    pod = f"{namespace}-{'worker' if block_kind == 'training' else 'pod'}-{replica}"
                gpus.append(FleetGPU(
                    uuid=_uuid(rng), cluster=pool.cluster, pool=pool.id, hostname=f"{pool.id}-node-{node:03d}",
                    gpu=str(index), model=spec.id, memory_mib=float(spec.memory_gb * 1024), tdp_w=float(spec.tdp_w),
                    namespace=namespace, pod=pod, kind=block_kind,
                ))
    return FleetManifest(seed=seed, scale=scale, gpus=tuple(gpus))


def _assign_kinds(rng: np.random.Generator, n: int, per_node: int, mix: dict, sizes: dict) -> list[tuple[str, int, int]]:
    """Consecutive blocks (kind, first GPU index, size) covering ``n`` GPUs; training blocks are whole
    nodes, the others never straddle a node boundary; what is left is unallocated."""
    blocks: list[tuple[str, int, int]] = []
    pos = 0
    for kind in ("training", "inference", "idle_service", "burst"):
        target = round(mix.get(kind, 0.0) * n)
        used = 0
        while used < target and pos < n:
            if kind == "training":
                if pos % per_node:  # align to a node
                    blocks.append(("unallocated", pos, per_node - pos % per_node))
                    pos += per_node - pos % per_node
                    continue
                size = min(int(rng.choice(sizes["training_nodes"])) * per_node,
                           -(-(target - used) // per_node) * per_node, n - pos)
            else:
                size = min(int(rng.choice(sizes[kind])), per_node - pos % per_node, n - pos)
            blocks.append((kind, pos, size))
            pos += size
            used += size
    if pos < n:
        blocks.append(("unallocated", pos, n - pos))
    return blocks


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _uniform_per_gpu(rng: np.random.Generator, bounds: list[float], n: int) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], size=n)


class _Generator:
    """Day-by-day sample generation with state (energy counters) carried across days."""

    def __init__(self, fleet: FleetManifest, *, start: date, step_s: int) -> None:
        if step_s <= 0 or 86400 % step_s:
            raise InputError("metrics.bad_step", field="step", value=step_s)
        self.fleet, self.step_s = fleet, step_s
        self.settings = _settings()
        self.rng = np.random.default_rng([fleet.seed, start.toordinal()])
        g = fleet.gpus
        self.n = len(g)
        self.kind = np.array([x.kind for x in g])
        self.tdp = np.array([x.tdp_w for x in g])
        self.mem = np.array([x.memory_mib for x in g])
        self.energy0 = self.rng.uniform(1e9, 1e12, size=self.n)  # mJ since boot at the range start
        # Per-GPU levels that stay fixed over the range (a service keeps its model loaded).
        k = self.settings["kinds"]
        self.level_util = np.zeros(self.n)
        self.level_mem = np.zeros(self.n)
        self.peak = np.zeros(self.n)
        self.floor = np.zeros(self.n)
        for kind, util_key, mem_key in (("training", "util", "memory"), ("idle_service", "util", "memory"),
                                        ("inference", None, "memory"), ("unallocated", None, "memory")):
            idx = np.flatnonzero(self.kind == kind)
            if util_key:
                self.level_util[idx] = _uniform_per_gpu(self.rng, k[kind][util_key], idx.size)
            self.level_mem[idx] = _uniform_per_gpu(self.rng, k[kind][mem_key], idx.size)
        inf = np.flatnonzero(self.kind == "inference")
        self.peak[inf] = _uniform_per_gpu(self.rng, k["inference"]["peak_util"], inf.size)
        self.floor[inf] = _uniform_per_gpu(self.rng, k["inference"]["floor_util"], inf.size)
        # per-namespace GPU index lists (bursts hit the whole namespace at once)
        self.burst_ns: dict[str, np.ndarray] = {}
        for i, x in enumerate(g):
            if x.kind == "burst":
                self.burst_ns.setdefault(x.namespace, []).append(i)  # type: ignore[arg-type]
        self.burst_ns = {ns: np.array(v) for ns, v in self.burst_ns.items()}
        nodes = np.array([x.hostname for x in g])
        _, self.node_of = np.unique(nodes, return_inverse=True)
        self.strings = pl.DataFrame({
            "cluster": [x.cluster for x in g], "hostname": [x.hostname for x in g], "gpu": [x.gpu for x in g],
            "uuid": [x.uuid for x in g], "model": [x.model for x in g], "namespace": [x.namespace for x in g],
            "pod": [x.pod for x in g],
        })

    def day(self, day: date) -> pl.DataFrame:
        """The samples of ``day``, rows ordered by GPU then time."""
        rng, n, step, k = self.rng, self.n, self.step_s, self.settings["kinds"]
        T = 86400 // step
        t0 = _day_start(day)
        secs = np.arange(T) * step
        local_h = ((secs / 3600.0) + LOCAL_UTC_OFFSET_H) % 24
        weekday = [day.weekday(), (day + timedelta(days=1)).weekday()]  # local date: this UTC day, then the next
        util = np.empty((n, T))
        memf = np.empty((n, T))

        idx = np.flatnonzero(self.kind == "training")
        lo, hi = k["training"]["util"]
        util[idx] = np.clip(self.level_util[idx, None] + rng.normal(0, 0.015, (idx.size, T)), lo, hi)
        lo, hi = k["training"]["memory"]
        memf[idx] = np.clip(self.level_mem[idx, None] + rng.normal(0, 0.01, (idx.size, T)), lo, hi)

        idx = np.flatnonzero(self.kind == "inference")
        curve = 0.5 - 0.5 * np.cos(2 * np.pi * (local_h - 4.0) / 24.0)  # 0 at 04:00, 1 at 16:00 local
        weekend = np.where(((secs / 3600.0 + LOCAL_UTC_OFFSET_H) >= 24), weekday[1], weekday[0]) >= 5
        factor = np.where(weekend, k["inference"]["weekend_factor"], 1.0)
        shape = self.floor[idx, None] + (self.peak[idx, None] - self.floor[idx, None]) * curve[None, :] * factor[None, :]
        util[idx] = np.clip(shape * (1 + rng.normal(0, 0.08, (idx.size, T))), 0.0, 1.0)
        memf[idx] = np.clip(self.level_mem[idx, None] + rng.normal(0, 0.003, (idx.size, T)), 0.0, 0.99)

        idx = np.flatnonzero(self.kind == "idle_service")
        lo, hi = k["idle_service"]["util"]
        util[idx] = np.clip(self.level_util[idx, None] * rng.uniform(0.0, 2.0, (idx.size, T)), lo, hi)
        lo, hi = k["idle_service"]["memory"]
        memf[idx] = np.clip(self.level_mem[idx, None] + rng.normal(0, 0.002, (idx.size, T)), lo, hi)

        idx = np.flatnonzero(self.kind == "unallocated")
        util[idx] = 0.0
        memf[idx] = self.level_mem[idx, None]

        b = k["burst"]
        for members in self.burst_ns.values():
            busy = np.zeros(T, dtype=bool)
            for _ in range(rng.poisson(b["bursts_per_day"])):
                start = rng.integers(0, T)
                length = int(rng.uniform(*b["burst_minutes"]) * 60 // step)
                busy[start:start + length] = True
            m = members.size
            q_u = rng.uniform(*b["quiet_util"], (m, T))
            b_u = np.clip(rng.uniform(*b["busy_util"], (m, 1)) + rng.normal(0, 0.03, (m, T)), *b["busy_util"])
            util[members] = np.where(busy[None, :], b_u, q_u)
            q_m = rng.uniform(*b["quiet_memory"], (m, 1))
            b_m = rng.uniform(*b["busy_memory"], (m, 1))
            memf[members] = np.where(busy[None, :], b_m, q_m)

        p = self.settings["power"]
        idle_w = self.tdp * p["idle_fraction_of_tdp"]
        power = idle_w[:, None] + (self.tdp - idle_w)[:, None] * util
        power += rng.normal(0, 1, (n, T)) * (self.tdp * p["noise_fraction_of_tdp"])[:, None]
        np.clip(power, 0.8 * idle_w[:, None], self.tdp[:, None], out=power)

        # Energy: the counter after each sample includes that interval's energy.
        energy = np.cumsum(power * (step * _MJ_PER_WS), axis=1)
        energy += self.energy0[:, None]
        imp = self.settings["imperfections"]
        for i in np.flatnonzero(rng.random(n) < imp["counter_reset_probability"]):
            at = int(rng.integers(1, T))
            energy[i, at:] -= energy[i, at - 1]  # restarted from 0 (driver reload)
        self.energy0 = energy[:, -1].copy()

        fb_used = np.rint(memf * self.mem[:, None])
        fb_free = self.mem[:, None] - fb_used

        keep = rng.random((n, T)) >= imp["sample_drop_probability"]
        n_nodes = int(self.node_of.max()) + 1
        for node in np.flatnonzero(rng.random(n_nodes) < imp["node_outage_probability"]):
            start = int(rng.integers(0, T))
            length = max(1, int(rng.uniform(*imp["node_outage_minutes"]) * 60 // step))
            keep[np.flatnonzero(self.node_of == node), start:start + length] = False

        flat_keep = keep.ravel()
        rows = np.flatnonzero(flat_keep)
        gpu_of_row = (rows // T).astype(np.uint32)
        ts = (np.datetime64(t0.replace(tzinfo=None), "us") + (secs * 1_000_000).astype("timedelta64[us]"))
        frame = self.strings[gpu_of_row]
        return frame.with_columns(
            pl.Series("ts", np.tile(ts, n)[flat_keep]).dt.replace_time_zone("UTC"),
            pl.Series("util", util.ravel()[flat_keep]),
            pl.Series("fb_used_mib", fb_used.ravel()[flat_keep]),
            pl.Series("fb_free_mib", fb_free.ravel()[flat_keep]),
            pl.Series("power_w", power.ravel()[flat_keep]),
            pl.Series("energy_mj", energy.ravel()[flat_keep]),
        ).select(list(SAMPLE_SCHEMA))


def generate_days(fleet: FleetManifest, *, start: date, days: int, step_s: int = 60) -> Iterator[tuple[date, pl.DataFrame]]:
    """(day, samples) for ``days`` UTC days from ``start``, one day at a time (bounded memory)."""
    if days < 1:
        raise InputError("metrics.bad_days", field="days", value=days)
    gen = _Generator(fleet, start=start, step_s=step_s)
    for i in range(days):
        d = start + timedelta(days=i)
        yield d, gen.day(d)


def partition_path(root: Path, day: date) -> Path:
    """The folder of one day's samples: ``<root>/day=YYYY-MM-DD``."""
    return Path(root) / f"day={day.isoformat()}"


def write_samples(root: Path | str, *, start: date, days: int, step_s: int = 60, seed: int = 7,
                  scale: float = 1.0, shard_gpus: int | None = None) -> dict:
    """Generate the demo fleet's samples for ``days`` days from ``start`` into ``root`` (Parquet,
    one partition per day in :func:`core.metrics.offline.write_day_file`'s layout, each file replaced
    atomically) and write ``manifest.json``.

    ``shard_gpus``: a fleet larger than this is generated and written in shards of that many GPUs
    (``part-000.parquet`` …, each GPU in one shard, each shard its own random stream), so that one
    shard's day is in memory at a time — a 100,000-GPU day at 60 s is 144 M samples, about 20 GB as
    one frame; the rollup reads such a day file by file
    (:func:`core.metrics.offline.OfflineSource.daily_gpu_stats`). Other ``part*`` files of a day
    written are removed.

    Returns ``{"root", "gpus", "days", "rows", "files"}``. Raises :class:`InputError` on a bad
    ``days``, ``step_s`` or ``scale``.
    """
    if days < 1:
        raise InputError("metrics.bad_days", field="days", value=days)
    root = Path(root)
    fleet = build_fleet(seed=seed, scale=scale)
    root.mkdir(parents=True, exist_ok=True)
    size = len(fleet.gpus) if not shard_gpus or shard_gpus >= len(fleet.gpus) else int(shard_gpus)
    shards = [fleet] if size == len(fleet.gpus) else [
        FleetManifest(seed=fleet.seed * 1_000 + k, scale=fleet.scale, gpus=fleet.gpus[i:i + size])
        for k, i in enumerate(range(0, len(fleet.gpus), size))]
    names = ["part.parquet"] if len(shards) == 1 else [f"part-{k:03d}.parquet" for k in range(len(shards))]
    days_of = [generate_days(shard, start=start, days=days, step_s=step_s) for shard in shards]
    rows, files = 0, []
    for _ in range(days):
        for name, shard_days in zip(names, days_of):
            d, frame = next(shard_days)
            folder = partition_path(root, d)
            folder.mkdir(parents=True, exist_ok=True)
            write_day_file(frame, folder / name)  # series ids, integer MiB, no codec: fastest to roll up
            rows += frame.height
            files.append(str(folder / name))
            del frame
        for stale in set(folder.glob("part*.parquet")) - {folder / n for n in names}:
            stale.unlink()
    meta = {"start": start.isoformat(), "days": days, "step_s": step_s}
    manifest = FleetManifest(seed=fleet.seed, scale=fleet.scale, gpus=fleet.gpus, meta=meta)
    (root / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return {"root": str(root), "gpus": len(fleet.gpus), "days": days, "rows": rows, "files": files}


def load_manifest(root: Path | str) -> FleetManifest:
    """The manifest written by :func:`write_samples` in ``root``; :class:`InputError` if absent."""
    path = Path(root) / "manifest.json"
    try:
        return FleetManifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("error.data_file_missing", field=str(path)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("metrics.file_unreadable", field=str(path), reason=type(exc).__name__) from None


def expected_samples(step_s: int) -> int:
    """Samples a fully covered UTC day holds at ``step_s``."""
    return math.floor(86400 / step_s)
