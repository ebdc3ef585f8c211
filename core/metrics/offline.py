"""The offline metrics source: raw samples in Parquet or CSV files, read with polars lazy scans.

Layout (what :func:`core.metrics.fleet.write_samples` writes; any exporter can produce it)::

    <root>/day=YYYY-MM-DD/<name>.parquet    samples whose ts falls on that UTC day
    <root>/day=YYYY-MM-DD/<name>.csv        the same as CSV (header row, comma-separated)
    <root>/manifest.json                    optional: the demo fleet manifest

Every file holds at least the columns of :data:`core.metrics.schema.SAMPLE_SCHEMA` (more are
ignored). Parquet columns may use any integer/float type for the numbers, String/Categorical for the
labels and any Datetime unit for ``ts`` (naive ⇒ UTC). A number that is not finite, negative or above
its largest value in data/cli_limits.yaml ``sample_values`` counts as missing in a Parquet file and
is refused in a CSV file (no DCGM gauge or counter holds it). CSV ``ts`` is ISO 8601 (``2026-01-01T00:00:00Z``,
``+08:00`` offsets are converted, naive ⇒ UTC); an empty number is a missing value.

A file without those columns, with a column of the wrong kind or with a value that does not parse
raises :class:`InputError` whose field is the file (``path:line`` for a CSV value).

Any row order is accepted. A day of Parquet files in which no GPU's time goes back — a scraper's
order (every GPU at one instant, then the next) or a per-series export — is rolled up in one pass
over its rows and their label columns' dictionary codes (:mod:`core.metrics.plain_files`); any other
order, and CSV files, by sorting in polars (:func:`core.metrics.rollup.rollup_day`; same figures).

Series ids (optional; what :func:`write_day_file` writes, so the demo fleet and the benchmark month
have it). A Parquet file may carry, besides the columns above, a ``series`` column (an unsigned
integer per row) and the key-value metadata ``computeloop.series``: JSON ``{"version": 1, "rows": N,
"labels": {"uuid": [...], "namespace": [...], "cluster": [...], "hostname": [...], "model": [...]}}``,
where row ``i`` of ``labels`` holds the label values of every row whose ``series`` is ``i``. When a
day is such files — one, or shards of GPUs with each GPU in one of them — the rollup reads ``series``
instead of the five label columns, file by file, and does not compare strings row by row
(:func:`core.metrics.rollup.series_runs`); every other reader uses
the label columns. A tool that rewrites the label columns of such a file must drop ``series`` or the
metadata (a file read and written again by polars, pandas or pyarrow loses the metadata: checked
with polars 2.1, pandas 3.1 and pyarrow 26; a test keeps the polars case). The writer also stores the
memory columns as integer MiB (DCGM reports whole MiB) and no compression codec (dictionary and
run-length encoding still apply): both read faster than the alternatives on this machine, see
README "Daily rollup".
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from core.config import PROJECT_ROOT
from core.errors import InputError
from core.metrics.rollup import RUN_LABELS, combine_runs, rollup_day, series_runs
from core.metrics.plain_files import rollup_plain_files
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA, measured

DEFAULT_ROOT = PROJECT_ROOT / "var" / "metrics" / "samples"
LABEL_COLUMNS = ("cluster", "hostname", "gpu", "uuid", "model", "namespace", "pod")
NUMBER_COLUMNS = ("util", "fb_used_mib", "fb_free_mib", "power_w", "energy_mj")
_POLARS_ERRORS = (pl.exceptions.PolarsError, OSError)
SERIES_COLUMN = "series"
SERIES_METADATA = "computeloop.series"
SERIES_INPUT_COLUMNS = ("ts", SERIES_COLUMN, "util", "fb_used_mib", "fb_free_mib", "energy_mj")


def partition_dir(root: Path, day: date) -> Path:
    """``<root>/day=YYYY-MM-DD``."""
    return Path(root) / f"day={day.isoformat()}"


class OfflineSource:
    """:class:`core.metrics.schema.MetricsSource` over the Parquet/CSV layout above.

    ``root`` is the folder holding the ``day=YYYY-MM-DD`` partitions. Nothing is read until a
    method is called; every method scans only the partitions of the days it needs.
    """

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    # -- files ---------------------------------------------------------------------------------

    def days(self) -> list[date]:
        """The days that have a partition folder, oldest first."""
        out = []
        for folder in self.root.glob("day=*"):
            try:
                out.append(date.fromisoformat(folder.name[4:]))
            except ValueError:
                continue
        return sorted(out)

    def files(self, day: date) -> list[Path]:
        """The sample files of ``day`` (Parquet and CSV, sorted by name)."""
        folder = partition_dir(self.root, day)
        return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".parquet", ".csv") and p.is_file())

    def scan(self, day: date) -> pl.LazyFrame:
        """The samples of ``day``'s files as one lazy frame in :data:`SAMPLE_SCHEMA` (validated)."""
        frames = [scan_file(p) for p in self.files(day)]
        if not frames:
            return pl.LazyFrame(schema=SAMPLE_SCHEMA)
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")

    def _scan_days(self, first: date, last: date) -> pl.LazyFrame:
        frames = []
        d = first
        while d <= last:
            frames += [scan_file(p) for p in self.files(d)]
            d += timedelta(days=1)
        if not frames:
            return pl.LazyFrame(schema=SAMPLE_SCHEMA)
        return pl.concat(frames, how="vertical")

    # -- MetricsSource -------------------------------------------------------------------------

    def daily_gpu_stats(self, day: date, *, step_s: int = 60) -> pl.DataFrame:
        """Rows of :data:`ROLLUP_SCHEMA` for ``day`` (see :mod:`core.metrics.rollup`); an empty
        frame when the day has no files. Raises :class:`InputError` naming a malformed file."""
        files = self.files(day)
        if not files:
            return pl.DataFrame(schema=ROLLUP_SCHEMA)
        if all(f.suffix.lower() == ".parquet" for f in files):
            fast = _rollup_series_files(files, day, step_s)
            if fast is None:
                fast = rollup_plain_files(files, day, step_s=step_s)
            if fast is not None:
                return fast
        lf = self.scan(day)
        try:
            return rollup_day(lf, day, step_s=step_s, engine="streaming")
        except _POLARS_ERRORS as exc:
            raise InputError("metrics.file_unreadable", field=str(partition_dir(self.root, day)),
                             reason=_reason(exc)) from None

    def latest(self, at: datetime | None = None) -> pl.DataFrame:
        """The last sample per GPU at or before ``at`` (default: the newest), looking back over the
        last two days that have files; columns of :data:`SAMPLE_SCHEMA` minus ``energy_mj``."""
        columns = [c for c in SAMPLE_SCHEMA if c != "energy_mj"]
        days = [d for d in self.days() if at is None or d <= _utc(at).date()]
        if not days:
            return pl.DataFrame(schema={c: SAMPLE_SCHEMA[c] for c in columns})
        first = days[-2] if len(days) > 1 else days[-1]
        if first != days[-1] and (at is None or _utc(at).date() > days[-1]) and self._same_gpus(first, days[-1]):
            first = days[-1]  # every GPU of the day before has samples on the newest day: its last is there
        lf = self._scan_days(first, days[-1])
        if at is not None:
            lf = lf.filter(pl.col("ts") <= _utc(at))
        # The newest sample per GPU without sorting millions of rows: keep rows at the GPU's own max ts.
        query = (lf.select(columns).filter(pl.col("ts") == pl.col("ts").max().over("uuid"))
                 .unique("uuid", keep="last", maintain_order=True).select(columns).sort("uuid"))
        return self._collect(query, days[-1])

    def _same_gpus(self, before: date, newest: date) -> bool:
        """True when the files of ``before`` hold no GPU that the files of ``newest`` lack, read from
        the series labels in the files' metadata (no rows); False when a file has none."""
        found = []
        for day in (before, newest):
            labels = [series_labels(p) for p in self.files(day)]
            if not labels or any(x is None for x in labels):
                return False
            found.append(set().union(*(x[0]["uuid"].to_list() for x in labels)))
        return found[0] <= found[1]

    def series(self, start: datetime, end: datetime, *, step_s: int, namespace: str | None = None) -> pl.DataFrame:
        """Per-GPU means per ``step_s`` bucket between ``start`` (inclusive) and ``end`` (exclusive):
        columns ts, uuid, hostname, model, namespace, util, mem, power_w; optionally one namespace
        (compared as a literal value, never interpreted)."""
        if step_s <= 0:
            raise InputError("metrics.bad_step", field="step", value=step_s)
        start, end = _utc(start), _utc(end)
        lf = self._scan_days(start.date(), (end - timedelta(microseconds=1)).date())
        lf = lf.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        if namespace is not None:
            lf = lf.filter(pl.col("namespace") == pl.lit(namespace, dtype=pl.Utf8))
        total = pl.col("fb_used_mib") + pl.col("fb_free_mib")
        query = (
            lf.with_columns(ts=pl.col("ts").dt.truncate(f"{int(step_s)}s"),
                            mem=pl.when(total > 0).then(pl.col("fb_used_mib") / total))
            .group_by("uuid", "ts")
            .agg(pl.col("hostname").last(), pl.col("model").last(), pl.col("namespace").last(),
                 pl.col("util").mean(), pl.col("mem").mean(), pl.col("power_w").mean())
            .select("ts", "uuid", "hostname", "model", "namespace", "util", "mem", "power_w")
            .sort("uuid", "ts")
        )
        return self._collect(query, start.date())

    def _collect(self, query: pl.LazyFrame, day: date) -> pl.DataFrame:
        try:
            return query.collect(engine="streaming")
        except _POLARS_ERRORS as exc:
            raise InputError("metrics.file_unreadable", field=str(partition_dir(self.root, day)),
                             reason=_reason(exc)) from None


