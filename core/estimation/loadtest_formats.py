"""Load-test result parsers: many tools' output files → one normalised concurrency/QPS/latency curve.

Supported layouts (detected from the content, never from the file name):

- ``vllm``: vLLM ``vllm bench serve`` / ``benchmarks/benchmark_serving.py --save-result`` JSON.
  Newer files spell throughput ``request_throughput`` and carry ``max_concurrency`` and
  ``*_e2el_ms``; older ones (v0.4–0.5) spell it ``request_inthroughput`` and have TTFT/TPOT only.
- ``genai_perf``: NVIDIA GenAI-Perf ``profile_export_genai_perf.json`` (also AIPerf's
  ``profile_export_aiperf.json``, same per-metric ``{unit, avg, p50 … p99}`` dicts).
- ``llmperf``: ray-project/llmperf ``*_summary.json`` (flattened ``results_<metric>_quantiles_pNN``,
  seconds).
- ``locust_stats`` / ``locust_history``: Locust ``--csv`` output, ``_stats.csv`` (one run) and
  ``_stats_history.csv`` (one row per second; each ``User Count`` plateau is one level).
- ``k6``: ``k6 run --summary-export`` JSON (old layout, stats at the metric's top level) and the
  ``handleSummary`` data layout (stats under ``values``).
- ``plain_csv``: ``concurrency,qps,p50_ms,p95_ms,p99_ms`` plus optional latency columns; the
  built-in load tester (:mod:`core.loadtest`) writes it.

Every bad input raises :class:`~core.errors.InputError` whose ``field`` is the file name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from core.errors import InputError
from core.i18n import Msg

FORMATS: tuple[str, ...] = (
    "vllm", "genai_perf", "llmperf", "locust_stats", "locust_history", "k6", "plain_csv",
)

#: Statistic suffixes of a latency family, in display order.
STATS: tuple[str, ...] = ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
#: Latency families: end-to-end (no prefix), time to first token, time per output token.
FAMILIES: tuple[str, ...] = ("", "ttft_", "tpot_")
#: Every normalised latency key a curve point may carry.
LATENCY_KEYS: tuple[str, ...] = tuple(f + s for f in FAMILIES for s in STATS)

#: Required columns of the plain CSV curve format.
PLAIN_CSV_REQUIRED: tuple[str, ...] = ("concurrency", "qps", "p50_ms", "p95_ms", "p99_ms")

# Two files reporting the same concurrency are the same measurement if their numbers agree
# this closely (relative); anything further apart is a conflict the user must resolve.
_DUPLICATE_REL_TOL = 0.01

# A Locust history plateau shorter than this many rows is ramp-up, not a measured level.
_LOCUST_MIN_PLATEAU_ROWS = 3


@dataclass(frozen=True)
class CurvePoint:
    """One measured load level: concurrency, request throughput and latency statistics (ms)."""

    concurrency: float
    qps: float
    latency_ms: dict[str, float]
    source: str
    concurrency_estimated: bool = False

    def as_dict(self) -> dict:
        """Plain dict for JSON and tables."""
        return {
            "concurrency": self.concurrency,
            "qps": self.qps,
            **{k: self.latency_ms[k] for k in LATENCY_KEYS if k in self.latency_ms},
            "source": self.source,
            "concurrency_estimated": self.concurrency_estimated,
        }


@dataclass(frozen=True)
class Sweep:
    """Curve points of one or more files, sorted by concurrency, with where they came from."""

    points: tuple[CurvePoint, ...]
    sources: tuple[tuple[str, str], ...]  # (file name, detected format)
    warnings: tuple[Msg, ...] = ()

    @property
    def files(self) -> list[str]:
        """Names of the files the sweep was read from."""
        return [name for name, _ in self.sources]

    def available_keys(self) -> set[str]:
        """Latency keys that at least one point carries."""
        return {k for p in self.points for k in p.latency_ms}


# ---------------------------------------------------------------------------------------------
# public API


def detect_format(name: str, content: bytes) -> str:
    """The format id (one of :data:`FORMATS`) of a load-test file, judged from its content."""
    fmt, _ = _detect(name, content)
    return fmt


def parse_loadtest(name: str, content: bytes) -> list[CurvePoint]:
    """Parse one load-test file into curve points (one per concurrency level it measured)."""
    points, _ = _parse_one(name, content)
    return points


def parse_sweep(files: list[tuple[str, bytes]]) -> Sweep:
    """Parse several files (name, content) into one sweep sorted by concurrency.

    The same concurrency in two files is merged when the numbers agree within 1 % and is an
    :class:`InputError` naming both files otherwise.
    """
    if not files:
        raise InputError("error.loadtest_no_files", field="files")
    by_level: dict[float, CurvePoint] = {}
    sources: list[tuple[str, str]] = []
    warnings: list[Msg] = []
    for name, content in files:
        fmt, _ = _detect(name, content)
        points, file_warnings = _parse_one(name, content)
        sources.append((name, fmt))
        warnings.extend(file_warnings)
        for point in points:
            _check_ranges(name, point)
            other = by_level.get(point.concurrency)
            if other is None:
                by_level[point.concurrency] = point
            elif not _same_measurement(other, point):
                raise InputError(
                    "error.loadtest_duplicate_concurrency", field=name,
                    concurrency=_num(point.concurrency), first=other.source, second=point.source,
                    qps_first=_num(other.qps), qps_second=_num(point.qps),
                )
    estimated = sorted({p.source for p in by_level.values() if p.concurrency_estimated})
    for source in estimated:
        warnings.append(Msg("loadtest.concurrency_estimated", {"file": source}))
    ordered = tuple(sorted(by_level.values(), key=lambda p: p.concurrency))
    return Sweep(points=ordered, sources=tuple(sources), warnings=tuple(warnings))


def _check_ranges(name: str, point: CurvePoint) -> None:
    """Refuse a point whose numbers are outside ``loadtest_values`` of data/cli_limits.yaml (a
    throughput of 2e-308 requests/s made the replica count infinite)."""
    from core.datafiles import load_yaml

    bounds = (load_yaml("cli_limits.yaml") or {}).get("loadtest_values") or {}
    checks = [("qps", point.qps, "qps"), ("concurrency", point.concurrency, "concurrency")]
    checks += [(key, value, "latency_ms") for key, value in point.latency_ms.items()]
    for entry, value, kind in checks:
        entry = bounds.get(kind) or {}
        low, high = float(entry.get("min", 0)), float(entry.get("max", math.inf))
        if not low <= value <= high:
            raise InputError("cliinput.loadtest_out_of_range", field=name, entry=entry, value=_num(value),
                             low=_num(low), high=_num(high))


# ---------------------------------------------------------------------------------------------
# detection


def _decode(name: str, content: bytes) -> str:
    if not content or not content.strip():
        raise InputError("error.loadtest_empty", field=name)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("error.loadtest_unknown_format", field=name, formats=", ".join(FORMATS)) from None
    if not text.strip():
        raise InputError("error.loadtest_empty", field=name)
    return text


def _detect(name: str, content: bytes) -> tuple[str, Any]:
    """(format, parsed document): a dict for JSON formats, the CSV rows for CSV formats."""
    text = _decode(name, content)
    stripped = text.lstrip()
    if stripped[0] in "{[":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                "error.loadtest_invalid_json", field=name, line=exc.lineno, column=exc.colno, detail=exc.msg,
            ) from None
        except RecursionError:  # nesting deeper than the interpreter's recursion limit
            raise InputError("cliinput.json_nested_too_deep", field=name) from None
        except ValueError:  # an integer beyond Python's digit limit for int() (4,300 digits)
            raise InputError("cliinput.json_integer_too_long", field=name) from None
        if isinstance(doc, dict):
            fmt = _detect_json(doc)
            if fmt:
                return fmt, doc
        raise InputError("error.loadtest_unknown_format", field=name, formats=", ".join(FORMATS))
    rows = _csv_rows(name, text)
    header = [c.strip() for c in rows[0]] if rows else []
    lowered = {c.lower() for c in header}
    if {"timestamp", "user count", "total request count"} <= lowered:
        return "locust_history", rows
    if {"request count", "average response time", "requests/s"} <= lowered:
        return "locust_stats", rows
    if {"concurrency", "qps"} <= lowered:
        return "plain_csv", rows
    raise InputError("error.loadtest_unknown_format", field=name, formats=", ".join(FORMATS))


def _csv_rows(name: str, text: str) -> list[list[str]]:
    """The rows of a CSV text; a malformed line (a carriage return or NUL inside an unquoted field,
    a field over the csv module's size limit) is an InputError naming the file and line. A file
    with carriage returns only (classic Mac line ends) is read line by line."""
    if "\n" not in text:
        text = text.replace("\r", "\n")
    reader = csv.reader(io.StringIO(text))
    try:
        return list(reader)
    except csv.Error as exc:
        raise InputError("cliinput.csv_bad_line", field=name, line=reader.line_num,
                         detail=str(exc).split(" - ")[0]) from None


_VLLM_METRIC = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms$")


def _detect_json(doc: dict) -> str | None:
    if isinstance(doc.get("request_throughput"), dict) and isinstance(doc.get("request_latency"), dict):
        return "genai_perf"
    if ("request_throughput" in doc or "request_inthroughput" in doc) and any(
        _VLLM_METRIC.match(k) for k in doc
    ):
        return "vllm"
    if any(k.startswith("results_") and "_quantiles_p" in k for k in doc):
        return "llmperf"
    metrics = doc.get("metrics")
    if isinstance(metrics, dict) and ("http_req_duration" in metrics or "http_reqs" in metrics):
        return "k6"
    return None


# ---------------------------------------------------------------------------------------------
# parsing


def _parse_one(name: str, content: bytes) -> tuple[list[CurvePoint], list[Msg]]:
    fmt, doc = _detect(name, content)
    parser = {
        "vllm": _parse_vllm, "genai_perf": _parse_genai_perf, "llmperf": _parse_llmperf,
        "k6": _parse_k6, "locust_stats": _parse_locust_stats, "locust_history": _parse_locust_history,
        "plain_csv": _parse_plain_csv,
    }[fmt]
    result = parser(name, doc)
    if isinstance(result, tuple):
        return result
    return result, []


def _missing(name: str, fmt: str, missing: Iterable[str]) -> InputError:
    return InputError("error.loadtest_missing_field", field=name, format=fmt, missing=", ".join(missing))


def _number(name: str, key: str, value: Any, *, allow_none: bool = False) -> float | None:
    """A finite, non-negative number from a JSON value (numbers written as strings accepted)."""
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
        raise InputError("error.loadtest_bad_value", field=name, entry=key, value=_shown(value)) from None
    if math.isnan(number) and allow_none:
        return None
    if not math.isfinite(number) or number < 0:
        raise InputError("error.loadtest_bad_value", field=name, entry=key, value=_shown(value))
    return number


def _shown(value: Any) -> str:
    """A file's value in a message: its repr, at most 60 characters (a value may be a whole document)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deeply; an int beyond str()'s digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:59] + "…"


