"""Detectors of text a Chinese reader cannot read, run on what a page shows.

Pure functions on a string: the browser tests pass the main area's ``innerText`` (the caller
leaves out code blocks, ``st.code`` / ``st.json``, where file names and YAML are shown on
purpose), and AppTest checks pass the values of the elements they read. Each returns what it
found, once each, in order of appearance, so ``assert detector(text) == []`` reports the leaks.

- :func:`english_builtins`: Streamlit's own English texts. The list is taken from the frontend
  bundle of the pinned Streamlit (1.67, ``streamlit/static/static/js/*.js``): the select and
  multiselect placeholders and dropdown texts (``utils.*.js``, ``Multiselect.*.js``,
  ``Selectbox.*.js``), the sidebar navigation's "View n more / View less" (``index.*.js``), the
  file uploader's button and instructions (``FileUploader.*.js``), the date input's quick-select
  and calendar texts (``DateInput.*.js``, ``ReorderedSegments.*.js``), the text inputs' "Press
  Enter to apply" (``InputInstructions.*.js``) and the number input's range messages
  (``NumberInput.*.js``) — plus the English month and weekday names and "AM/PM" of Vega's
  default time axis and of the calendar. Meant for the zh-CN UI only: in English these are fine.
- :func:`raw_identifiers`: programmers' names shown as if they were words — snake_case
  identifiers (two or more lowercase words joined by underscores: ``p99_ms``,
  ``standard_ops``, metric names such as ``container_cpu_usage_seconds_total``), upper-case
  setting and metric names (``COMPUTELOOP_CLUSTER_BACKEND``, ``DCGM_FI_DEV_GPU_UTIL``),
  catalog-style keys in brackets (``[no_estimate_for_large_request]``), dotted message keys
  (``status.in_review``, ``reclaim.cand.review`` — what a missing translation shows) and
  filesystem paths (``/var/lib/computeloop/samples``, ``data/queue_policy.yaml``). A leak in
  either language. Not counted: e-mail addresses and URLs (removed before the scan), hyphenated
  names (Kubernetes namespaces, pools and clusters such as ``hq-ft`` or ``js-nanjing`` are
  names people use), GPU models (``A100-80GB``), version numbers and single words.
- :func:`raw_values`: Python / JSON / pandas empty values printed as text (``None``, ``null``,
  ``NaN``, ``NaT``, ``<NA>``, ``True``/``False``): a cell or a form field that should have said
  "-" or "否".
- :func:`user_ids`: login ids (``zhang.wei``) where a person's name belongs; the caller passes
  the ids (``data/personas.yaml``), since a dotted id cannot be told from other text by shape.
"""

from __future__ import annotations

import re
from typing import Iterable

__all__ = ["english_builtins", "raw_identifiers", "raw_values", "user_ids", "leaks"]