def write_day_file(frame: pl.DataFrame, path: Path | str, *, compression: str = "uncompressed") -> None:
    """Write samples in :data:`SAMPLE_SCHEMA` to the Parquet file ``path`` (replaced atomically) in
    the layout the rollup reads fastest: the series ids and their labels (module docstring), integer
    MiB memory columns when every value is a whole number that fits, no compression codec (another
    polars ``compression`` can be asked for: the benchmark compares them), one row group. Reading it
    back with :func:`scan_file` gives ``frame`` (``fb_*`` as the same Float64 values)."""
    path = Path(path)
    labels = frame.select(RUN_LABELS).unique(maintain_order=True)
    ids = pl.UInt16 if labels.height <= 1 << 16 else pl.UInt32
    frame = frame.select(list(SAMPLE_SCHEMA)).join(
        labels.with_row_index(SERIES_COLUMN).with_columns(pl.col(SERIES_COLUMN).cast(ids)),
        on=list(RUN_LABELS), how="left", nulls_equal=True, maintain_order="left")
    whole = frame.select(
        [((pl.col(c) == pl.col(c).round()) & pl.col(c).is_between(0, 2**31 - 1)).all().alias(c)
         for c in ("fb_used_mib", "fb_free_mib")]).row(0)
    if all(whole):
        frame = frame.with_columns(pl.col("fb_used_mib", "fb_free_mib").cast(pl.Int32))
    meta = {"version": 1, "rows": frame.height, "labels": labels.to_dict(as_series=False)}
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp, compression=compression, statistics=True, row_group_size=max(1, frame.height),
                        metadata={SERIES_METADATA: json.dumps(meta, ensure_ascii=False, separators=(",", ":"))})
    os.replace(tmp, path)


