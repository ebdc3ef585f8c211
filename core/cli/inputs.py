"""What the command line accepts: argparse types bounded by ``data/cli_limits.yaml``, guards for
argument text, input files and JSON documents.

Every refusal names the argument (argparse prefixes ``argument --x:``) or the field, and says the
bound and where it comes from, in the language of ``--lang`` (looked up in argv before parsing, so
argparse's type errors are translated too). Numbers and dates are ASCII: ``float('１６')`` and
``int('２０２６')`` would otherwise quietly turn full-width digits into another value.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import math
import os
import re
import stat
from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

from core.errors import InputError

LIMITS_FILE = "cli_limits.yaml"

_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("cli_lang", default="en")

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)
# Lone surrogates (undecodable bytes in argv, "\ud800" in JSON) and NUL cannot be stored as text
# (SQLite's and psycopg's UTF-8 encoders refuse them; PostgreSQL text never holds NUL).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


# --------------------------------------------------------------------------- limits and messages


def limits() -> dict[str, Any]:
    """``data/cli_limits.yaml`` (cached until the file changes)."""
    from core.datafiles import load_yaml

    raw = load_yaml(LIMITS_FILE)
    if not isinstance(raw, dict) or not isinstance(raw.get("numbers"), dict):
        raise InputError("error.data_file_invalid", field=LIMITS_FILE, line=0, detail="numbers: missing")
    return raw


def limit(name: str) -> Any:
    """One top-level figure of the limits file (``max_integer``, ``earliest_date``, ...)."""
    value = limits().get(name)
    if value is None:
        raise InputError("error.data_file_invalid", field=LIMITS_FILE, line=0, detail=f"{name}: missing")
    return value


def work_limit(name: str) -> int:
    """A bound on work from the ``work:`` section (``max_backfill_days``, ``max_fleet_samples``)."""
    work = limits().get("work") or {}
    if name not in work:
        raise InputError("error.data_file_invalid", field=LIMITS_FILE, line=0, detail=f"work.{name}: missing")
    return int(work[name])


def bounds(name: str) -> tuple[float, float]:
    """(min, max) of the number ``name`` in the ``numbers:`` section."""
    entry = limits()["numbers"].get(name)
    if not isinstance(entry, dict) or "min" not in entry or "max" not in entry:
        raise InputError("error.data_file_invalid", field=LIMITS_FILE, line=0, detail=f"numbers.{name}: missing")
    return float(entry["min"]), float(entry["max"])


def set_language(argv: Sequence[str]) -> None:
    """Take ``--lang`` from ``argv`` (before parsing) for the messages of the argument types."""
    lang = "en"
    for i, item in enumerate(argv):
        if item == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
        elif isinstance(item, str) and item.startswith("--lang="):
            lang = item.split("=", 1)[1]
    _LANG.set("zh-CN" if lang == "zh-CN" else "en")


def language() -> str:
    """The language of the command being parsed (``en`` unless ``--lang zh-CN``)."""
    return _LANG.get()


def message(key: str, **params: Any) -> str:
    """The text of ``key`` in the command's language."""
    from core.i18n import translate

    return translate(key, language(), **params)


def _refuse(key: str, **params: Any) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message(key, **params))


def shown(text: str, width: int = 60) -> str:
    """A value as it appears in a message: quoted, control characters escaped, at most ``width``."""
    value = repr(text)
    return value if len(value) <= width else value[: width - 1] + "…"


def _fmt(value: float) -> str:
    """A bound for a message: 1e+14 for a round power of ten from a million up, other whole numbers
    in full (2147483647), fractions as they are (0.05)."""
    if not float(value).is_integer() or abs(value) >= 1e16:
        return f"{value:g}"
    if abs(value) >= 1e6 and float(f"{value:.0e}") == value:
        return f"{value:.0e}"
    return str(int(value))


# --------------------------------------------------------------------------- numbers


def _parse(text: str) -> float | int:
    """An ASCII decimal number (``7e9``, ``0.5``, ``1024``); ArgumentTypeError otherwise. Whole
    numbers written without a fraction or exponent stay exact ints (at most 30 digits read)."""
    t = str(text).strip()
    if not _NUMBER.fullmatch(t):
        raise _refuse("cliinput.not_a_number", value=shown(text))
    if _WHOLE.fullmatch(t):
        digits = t.lstrip("+-").lstrip("0")
        if len(digits) > 30:  # beyond any bound; int() of thousands of digits is slow and capped
            return math.copysign(math.inf, -1.0 if t.startswith("-") else 1.0)
        return int(t)
    return float(t)


