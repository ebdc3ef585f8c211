"""The command line: ``python -m core <group> <command> ...``.

Every command has ``--help``; ``--json`` prints a JSON document on stdout; bad input prints one
line on stderr and exits with code 2 (argparse's own convention for usage errors). Each group
lives in its own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from core.errors import ComputeLoopError

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (accepts 7e9)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (accepts 1e3 when it is whole)."""
    value = positive_float(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number")
    return int(value)


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers, e.g. 1,2,4,8."""
    return [positive_int(part) for part in text.split(",") if part.strip()]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Give a command the common ``--json`` and ``--lang`` options."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--lang", choices=["en", "zh-CN"], default="en", help="language of text output")


def add_persona_flag(parser: argparse.ArgumentParser) -> None:
    """``--as PERSONA_ID`` (who acts, from data/personas.yaml) and ``--json``."""
    parser.add_argument("--as", dest="persona", required=True, metavar="PERSONA_ID", help="who acts (data/personas.yaml)")
    add_json_flag(parser)


def persona(persona_id: str):
    """The demo persona ``persona_id``; InputError naming ``--as`` when there is none."""
    from core.errors import InputError
    from core.identity import load_personas

    for p in load_personas():
        if p.id == persona_id:
            return p
    raise InputError("lifecycle.unknown_persona", field="--as", value=persona_id)


def open_sessions():
    """The session factory of the configured database (one per command run)."""
    from core.context import build

    return build().sessions


def emit(args: argparse.Namespace, payload: Any, text: Callable[[], str]) -> None:
    """Print ``payload`` as JSON when ``--json`` was given, otherwise the human text."""
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text().rstrip("\n") + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command group registered."""
    from core.cli import allocations, db, demo, estimate, jobs, loadtest, notify, reclaim, report, requests

    parser = OneLineParser(prog="python -m core", description="ComputeLoop command line.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP", parser_class=OneLineParser)
    for module in (estimate, db, demo, loadtest, notify, requests, allocations, jobs, reclaim, report):
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ComputeLoopError as exc:
        lang = getattr(args, "lang", "en")
        sys.stderr.write(f"error: {_render(exc, lang)}\n")
        return EXIT_BAD_INPUT


def _render(exc: ComputeLoopError, lang: str) -> str:
    from core.errors import InputError
    from core.i18n import translate

    text = " ".join(translate(exc.key, lang, **exc.params).split())
    return f"{exc.field}: {text}" if isinstance(exc, InputError) else text
