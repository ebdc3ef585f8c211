"""``python -m core loadtest URL ...``: the built-in load tester (see :mod:`core.loadtest`)."""

from __future__ import annotations

import argparse
import sys
import urllib.parse

from core.cli import add_json_flag, emit, int_list
from core.cli.inputs import loads_json, real, whole, writable_file
from core.errors import InputError

HELP = "sweep an HTTP endpoint over concurrency levels and write the CSV curve"
DESCRIPTION = (
    "Closed-loop load test of one HTTP endpoint: for each concurrency level, N worker threads "
    "POST requests back to back until --duration or --max-requests (whichever comes first), "
    "then the next level. Writes the CSV curve (concurrency,qps,mean_ms,p50_ms,p90_ms,p95_ms,"
    "p99_ms,errors) that `estimate inference` reads. Only loopback URLs (127.0.0.1, ::1, "
    "localhost) are accepted unless --allow-remote is given; note that this machine has no "
    "network access anyway, so a remote URL would only produce errors. The whole run stops by "
    "itself after 30 minutes at most."
)


def register(groups: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the top-level ``loadtest`` command to ``groups``."""
    from core import loadtest

    parser = groups.add_parser("loadtest", help=HELP, description=DESCRIPTION)
    parser.add_argument("url", help="endpoint to POST to, e.g. http://127.0.0.1:8000/predict")
    parser.add_argument(
        "--concurrency", type=int_list, default=[1, 2, 4, 8, 16], metavar="N,N,...",
        help=f"concurrency levels, run in this order (default 1,2,4,8,16; at most {loadtest.MAX_LEVELS} "
        f"levels of at most {loadtest.MAX_CONCURRENCY})",
    )
    parser.add_argument(
        "--duration", type=real("loadtest_duration"), default=20.0, metavar="S",
        help=f"seconds per level (default 20, at most {int(loadtest.MAX_DURATION_S)})",
    )
    parser.add_argument(
        "--max-requests", type=whole("loadtest_max_requests"), default=100_000, metavar="N",
        help="requests per level at most; the level ends at whichever of duration and count comes first",
    )
    parser.add_argument(
        "--timeout", type=real("loadtest_timeout"), default=30.0, metavar="S",
        help=f"per-request timeout in seconds (default 30, at most {int(loadtest.MAX_TIMEOUT_S)}); a timeout counts as an error",
    )
    parser.add_argument(
        "--mode", choices=list(loadtest.MODES), default="json",
        help="json: POST --body as is; openai: POST an OpenAI-compatible /v1/completions request "
        "(the path is added when the URL has none) with a short prompt and max_tokens=16",
    )
    parser.add_argument("--body", metavar="JSON", help="request body (json mode) or extra fields (openai mode); default {}")
    parser.add_argument("--model", metavar="NAME", help="model name for --mode openai (default 'default')")
    parser.add_argument("--out", metavar="FILE", help="write the CSV curve to FILE (otherwise it is printed)")
    parser.add_argument(
        "--allow-remote", action="store_true",
        help="allow a non-loopback URL (this machine has no network: expect only errors)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)
    return parser


def _check_url_syntax(url: str) -> None:
    """Refuse a URL urllib cannot take apart (``http://[::1``, a port beyond 65535): urlsplit and
    the port lookup raise ValueError, which core.loadtest.check_url does not expect."""
    try:
        urllib.parse.urlsplit(url).port  # noqa: B018 - the lookup is the check
    except ValueError:
        raise InputError("error.loadtest_bad_url", field="url", value=url) from None


def run(args: argparse.Namespace) -> int:
    """Run the sweep, write the CSV, print the levels."""
    from core import loadtest
    from core.i18n import translate

    lang = getattr(args, "lang", "en")
    _check_url_syntax(args.url)
    if args.body is not None:  # deep nesting made json.loads fail with RecursionError in core.loadtest
        loads_json(args.body, field="--body")
    out_path = writable_file(args.out, field="--out") if args.out else None

    def progress(level: loadtest.LevelResult) -> None:
        # Progress on stderr so stdout stays clean for --json and for the printed CSV.
        sys.stderr.write(translate(
            "loadtest.progress", lang, concurrency=level.concurrency, requests=level.requests,
            errors=level.errors, qps=f"{level.qps:.2f}",
        ) + "\n")

    result = loadtest.run_sweep(
        args.url, args.concurrency, duration_s=args.duration, max_requests=args.max_requests,
        timeout_s=args.timeout, mode=args.mode, body=args.body, model=args.model,
        allow_remote=args.allow_remote, progress=progress,
    )
    csv_text = result.to_csv()
    if out_path is not None:
        try:
            out_path.write_text(csv_text, encoding="utf-8")
        except OSError as exc:
            raise InputError("cliinput.file_unwritable", field="--out", detail=exc.strerror or type(exc).__name__) from None
    payload = {**result.as_dict(), "out": str(out_path) if out_path else None}

    def text() -> str:
        lines = []
        if out_path is None:
            lines.append(csv_text.rstrip("\n"))
        else:
            lines.append(translate("loadtest.written", lang, path=str(out_path), levels=len(result.levels)))
        if result.skipped_levels:
            lines.append(translate(
                "loadtest.skipped_levels", lang, levels=", ".join(map(str, result.skipped_levels)),
            ))
        return "\n".join(lines)

    emit(args, payload, text)
    return 0
