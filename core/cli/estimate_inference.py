"""``python -m core estimate inference --loadtest FILE [FILE ...] --slo p99_ms=200 --peak-qps 120``: inference GPU count
from load-test files (any format of :mod:`core.estimation.loadtest_formats`)."""

from __future__ import annotations

import argparse

from core.cli import add_json_flag, emit
from core.cli.inputs import LIMITS_FILE, real, whole

HELP = "replicas and GPUs for an online inference service from load-test results"
DESCRIPTION = (
    "Reads one or more load-test result files (vLLM bench serve JSON, GenAI-Perf "
    "profile_export_genai_perf.json, llmperf *_summary.json, Locust _stats.csv / "
    "_stats_history.csv, k6 --summary-export JSON, or a plain CSV concurrency,qps,p50_ms,p95_ms,"
    "p99_ms; the format is recognised from the content), finds the highest QPS per replica that "
    "meets every --slo (interpolating between measured levels), and sizes replicas = "
    "max(ceil(peak / (max_qps_per_replica x target_util)) [+1], min_replicas)."
)


def _slo(text: str) -> tuple[str, float]:
    """argparse type: KEY=MS, e.g. p99_ms=200 or ttft_p99_ms=500."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=MS (e.g. p99_ms=200)")
    return key.strip(), real("slo_ms")(value.strip())


def add_inference_command(estimate_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``inference`` to the ``estimate`` group's subparsers."""
    from core.estimation.loadtest_formats import LATENCY_KEYS

    parser = estimate_subparsers.add_parser("inference", help=HELP, description=DESCRIPTION)
    parser.add_argument("--loadtest", dest="files", nargs="+", required=True, metavar="FILE",
                        help="load-test result files (several make one sweep)")
    parser.add_argument(
        "--slo", type=_slo, action="append", required=True, metavar="KEY=MS",
        help="latency limit in ms, repeatable; KEY is one of " + ", ".join(LATENCY_KEYS),
    )
    parser.add_argument("--peak-qps", type=real("peak_qps"), required=True, help="peak requests per second to serve")
    parser.add_argument("--mean-qps", type=real("mean_qps"), help="mean requests per second, for comparison")
    parser.add_argument(
        "--target-util", type=real("target_util"),
        help="share of the SLO-bound QPS to plan each replica at (default from data/inference_defaults.yaml: 0.8; "
             f"bounds in data/{LIMITS_FILE})",
    )
    parser.add_argument("--gpus-per-replica", type=whole("gpus_per_replica"), default=1, help="GPUs per replica (default 1)")
    parser.add_argument("--min-replicas", type=whole("min_replicas"), help="high-availability floor (default from data file: 2)")
    parser.add_argument("--n-plus-one", action="store_true", help="add one spare replica on top of the load")
    add_json_flag(parser)
    parser.set_defaults(handler=run)
    return parser


def read_files(paths: list[str]) -> list[tuple[str, bytes]]:
    """(name, content) of each path; a missing, unreadable or oversized file (or a folder, FIFO or
    device) is an InputError naming it."""
    from core.cli.inputs import limit, read_file

    largest = int(limit("max_loadtest_file_bytes"))
    return [(name, read_file(name, field=name, max_bytes=largest)) for name in paths]


def run(args: argparse.Namespace) -> int:
    """Parse the files, size, print."""
    from core.estimation.inference import size_inference
    from core.estimation.loadtest_formats import parse_sweep
    from core.i18n import translate

    lang = getattr(args, "lang", "en")
    sweep = parse_sweep(read_files(args.files))
    slos = {}
    for key, value in args.slo:
        slos[key] = value
    sizing = size_inference(
        sweep, slos=slos, peak_qps=args.peak_qps, mean_qps=args.mean_qps, target_util=args.target_util,
        gpus_per_replica=args.gpus_per_replica, min_replicas=args.min_replicas, n_plus_one=args.n_plus_one,
    )
    payload = sizing.as_dict()

    def text() -> str:
        op = payload["operating_point"]
        lines = [
            translate("inference.cli.sources", lang, files=", ".join(f"{s['file']} ({s['format']})" for s in payload["sources"])),
            translate(
                "inference.cli.operating_point_interpolated" if op["interpolated"] else "inference.cli.operating_point",
                lang, concurrency=op["concurrency"], qps=f"{op['qps']:.2f}", limiting_slo=op["limiting_slo"],
            ),
            translate("inference.cli.result", lang, replicas=payload["replicas"], gpus=payload["gpus"]),
            payload["formula"],
        ]
        if payload["replicas_for_mean"] is not None:
            lines.append(translate(
                "inference.cli.mean", lang, mean_qps=payload["mean_qps"], replicas=payload["replicas_for_mean"],
                gpus=payload["gpus_for_mean"],
            ))
        for warning in payload["warnings"]:
            lines.append(translate("inference.cli.warning_prefix", lang) + translate(warning["key"], lang, **warning["params"]))
        return "\n".join(lines)

    emit(args, payload, text)
    return 0