# A concurrency written in a file name: "concurrency16", "c16", "u32", "users-8", "16vus"; only
# between non-alphanumerics, so "c4ai" or "llama-2-7b" do not match.
_CONCURRENCY_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(?:concurrency|conc|users|vus|c|u)[-_=]?(\d+)(?![A-Za-z0-9])"
    r"|(?<![A-Za-z0-9.])(\d+)[-_]?(?:users|vus|concurrency)(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def _concurrency_from_name(name: str) -> float | None:
    """A concurrency written in the file name, e.g. ``vllm-infqps-concurrency16-….json``, ``run_u32_stats.csv``."""
    base = re.split(r"[\\/]", name)[-1]
    for match in _CONCURRENCY_IN_NAME.finditer(base):
        digits = match.group(1) or match.group(2)
        if not digits.isascii() or len(digits) > 7:  # "u１６" or a 400-digit run is not a user count
            continue
        value = float(digits)
        if value > 0:
            return value
    return None


def _resolve_concurrency(
    name: str, fmt: str, explicit: Any, qps: float, latency: dict[str, float], field_name: str,
) -> tuple[float, bool]:
    """Concurrency from the file, else the file name, else Little's law (qps × mean latency)."""
    if explicit not in (None, "", "null"):
        value = _number(name, field_name, explicit)
        if value and value > 0:
            return value, False
    from_name = _concurrency_from_name(name)
    if from_name:
        return from_name, False
    mean = latency.get("mean_ms")
    if mean and qps > 0:
        # Little's law L = λW: the mean number of requests in flight. Marked as estimated.
        return round(qps * mean / 1000.0, 3), True
    raise InputError("error.loadtest_no_concurrency", field=name, format=fmt, entry=field_name)


