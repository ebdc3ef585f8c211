"""Logs a cluster's log pipeline can index: one line per event, JSON on request, no credential in any line.

``COMPUTELOOP_LOG_FORMAT`` chooses the format (read by :func:`configure`, which the CLI entry point and
the app call):

* ``json`` — every log record of ComputeLoop (loggers ``core.*`` and ``computeloop.*``, INFO and up;
  other libraries WARNING and up) is one JSON object on one line on stderr, with the keys of
  :data:`FIELDS` (``time`` in UTC ISO 8601, ``level``, ``event``, ``actor``, ``subject``,
  ``outcome``) followed by ``message``, ``logger`` and, when an exception is attached, ``error`` (its
  type and message) and ``traceback``. A call names its event with ``extra={"event": ..., "actor":
  ..., "subject": ..., "outcome": ...}`` (or :func:`event`); a record without them gets its
  logger's name as event, ``system`` as actor and an outcome from its level (see :func:`_outcome`).
  Every CLI command run is one event ``cli.<group>.<command>`` (:func:`run_command`).
* ``text`` (default) — WARNING and up, one plain line each (no traceback), and only where nothing
  else has configured logging (a test runner's capture is left alone), as Python's last-resort
  handler did before.

Every string of every line, keys' values and the traceback included, goes through
:func:`core.redact.text` (URLs lose their password), and a field whose name says secret
(``password``, ``token``, ``key``, ``secret``) is masked whole (:func:`core.redact.setting`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from core import redact

FORMAT_ENV = "COMPUTELOOP_LOG_FORMAT"
FORMATS = ("text", "json")
FIELDS = ("time", "level", "event", "actor", "subject", "outcome")
# Loggers of ComputeLoop itself: core.* (``logging.getLogger(__name__)``) and computeloop.* (ui, cli).
OWN_LOGGERS = ("core", "computeloop")
CLI_LOGGER = "computeloop.cli"
_HANDLER_NAME = "computeloop-logs"
_EXTRA_KEYS = ("event", "actor", "subject", "outcome", "fields")


def log_format() -> tuple[str, str]:
    """``(format, raw value)``: the format in force and what the variable holds (an unknown value
    gives ``text``; :func:`configure` says so in one warning naming the variable)."""
    from core.config import SETTINGS

    default = next(s.default for s in SETTINGS if s.env == FORMAT_ENV)
    raw = os.environ.get(FORMAT_ENV, default)
    value = raw.strip().lower() or default
    return (value if value in FORMATS else "text"), raw


# --- cleaning -------------------------------------------------------------------------------------

def _clean(value: Any, name: str = "") -> Any:
    """``value`` with every credential masked: strings through :func:`redact.text`, a field whose
    name says secret masked whole, containers cleaned item by item."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, name) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = redact.text(str(value))
    # redact.setting decides which names are secret (it masks those whole; other values it may reshape)
    return redact.MASK if name and text and redact.setting(name.upper(), text) == redact.MASK else text


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so it stays one line."""
    return "".join(ch if ch >= " " or ch == "\t" else repr(ch)[1:-1] for ch in text).replace(
        "\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\x85")


def _outcome(record: logging.LogRecord) -> str:
    """The outcome of a record that does not name one: ``failed`` for errors (or an attached
    exception), ``warning`` for warnings, ``info`` otherwise."""
    if record.exc_info or record.levelno >= logging.ERROR:
        return "failed"
    return "warning" if record.levelno >= logging.WARNING else "info"


def _error(record: logging.LogRecord) -> tuple[str | None, str | None]:
    if not record.exc_info or record.exc_info[0] is None:
        return None, None
    kind, exc, tb = record.exc_info
    return f"{kind.__name__}: {exc}", "".join(traceback.format_exception(kind, exc, tb))


def document(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one record, cleaned (what :class:`JsonFormatter` writes)."""
    doc: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "event": getattr(record, "event", None) or record.name,
        "actor": getattr(record, "actor", None) or "system",
        "subject": getattr(record, "subject", None),
        "outcome": getattr(record, "outcome", None) or _outcome(record),
        "message": record.getMessage(),
        "logger": record.name,
    }
    fields = getattr(record, "fields", None)
    if isinstance(fields, Mapping):
        doc.update({k: v for k, v in fields.items() if k not in doc})
    error, trace = _error(record)
    if error is not None:
        doc["error"], doc["traceback"] = error, trace
    return _clean(doc)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(document(record), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level event: message [actor=… subject=… outcome=…] [error=Type: message]``, one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc = document(record)
        parts = [f"{doc['time']} {doc['level'].upper()} {doc['event']}: {doc['message']}"]
        parts += [f"{k}={doc[k]}" for k in ("actor", "subject", "outcome")
                  if doc.get(k) is not None and hasattr(record, k)]
        if doc.get("error"):
            parts.append(f"error={doc['error']}")
        return _one_line(" ".join(parts))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - property of StreamHandler
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


_state: dict[str, str] = {}
_levels: dict[str, int] = {}  # the levels of OWN_LOGGERS before the JSON format raised them to INFO


def configure() -> str:
    """Install the handler for the format in force (idempotent: called by every CLI run and every
    rerun of the app) and return the format."""
    fmt, raw = log_format()
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if ours and _state.get("format") == fmt:
        return fmt
    reset()
    if fmt == "text" and root.handlers:
        return fmt  # something else (a test runner, an embedding program) owns logging
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.setLevel(logging.INFO if fmt == "json" else logging.WARNING)
    root.addHandler(handler)
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        if fmt == "json" and (logger.level == logging.NOTSET or logger.level > logging.INFO):
            _levels[name] = logger.level
            logger.setLevel(logging.INFO)
    _state["format"] = fmt
    if raw.strip() and raw.strip().lower() not in FORMATS:
        from core.i18n import translate

        logging.getLogger("computeloop.logs").warning(
            translate("deploy.log_format_invalid", "en", variable=FORMAT_ENV, value=raw.strip(),
                      choices=", ".join(FORMATS)))
    return fmt


def reset() -> None:
    """Remove the handler :func:`configure` installed and give the loggers it raised their levels back."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    for name, level in _levels.items():
        logging.getLogger(name).setLevel(level)
    _levels.clear()
    _state.pop("format", None)


def structured() -> bool:
    """True when :func:`configure` installed the JSON format."""
    return _state.get("format") == "json"


def event(logger: logging.Logger | str, name: str, *, outcome: str, actor: str | None = None,
          subject: str | None = None, level: int = logging.INFO, message: str = "",
          exc_info: Any = None, **fields: Any) -> None:
    """Log one event with its structured fields (``fields`` become extra keys of the JSON line)."""
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    log.log(level, message or name, exc_info=exc_info,
            extra={"event": name, "actor": actor or "system", "subject": subject, "outcome": outcome,
                   "fields": fields})


def _command_words(argv: list[str]) -> list[str]:
    """The group and command of a CLI run: its leading words (``requests draft save``)."""
    words = []
    for arg in argv[:3]:
        if not (isinstance(arg, str) and arg[:1].isalpha() and arg.replace("-", "").isalnum()):
            break
        words.append(arg)
    return words


def _subject(args: Any) -> str | None:
    for name in ("id", "day", "today", "month"):
        value = getattr(args, name, None)
        if value is not None:
            return f"{name}={value}"
    return None


def run_command(handler: Callable[[Any], Any], args: Any, argv: list[str]) -> int:
    """Run a CLI command's handler and, in the JSON format, log it as one event
    ``cli.<group>.<command>``: actor (``--as``, else ``system``), subject (the record id or day it
    names), outcome (``ok``, ``failed`` with the exit code, ``refused`` for one of our errors,
    ``interrupted``) and its duration. Exceptions pass through unchanged (the CLI renders them)."""
    if not structured():
        return int(handler(args) or 0)
    from core.errors import ComputeLoopError

    words = _command_words(argv) or ["unknown"]
    name = "cli." + ".".join(words)
    who = {"actor": getattr(args, "persona", None), "subject": _subject(args)}
    command = "python -m core " + " ".join(words)
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        code = int(handler(args) or 0)
    except ComputeLoopError as exc:
        event(CLI_LOGGER, name, outcome="refused", level=logging.WARNING, message=f"{command}: refused ({exc.key})",
              reason=exc.key, duration_ms=took(), **who)
        raise
    except KeyboardInterrupt:
        event(CLI_LOGGER, name, outcome="interrupted", level=logging.WARNING, message=f"{command}: interrupted",
              duration_ms=took(), **who)
        raise
    except Exception as exc:
        event(CLI_LOGGER, name, outcome="failed", level=logging.ERROR, message=f"{command}: failed ({type(exc).__name__})",
              exc_info=exc, duration_ms=took(), **who)
        raise
    event(CLI_LOGGER, name, outcome="ok" if code == 0 else "failed", message=f"{command}: exit code {code}",
          level=logging.INFO if code == 0 else logging.ERROR, exit_code=code, duration_ms=took(), **who)
    return code