def _check(value: float | int, text: str, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise _refuse("cliinput.out_of_range", value=shown(text), low=_fmt(low), high=_fmt(high))


def real(name: str) -> Callable[[str], float]:
    """argparse type: a number within ``numbers.<name>`` of the limits file."""

    def convert(text: str) -> float:
        value = _parse(text)
        low, high = bounds(name)
        _check(value, text, low, high)
        return float(value)

    convert.__name__, convert.bounds_name = f"real_{name}", name  # type: ignore[attr-defined]
    return convert


def whole(name: str) -> Callable[[str], int]:
    """argparse type: a whole number within ``numbers.<name>`` (``1e3`` is accepted when whole)."""

    def convert(text: str) -> int:
        value = _parse(text)
        low, high = bounds(name)
        _check(value, text, low, high)
        if value != int(value):
            raise _refuse("cliinput.not_whole", value=shown(text))
        return int(value)

    convert.__name__, convert.bounds_name = f"whole_{name}", name  # type: ignore[attr-defined]
    return convert


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (accepts 7e9), normal (not below 2.2e-308)."""
    value = _parse(text)
    if not (math.isfinite(value) and value >= 2.2250738585072014e-308):
        raise _refuse("cliinput.not_positive", value=shown(text))
    return float(value)


def positive_int(text: str) -> int:
    """argparse type: a whole number from 1 to the database's integer maximum (``max_integer``)."""
    value = _parse(text)
    high = float(limit("max_integer"))
    _check(value, text, 1, high)
    if value != int(value):
        raise _refuse("cliinput.not_whole", value=shown(text))
    return int(value)


def record_id(text: str) -> int:
    """argparse type: an id of a stored row, 1 … ``max_integer`` (PostgreSQL ``integer``)."""
    return positive_int(text)


def sample_step(name: str) -> Callable[[str], int]:
    """argparse type: a step in seconds within ``numbers.<name>`` that divides a day (86,400 s) into
    whole samples, as the rollup counts them."""
    one = whole(name)

    def convert(text: str) -> int:
        value = one(text)
        if 86400 % value:
            raise _refuse("cliinput.step_not_divisor", value=shown(text))
        return value

    convert.__name__, convert.bounds_name = f"whole_{name}", name  # type: ignore[attr-defined]
    return convert


def int_list(name: str) -> Callable[[str], list[int]]:
    """argparse type: comma-separated whole numbers within ``numbers.<name>``, e.g. 1,2,4,8."""
    one = whole(name)

    def convert(text: str) -> list[int]:
        values = [one(part) for part in str(text).split(",") if part.strip()]
        if not values:
            raise _refuse("cliinput.not_a_number", value=shown(text))
        return values

    convert.__name__, convert.bounds_name = f"list_{name}", name  # type: ignore[attr-defined]
    return convert


# --------------------------------------------------------------------------- dates


def date_bounds() -> tuple[date, date]:
    """(earliest, latest) date the command line accepts."""
    return date.fromisoformat(str(limit("earliest_date"))), date.fromisoformat(str(limit("latest_date")))


def day(text: str) -> date:
    """argparse type: an ASCII ``YYYY-MM-DD`` within the limits file's dates."""
    m = _DAY.fullmatch(str(text).strip())
    try:
        value = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    except ValueError:
        value = None
    if value is None:
        raise _refuse("cliinput.bad_date", value=shown(text))
    earliest, latest = date_bounds()
    if not earliest <= value <= latest:
        raise _refuse("cliinput.date_range", value=shown(text), earliest=earliest.isoformat(), latest=latest.isoformat())
    return value


def check_month(text: str, *, field: str) -> str:
    """``text`` as an ASCII ``YYYY-MM`` within the limits file's dates; InputError naming ``field``
    otherwise (checked in the handler, where the report service raises its own month errors too)."""
    m = _MONTH.fullmatch(str(text).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise InputError("cliinput.bad_month", field=field, value=shown(text))
    earliest, latest = date_bounds()
    first = int(m.group(1)) * 12 + int(m.group(2))
    if not earliest.year * 12 + earliest.month <= first <= latest.year * 12 + latest.month:
        raise InputError("cliinput.date_range", field=field, value=shown(text), earliest=earliest.isoformat()[:7],
                         latest=latest.isoformat()[:7])
    return f"{m.group(1)}-{m.group(2)}"


def choice(choices: Sequence[str]) -> Callable[[str], str]:
    """argparse type: one of ``choices``; the refusal lists them all."""
    allowed = tuple(choices)

    def convert(text: str) -> str:
        if text not in allowed:
            raise _refuse("cliinput.not_a_choice", value=shown(text), choices=", ".join(allowed))
        return text

    convert.__name__, convert.choices = "choice", allowed  # type: ignore[attr-defined]
    return convert


# --------------------------------------------------------------------------- argument text


def check_argv(argv: Sequence[str]) -> None:
    """Refuse an argument that cannot be stored or shown: NUL, undecodable bytes (lone surrogates)
    or longer than ``max_argument_chars``. Raises InputError naming the argument."""
    longest = int(limit("max_argument_chars"))
    for i, item in enumerate(argv):
        if not isinstance(item, str):
            raise InputError("cliinput.bad_text", field=_name_of(argv, i), position=i + 1)
        if _BAD_TEXT.search(item):
            raise InputError("cliinput.bad_text", field=_name_of(argv, i), position=i + 1)
        if len(item) > longest:
            raise InputError("cliinput.too_long", field=_name_of(argv, i), length=len(item), limit=longest)


def _name_of(argv: Sequence[str], i: int) -> str:
    """The option an argument belongs to (``--reason``), else its position."""
    item = argv[i] if isinstance(argv[i], str) else ""
    if item.startswith("--") and not _BAD_TEXT.search(item):
        return item.split("=", 1)[0][:40]
    if i > 0 and isinstance(argv[i - 1], str) and argv[i - 1].startswith("--") and not _BAD_TEXT.search(argv[i - 1]):
        return argv[i - 1][:40]
    return message("cliinput.argument_n", position=i + 1)


# --------------------------------------------------------------------------- files and JSON


def read_file(path_text: str, *, field: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; InputError naming ``field`` when it is
    missing, a folder, a FIFO or device (``/dev/zero``), too large or unreadable."""
    path = Path(path_text)
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        raise InputError("cliinput.file_missing", field=field, path=shown(path_text)) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("cliinput.file_is_dir", field=field, path=shown(path_text))
    if not stat.S_ISREG(info.st_mode):
        raise InputError("cliinput.file_not_regular", field=field, path=shown(path_text))
    if info.st_size > max_bytes:
        raise InputError("cliinput.file_too_large", field=field, size=info.st_size, limit=max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError("cliinput.file_unreadable", field=field, detail=exc.strerror or type(exc).__name__) from None
    if len(data) > max_bytes:  # grew while being read
        raise InputError("cliinput.file_too_large", field=field, size=len(data), limit=max_bytes)
    return data


def writable_file(path_text: str, *, field: str) -> Path:
    """``path_text`` as a file to write: not a folder, its folder exists. InputError naming ``field``."""
    path = Path(path_text)
    if _BAD_TEXT.search(str(path_text)) or not str(path_text).strip():
        raise InputError("cliinput.out_unusable", field=field, path=shown(str(path_text)))
    if path.is_dir():
        raise InputError("cliinput.out_is_dir", field=field, path=shown(str(path_text)))
    parent = path.parent
    if not parent.is_dir():
        raise InputError("cliinput.out_folder_missing", field=field, path=shown(str(parent)))
    return path


class _BigInt(str):
    """A JSON integer with more digits than allowed (kept as text until the walk names its place)."""


class _BadConstant(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _BadConstant(name)


def loads_json(data: bytes | str, *, field: str) -> Any:
    """A JSON document with bounds: nesting at most ``max_json_depth``, integers at most
    ``max_json_integer_digits`` digits, no NaN/Infinity, strings without NUL or unpaired
    surrogates. InputError naming ``field`` (and the place inside the document) otherwise."""
    max_digits = int(limit("max_json_integer_digits"))
    max_depth = int(limit("max_json_depth"))

    def parse_int(text: str) -> Any:
        return _BigInt(text) if len(text.lstrip("-")) > max_digits else int(text)

    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError("cliinput.json_not_utf8", field=field, offset=exc.start) from None
    try:
        doc = json.loads(data, parse_int=parse_int, parse_constant=_constant)
    except _BadConstant as exc:
        raise InputError("cliinput.json_constant", field=field, value=str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError("cliinput.json_invalid", field=field, line=exc.lineno, column=exc.colno, detail=exc.msg) from None
    except RecursionError:
        raise InputError("cliinput.json_too_deep", field=field, limit=max_depth) from None
    except ValueError as exc:
        raise InputError("cliinput.json_invalid", field=field, line=0, column=0, detail=type(exc).__name__) from None
    _walk(doc, field=field, max_digits=max_digits, max_depth=max_depth)
    return doc


def _walk(doc: Any, *, field: str, max_digits: int, max_depth: int) -> None:
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > max_depth:
            raise InputError("cliinput.json_too_deep", field=field, limit=max_depth)
        if isinstance(node, _BigInt):
            raise InputError("cliinput.json_big_integer", field=field, where=where or "/",
                             digits=len(node.lstrip("-")), limit=max_digits)
        if isinstance(node, str):
            if _BAD_TEXT.search(node):
                raise InputError("cliinput.json_bad_text", field=field, where=where or "/")
        elif isinstance(node, dict):
            for key, value in node.items():
                if _BAD_TEXT.search(key):
                    raise InputError("cliinput.json_bad_text", field=field, where=where or "/")
                stack.append((value, f"{where}/{shown(key, 40)[1:-1]}", depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{where}/{i}", depth + 1) for i, value in enumerate(node))