def _point(name: str, fmt: str, qps: float, latency: dict[str, float], explicit_conc: Any, conc_key: str) -> CurvePoint:
    if not qps > 0:  # no completed request: nothing to size with (and a zero capacity divides by zero)
        raise InputError("cliinput.loadtest_zero_qps", field=name, format=fmt)
    concurrency, estimated = _resolve_concurrency(name, fmt, explicit_conc, qps, latency, conc_key)
    return CurvePoint(
        concurrency=concurrency, qps=qps, latency_ms=latency, source=name, concurrency_estimated=estimated,
    )


def _parse_vllm(name: str, doc: dict) -> list[CurvePoint]:
    qps_key = "request_throughput" if "request_throughput" in doc else "request_inthroughput"
    qps = _number(name, qps_key, doc.get(qps_key))
    families = {"e2el": "", "ttft": "ttft_", "tpot": "tpot_"}
    latency: dict[str, float] = {}
    for key, value in doc.items():
        match = _VLLM_METRIC.match(key)
        if not match or match.group(2) not in families:
            continue
        stat = match.group(1)
        normalised = {"mean": "mean_ms", "median": "p50_ms"}.get(stat) or (
            f"{stat}_ms" if f"{stat}_ms" in STATS else None
        )
        if normalised is None:
            continue
        number = _number(name, key, value, allow_none=True)
        if number is not None:
            latency[families[match.group(2)] + normalised] = number
    if not latency:
        raise _missing(name, "vllm", ["mean_e2el_ms / mean_ttft_ms"])
    return [_point(name, "vllm", qps, latency, doc.get("max_concurrency"), "max_concurrency")]