def series_labels(path: Path) -> tuple[pl.DataFrame, int] | None:
    """The ``computeloop.series`` labels of ``path`` and its row count, ``None`` when the file has
    none (or they are not in the documented form) or a column lacks the documented kind."""
    try:
        raw = pl.read_parquet_metadata(path).get(SERIES_METADATA)
        if raw is None:
            return None
        schema = pl.read_parquet_schema(path)
    except _POLARS_ERRORS:
        return None
    try:
        meta = json.loads(raw)
        labels = pl.DataFrame({k: meta["labels"][k] for k in RUN_LABELS}, schema=dict.fromkeys(RUN_LABELS, pl.Utf8))
        rows = int(meta["rows"])
    except (ValueError, KeyError, TypeError, pl.exceptions.PolarsError):
        return None
    if meta.get("version") != 1 or schema.get("ts") != SAMPLE_SCHEMA["ts"] or not all(
            c in schema and schema[c].is_numeric() for c in SERIES_INPUT_COLUMNS[1:]) or any(c not in schema for c in SAMPLE_SCHEMA):
        return None
    return labels, rows


def _rollup_series_files(paths: list[Path], day: date, step_s: int) -> pl.DataFrame | None:
    """The rollup of ``day`` from files with series ids, read one at a time (a 100,000-GPU day is
    written as shards of GPUs, :func:`core.metrics.fleet.write_samples`: only one shard is in memory).
    ``None`` when a file has no ids or they do not apply, or when two files hold samples of the same
    GPU (a GPU's energy needs its samples in one time order): the caller then reads the label columns."""
    found = [series_labels(path) for path in paths]  # the files' metadata first: nothing read in vain
    if any(f is None for f in found):
        return None
    uuids = [u for labels, _ in found for u in labels["uuid"].unique().to_list()]
    if len(uuids) != len(set(uuids)):
        return None
    parts = []
    for path, (labels, rows) in zip(paths, found):
        try:
            frame = pl.read_parquet(path, columns=list(SERIES_INPUT_COLUMNS))
        except _POLARS_ERRORS:
            return None  # the plain read names the file
        if frame.height != rows:
            return None
        numbers = [c for c in SERIES_INPUT_COLUMNS[2:] if frame.schema[c].is_float()]
        runs = series_runs(_measurements_only(frame, numbers), labels, day)
        if runs is None:
            return None
        parts.append(runs)
    return combine_runs(pl.concat(parts, how="vertical_relaxed"), day, step_s=step_s)