def _unique(found: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in found:
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


# --------------------------------------------------------------------------- Streamlit built-ins

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DAY_ABBR = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")

# Phrases exactly as the 1.67 bundle writes them (``${n}`` turned into \d+). Case-sensitive:
# these are UI strings, and a lower-case "upload" inside a sentence is not the button.
_BUILTIN_PHRASES: tuple[str, ...] = (
    # select / multiselect placeholders (utils.*.js) and dropdowns (Selectbox/Multiselect.*.js)
    r"Choose or add options", r"Choose or add an option", r"Choose options", r"Choose an option",
    r"Add an option", r"Add options", r"No options to select\.?", r"No results", r"Select all",
    r"Select \d+ matches", r"Clear all", r"Clear value",
    r"You can only select up to \d+ options?\. Remove an option first\.",
    # sidebar navigation (index.*.js) and toasts
    r"View \d+ more", r"View less", r"view more", r"view less",
    # file uploader (FileUploader.*.js; "Browse files" and "Limit … per file" are older versions')
    r"Drag and drop (?:a )?files? here", r"Drag and drop directories here", r"Browse files",
    r"Upload directories", r"Upload", r"Add files", r"Uploading\.\.\.",
    r"(?:Limit )?\d+(?:\.\d+)?\s?[KMGT]?B per file(?: • [A-Z0-9 ,.]+)?",
    r"[\w/.+-]* ?files are not allowed\.", r"must be [\d.]+\s?[KMGT]?B or smaller\.",
    # date input (DateInput.*.js, ReorderedSegments.*.js)
    r"Date range", r"Select\.\.\.", r"Quick select a date range", r"Choose date range", r"Choose date",
    r"Clear dates?", r"Past Week", r"Past Month", r"Past \d+ Months", r"Past Year", r"Past \d+ Years",
    # text and number inputs (InputInstructions.*.js, NumberInput.*.js, TextInput.*.js)
    r"Press (?:Ctrl|⌘)\+Enter to (?:apply|submit form)", r"Press Enter to (?:apply|submit form)",
    r"Number is (?:above|below|outside) the allowed range\.[^\n]*", r"Invalid input\.", r"Clear entry",
    # time axes (Vega's default multi-format: "03 AM", "Sat 07", "Nov 15", "December")
    r"\d{1,2}(?::\d{2})? ?[AP]M",
    *(rf"{name}" for name in _MONTHS + _DAYS),
    *(rf"{abbr}\.?" for abbr in _MONTH_ABBR + _DAY_ABBR),
)
_BUILTIN = re.compile(r"(?<![A-Za-z])(?:" + "|".join(_BUILTIN_PHRASES) + r")(?![A-Za-z])")


def english_builtins(text: str) -> list[str]:
    """Streamlit's own English texts (and English date parts) found in ``text`` (zh-CN pages)."""
    return _unique(m.group(0) for m in _BUILTIN.finditer(text or ""))


# --------------------------------------------------------------------------- raw identifiers

_URL = re.compile(r"\b(?:https?|ftp|file)://\S+", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IDENTIFIER_PATTERNS: tuple[str, ...] = (
    # [no_estimate_for_large_request], [reclaim.cand.review]: a key in brackets
    r"\[[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+\]",
    # absolute paths (/tmp/x/samples) and relative paths to a data or code file
    r"(?<![A-Za-z0-9_/.:~-])/(?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_.-]*[A-Za-z0-9_]",
    r"(?<![A-Za-z0-9_/.-])(?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_-]+\.(?:ya?ml|json|csv|py|toml|po|db|sqlite|parquet|log)"
    r"(?![A-Za-z0-9_])",
    # dotted message keys with a snake_case part or three parts: status.in_review, a.b.c
    r"(?<![A-Za-z0-9_.@-])[a-z][a-z0-9]*(?:\.[a-z][a-z0-9]*)*\.[a-z][a-z0-9]*_[a-z0-9_]+(?![A-Za-z0-9_@-])",
    r"(?<![A-Za-z0-9_.@-])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){2,}(?![A-Za-z0-9_.@-])",
    # UPPER_SNAKE settings and metric names: COMPUTELOOP_CLUSTER_BACKEND, DCGM_FI_DEV_GPU_UTIL
    r"(?<![A-Za-z0-9_-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![A-Za-z0-9_-])",
    # snake_case: p99_ms, ttft_p99_ms, standard_ops, kube_pod_container_resource_requests
    r"(?<![A-Za-z0-9_-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_-])",
)
_IDENTIFIER = re.compile("|".join(f"(?:{p})" for p in _IDENTIFIER_PATTERNS))


def _scrubbed(text: str) -> str:
    """``text`` without URLs and e-mail addresses (kept apart by a space)."""
    return _EMAIL.sub(" ", _URL.sub(" ", text or ""))


def raw_identifiers(text: str) -> list[str]:
    """Programmers' names found in ``text``: snake_case and UPPER_SNAKE identifiers (settings,
    metric names), bracketed or dotted message keys and file paths. URLs and e-mail addresses are
    not counted."""
    return _unique(m.group(0) for m in _IDENTIFIER.finditer(_scrubbed(text)))


_RAW_VALUE = re.compile(r"(?<![A-Za-z0-9_<])(?:None|null|NULL|NaN|nan|NaT|<NA>|True|False)(?![A-Za-z0-9_>])")


def raw_values(text: str) -> list[str]:
    """Empty or boolean values printed the way Python, JSON or pandas print them."""
    return _unique(m.group(0) for m in _RAW_VALUE.finditer(_scrubbed(text)))


def user_ids(text: str, ids: Iterable[str]) -> list[str]:
    """The login ids among ``ids`` that ``text`` shows (not as part of an e-mail address)."""
    scrubbed = _scrubbed(text)
    found = []
    for uid in ids:
        match = re.search(rf"(?<![A-Za-z0-9_.@-]){re.escape(uid)}(?![A-Za-z0-9_@-]|\.[A-Za-z0-9_])", scrubbed)
        if match:
            found.append((match.start(), uid))
    return [uid for _, uid in sorted(found)]


def leaks(text: str, lang: str, ids: Iterable[str] = ()) -> dict[str, list[str]]:
    """Every detector that applies to a page in ``lang``, by name; only the non-empty ones."""
    found = {
        "english_builtins": english_builtins(text) if lang == "zh-CN" else [],
        "raw_identifiers": raw_identifiers(text),
        "raw_values": raw_values(text),
        "user_ids": user_ids(text, ids),
    }
    return {name: items for name, items in found.items() if items}
