"""The command line: ``python -m core <group> <command> ...``.

Every command has ``--help``; ``--json`` prints a JSON document on stdout; bad input prints one
line on stderr and exits with code 2 (argparse's own convention for usage errors). Each group
lives in its own module with a ``register(subparsers)`` function. What the arguments accept
(ranges, dates, files, JSON) is in :mod:`core.cli.inputs` with its bounds in data/cli_limits.yaml.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from typing import Any, Callable, Sequence

from core.errors import ComputeLoopError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1  # an unexpected error, and the Python docs' exit code after a BrokenPipeError
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _stderr_line(f"{self.prog}: error: {message}")
        raise SystemExit(EXIT_BAD_INPUT)


# Characters that end a line for str.splitlines() or a terminal, besides the C0/C1 controls.
_LINE_BREAKS = frozenset("\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(text: str, width: int = 2000) -> str:
    """``text`` as one line: line breaks and other control characters escaped (``\\n``), runs of
    spaces collapsed, at most ``width`` characters."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch == "\t":
            out.append(" ")
        elif code < 32 or 0x7F <= code < 0xA0 or ch in _LINE_BREAKS:
            out.append(repr(ch)[1:-1])
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    line = re.sub(" {2,}", " ", "".join(out)).strip()
    return line if len(line) <= width else line[: width - 1] + "…"


def _stderr_line(text: str) -> None:
    """Write ``text`` as exactly one line on stderr (a closed stderr is ignored)."""
    try:
        sys.stderr.write(one_line(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


from core.cli.inputs import int_list as _int_list  # noqa: E402 - inputs needs nothing from here
from core.cli.inputs import positive_float, positive_int  # noqa: E402,F401 - used by the groups

#: argparse type: comma-separated concurrency levels, e.g. 1,2,4,8 (bounds: data/cli_limits.yaml).
int_list = _int_list("concurrency")


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
    from core.cli import (
        alerts, allocations, db, demo, estimate, jobs, loadtest, notify, reclaim, report, requests, scheduler,
        support,
    )

    parser = OneLineParser(prog="python -m core", description="ComputeLoop command line.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP", parser_class=OneLineParser)
    for module in (estimate, db, demo, loadtest, notify, requests, allocations, jobs, reclaim, report, alerts,
                   scheduler, support):
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command; returns the process exit code.

    0 done; 2 bad input (one line on stderr naming the argument or field; nothing written); 1 the
    command failed otherwise: an exception that is not one of ours becomes one line with its type
    (never a traceback), and output to a closed pipe (``… | head -1``) ends quietly as the Python
    documentation recommends (stdout pointed at devnull so the flush at exit cannot fail again).
    Usage errors and ``--help`` leave as argparse leaves them: ``SystemExit(2)`` after their one line,
    ``SystemExit(0)`` (callers of ``main`` in the tests rely on it). ``parser`` reuses a parser built
    once (the fuzz test runs thousands of commands in-process).
    """
    from core import logs
    from core.cli import inputs

    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        inputs.set_language(argv)
        logs.configure()  # COMPUTELOOP_LOG_FORMAT: one JSON line per event (core/logs.py)
        try:
            inputs.check_argv(argv)
            args = (parser or build_parser()).parse_args(argv)
            code = logs.run_command(args.handler, args, argv)  # one event per run in the JSON format
        except ComputeLoopError as exc:
            _stderr_line(f"error: {_render(exc, getattr(args, 'lang', inputs.language()))}")
            return EXIT_BAD_INPUT
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_FAILED
    except KeyboardInterrupt:
        _stderr_line(_internal_text("cliinput.interrupted", argv))
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        _stderr_line(_internal_text("cliinput.unexpected", argv, error=type(exc).__name__))
        return EXIT_FAILED


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at devnull so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # stdout is not a file (captured in-process): nothing flushes it at exit


def _internal_text(key: str, argv: Sequence[str], **params: str) -> str:
    """``error: …`` for an unexpected failure of the command named by the leading words of argv."""
    from core.cli.inputs import language

    command = " ".join(a for a in argv[:3] if isinstance(a, str) and a[:1].isalpha())[:60] or "python -m core"
    try:
        from core.i18n import translate

        return "error: " + translate(key, language(), command=command, **params)
    except Exception:  # noqa: BLE001 - the catalogs themselves may be what failed
        return f"error: {command}: {params.get('error', 'interrupted')}"


def _render(exc: ComputeLoopError, lang: str) -> str:
    from core.errors import InputError
    from core.i18n import translate

    text = " ".join(translate(exc.key, lang, **exc.params).split())
    return f"{exc.field}: {text}" if isinstance(exc, InputError) else text