_GENAI_FAMILIES = {"request_latency": "", "time_to_first_token": "ttft_", "inter_token_latency": "tpot_"}
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "sec": 1000.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}


def _genai_concurrency(doc: dict) -> Any:
    config = doc.get("input_config") or {}
    if not isinstance(config, dict):
        return None
    if "concurrency" in config:
        return config.get("concurrency")
    # Newer GenAI-Perf/AIPerf nest the load settings.
    for path in (("perf_analyzer", "stimulus", "concurrency"), ("loadgen", "concurrency")):
        node: Any = config
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def _parse_genai_perf(name: str, doc: dict) -> list[CurvePoint]:
    throughput = doc["request_throughput"]
    if "avg" not in throughput:
        raise _missing(name, "genai_perf", ["request_throughput.avg"])
    qps = _number(name, "request_throughput.avg", throughput["avg"])
    latency: dict[str, float] = {}
    for metric, prefix in _GENAI_FAMILIES.items():
        stats = doc.get(metric)
        if not isinstance(stats, dict):
            continue
        scale = _UNIT_TO_MS.get(str(stats.get("unit", "ms")).strip().lower(), 1.0)
        for src, dst in (("avg", "mean_ms"), ("p50", "p50_ms"), ("p90", "p90_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
            if src in stats:
                value = _number(name, f"{metric}.{src}", stats[src], allow_none=True)
                if value is not None:
                    latency[prefix + dst] = value * scale
    return [_point(name, "genai_perf", qps, latency, _genai_concurrency(doc), "input_config.concurrency")]


_LLMPERF_FAMILIES = {"end_to_end_latency_s": "", "ttft_s": "ttft_", "inter_token_latency_s": "tpot_"}


def _parse_llmperf(name: str, doc: dict) -> list[CurvePoint]:
    per_min = doc.get("results_num_completed_requests_per_min")
    if per_min is None:
        raise _missing(name, "llmperf", ["results_num_completed_requests_per_min"])
    qps = _number(name, "results_num_completed_requests_per_min", per_min) / 60.0
    latency: dict[str, float] = {}
    for metric, prefix in _LLMPERF_FAMILIES.items():
        # llmperf reports seconds; the curve is in milliseconds.
        for src, dst in (
            ("mean", "mean_ms"), ("quantiles_p50", "p50_ms"), ("quantiles_p90", "p90_ms"),
            ("quantiles_p95", "p95_ms"), ("quantiles_p99", "p99_ms"),
        ):
            key = f"results_{metric}_{src}"
            if key in doc:
                value = _number(name, key, doc[key], allow_none=True)
                if value is not None:
                    latency[prefix + dst] = value * 1000.0
    return [_point(name, "llmperf", qps, latency, doc.get("num_concurrent_requests"), "num_concurrent_requests")]


def _k6_values(metric: Any) -> dict:
    """The statistics of one k6 metric in either layout (newer: under ``values``)."""
    if not isinstance(metric, dict):
        return {}
    values = metric.get("values")
    return values if isinstance(values, dict) else metric


def _parse_k6(name: str, doc: dict) -> list[CurvePoint]:
    metrics = doc["metrics"]
    # Prefer the successful-responses sub-metric: failed requests often return fast and would
    # flatter the latency.
    duration = metrics.get("http_req_duration{expected_response:true}") or metrics.get("http_req_duration")
    missing = [k for k in ("http_req_duration", "http_reqs") if k not in metrics]
    if missing:
        raise _missing(name, "k6", [f"metrics.{k}" for k in missing])
    reqs = _k6_values(metrics["http_reqs"])
    if "rate" not in reqs:
        raise _missing(name, "k6", ["metrics.http_reqs.rate"])
    qps = _number(name, "http_reqs.rate", reqs["rate"])
    stats = _k6_values(duration)
    latency: dict[str, float] = {}
    for src, dst in (("avg", "mean_ms"), ("med", "p50_ms"), ("p(50)", "p50_ms"), ("p(90)", "p90_ms"),
                     ("p(95)", "p95_ms"), ("p(99)", "p99_ms")):
        if src in stats and dst not in latency:
            value = _number(name, f"http_req_duration.{src}", stats[src], allow_none=True)
            if value is not None:
                latency[dst] = value
    vus = _k6_values(metrics.get("vus")).get("max")
    if vus is None:
        vus_max = _k6_values(metrics.get("vus_max"))
        vus = vus_max.get("max", vus_max.get("value"))
    return [_point(name, "k6", qps, latency, vus, "metrics.vus.max")]


# -- CSV formats --------------------------------------------------------------------------------


def _csv_table(name: str, rows: list[list[str]]) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """Header index (lower-cased names) and the data rows with their 1-based line numbers."""
    header = {c.strip().lower(): i for i, c in enumerate(rows[0])}
    data = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    if not data:
        raise InputError("error.loadtest_no_rows", field=name)
    return header, data


def _cell(name: str, line: int, row: list[str], header: dict[str, int], column: str) -> float | None:
    index = header.get(column.lower())
    if index is None or index >= len(row):
        return None
    text = row[index].strip()
    if text in ("", "N/A", "n/a", "nan", "NaN"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError("error.loadtest_bad_csv_value", field=name, line=line, column=column, value=text) from None
    if not math.isfinite(value) or value < 0:
        raise InputError("error.loadtest_bad_csv_value", field=name, line=line, column=column, value=text)
    return value


# Alternative spellings accepted in the plain CSV (e.g. "p99_ttft_ms" as vLLM writes it).
_PLAIN_ALIASES: dict[str, str] = {}
for _fam, _vllm in (("", "e2el"), ("ttft_", "ttft"), ("tpot_", "tpot")):
    for _stat in STATS:
        _PLAIN_ALIASES[f"{_stat[:-3]}_{_vllm}_ms"] = _fam + _stat
        _PLAIN_ALIASES[_fam + _stat] = _fam + _stat
_PLAIN_ALIASES["median_ms"] = "p50_ms"


def _parse_plain_csv(name: str, rows: list[list[str]]) -> list[CurvePoint]:
    header, data = _csv_table(name, rows)
    missing = [c for c in PLAIN_CSV_REQUIRED if c not in header]
    if missing:
        raise InputError("error.loadtest_missing_field", field=name, format="plain_csv", missing=", ".join(missing))
    points: list[CurvePoint] = []
    seen: dict[float, int] = {}
    for line, row in data:
        concurrency = _cell(name, line, row, header, "concurrency")
        qps = _cell(name, line, row, header, "qps")
        if concurrency is None or qps is None or concurrency <= 0:
            raise InputError(
                "error.loadtest_bad_csv_value", field=name, line=line, column="concurrency/qps",
                value=",".join(row),
            )
        if qps == 0:
            # A level where every request failed (the built-in tester writes it): no curve point.
            continue
        latency: dict[str, float] = {}
        for column, key in _PLAIN_ALIASES.items():
            if column in header and key not in latency:
                value = _cell(name, line, row, header, column)
                if value is not None:
                    latency[key] = value
        if concurrency in seen:
            raise InputError(
                "error.loadtest_duplicate_row", field=name, line=line, first_line=seen[concurrency],
                concurrency=_num(concurrency),
            )
        seen[concurrency] = line
        points.append(CurvePoint(concurrency=concurrency, qps=qps, latency_ms=latency, source=name))
    return points


_LOCUST_PERCENTILES = (("50%", "p50_ms"), ("90%", "p90_ms"), ("95%", "p95_ms"), ("99%", "p99_ms"))


def _locust_aggregated(rows: list[tuple[int, list[str]]], header: dict[str, int]) -> list[tuple[int, list[str]]]:
    name_col = header.get("name")
    if name_col is None:
        return rows
    agg = [(ln, r) for ln, r in rows if name_col < len(r) and r[name_col].strip().lower() == "aggregated"]
    return agg or rows


def _parse_locust_stats(name: str, rows: list[list[str]]) -> list[CurvePoint]:
    header, data = _csv_table(name, rows)
    data = _locust_aggregated(data, header)
    if len(data) != 1:
        # Several endpoints and no "Aggregated" row: the total is not in the file.
        raise _missing(name, "locust_stats", ["Aggregated"])
    line, row = data[0]
    qps = _cell(name, line, row, header, "Requests/s")
    if qps is None:
        raise _missing(name, "locust_stats", ["Requests/s"])
    latency: dict[str, float] = {}
    mean = _cell(name, line, row, header, "Average Response Time")
    if mean is not None:
        latency["mean_ms"] = mean
    for column, key in _LOCUST_PERCENTILES:
        value = _cell(name, line, row, header, column)
        if value is not None:
            latency[key] = value
    if "p50_ms" not in latency:
        median = _cell(name, line, row, header, "Median Response Time")
        if median is not None:
            latency["p50_ms"] = median
    # _stats.csv has no user count: it comes from the file name or Little's law.
    return [_point(name, "locust_stats", qps, latency, None, "User Count")]


def _parse_locust_history(name: str, rows: list[list[str]]) -> tuple[list[CurvePoint], list[Msg]]:
    header, data = _csv_table(name, rows)
    name_col = header.get("name")
    full_history = name_col is not None and any(
        name_col < len(r) and r[name_col].strip().lower() != "aggregated" for _, r in data
    )
    data = _locust_aggregated(data, header)
    # Consecutive rows with the same user count form a plateau (one load level).
    plateaus: list[list[tuple[int, list[str]]]] = []
    last_users: float | None = None
    for line, row in data:
        users = _cell(name, line, row, header, "User Count")
        if users is None or users <= 0:
            last_users = None
            continue
        if users != last_users:
            plateaus.append([])
            last_users = users
        plateaus[-1].append((line, row))
    best: dict[float, list[tuple[int, list[str]]]] = {}
    for plateau in plateaus:
        if len(plateau) < _LOCUST_MIN_PLATEAU_ROWS:
            continue
        users = _cell(name, plateau[0][0], plateau[0][1], header, "User Count")
        if users not in best or len(plateau) > len(best[users]):
            best[users] = plateau
    if not best:
        raise InputError("error.loadtest_no_rows", field=name)
    points: list[CurvePoint] = []
    for users, plateau in sorted(best.items()):
        (l0, first), (l1, last) = plateau[0], plateau[-1]
        t0, t1 = _cell(name, l0, first, header, "Timestamp"), _cell(name, l1, last, header, "Timestamp")
        n0 = _cell(name, l0, first, header, "Total Request Count") or 0.0
        n1 = _cell(name, l1, last, header, "Total Request Count") or 0.0
        a0 = _cell(name, l0, first, header, "Total Average Response Time") or 0.0
        a1 = _cell(name, l1, last, header, "Total Average Response Time") or 0.0
        latency: dict[str, float] = {}
        if t0 is not None and t1 is not None and t1 > t0 and n1 > n0:
            # The totals are cumulative since the start; their difference over the plateau is
            # exactly this level's throughput and mean.
            qps = (n1 - n0) / (t1 - t0)
            latency["mean_ms"] = (a1 * n1 - a0 * n0) / (n1 - n0)
        else:
            qps = _cell(name, l1, last, header, "Requests/s") or 0.0
        if qps <= 0:
            continue
        for column, key in _LOCUST_PERCENTILES:
            value = _cell(name, l1, last, header, column)
            if value is not None:
                latency[key] = value
        points.append(CurvePoint(concurrency=users, qps=qps, latency_ms=latency, source=name))
    warnings: list[Msg] = []
    if not full_history:
        # Without --csv-full-history Locust writes percentiles accumulated since the start of the
        # run, so a level's percentiles also contain the lighter levels before it (biased low).
        warnings.append(Msg("loadtest.locust_cumulative_percentiles", {"file": name}))
    return points, warnings


# ---------------------------------------------------------------------------------------------
# helpers


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_DUPLICATE_REL_TOL, abs_tol=1e-9)


def _same_measurement(a: CurvePoint, b: CurvePoint) -> bool:
    if not _close(a.qps, b.qps):
        return False
    common = set(a.latency_ms) & set(b.latency_ms)
    return all(_close(a.latency_ms[k], b.latency_ms[k]) for k in common)


def _num(value: float) -> str:
    """A number for messages: integers without a trailing .0, others with up to 3 decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")