def _measurements_only(frame: pl.DataFrame | pl.LazyFrame, columns=NUMBER_COLUMNS):
    """``frame`` with every value of ``columns`` that is not a measurement made missing (null)."""
    return frame.with_columns([pl.when(measured(c)).then(pl.col(c)).alias(c) for c in columns])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def scan_file(path: Path) -> pl.LazyFrame:
    """One sample file as a lazy frame in :data:`SAMPLE_SCHEMA`; :class:`InputError` naming the file
    (and line, for CSV) when it is malformed."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _scan_parquet(path)
    if suffix == ".csv":
        return _read_csv(path).lazy()
    raise InputError("metrics.file_kind", field=str(path))


def _scan_parquet(path: Path) -> pl.LazyFrame:
    lf = pl.scan_parquet(path, extra_columns="ignore")
    try:
        schema = lf.collect_schema()
    except _POLARS_ERRORS as exc:
        raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
    missing = [c for c in SAMPLE_SCHEMA if c not in schema]
    if missing:
        raise InputError("metrics.missing_columns", field=str(path), columns=", ".join(missing))
    exprs = []
    for name, want in SAMPLE_SCHEMA.items():
        have = schema[name]
        if name == "ts":
            if not isinstance(have, pl.Datetime):
                raise InputError("metrics.bad_column_type", field=str(path), column=name, dtype=str(have), expected="Datetime")
            col = pl.col(name)
            if have.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            exprs.append(col.cast(want) if have != want else col)
        elif name in LABEL_COLUMNS:
            if not (have == pl.Utf8 or isinstance(have, (pl.Categorical, pl.Enum))):
                raise InputError("metrics.bad_column_type", field=str(path), column=name, dtype=str(have), expected="String")
            exprs.append(pl.col(name) if have == want else pl.col(name).cast(want))
        else:
            if not have.is_numeric():
                raise InputError("metrics.bad_column_type", field=str(path), column=name, dtype=str(have), expected="Float64")
            exprs.append(pl.col(name) if have == want else pl.col(name).cast(want))
    return _measurements_only(lf.select(exprs))


def _read_csv(path: Path) -> pl.DataFrame:
    """Read a CSV file as text, then parse each column, so a bad value can be named by its line."""
    try:
        raw = pl.scan_csv(path, infer_schema=False, row_index_name="__row").collect(engine="streaming")
    except _POLARS_ERRORS as exc:
        raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
    missing = [c for c in SAMPLE_SCHEMA if c not in raw.columns]
    if missing:
        raise InputError("metrics.missing_columns", field=f"{path}:1", columns=", ".join(missing))
    parsed = raw.select(
        pl.col("__row"),
        *[pl.col(c).fill_null("") for c in LABEL_COLUMNS],
        pl.col("ts").str.strip_chars().str.to_datetime(time_zone="UTC", time_unit="us", strict=False).alias("ts"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(c) for c in NUMBER_COLUMNS],
    )
    for name in ("ts", *NUMBER_COLUMNS):
        given = raw[name].str.strip_chars().fill_null("") != ""
        bad = parsed.filter(given & parsed[name].is_null())
        if name == "ts":
            bad = parsed.filter(parsed[name].is_null())  # a sample needs its time
        elif not bad.height:  # "inf", "nan", "-1", "1e308" parse, but no DCGM gauge or counter holds them
            bad = parsed.filter(given & ~measured(name))
        if bad.height:
            row = int(bad["__row"][0])
            raise InputError("metrics.bad_value", field=f"{path}:{row + 2}", column=name,
                             value=str(raw[name][row] or ""))
    return parsed.select([pl.col(c).cast(t) for c, t in SAMPLE_SCHEMA.items()])
