"""Notice templates: subject and plain-text body per template and language, from the catalogs.

Each template ``<name>`` has the catalog keys ``notify.<name>.subject`` and
``notify.<name>.body`` (files ``core/i18n/catalogs/notify.*.po``), filled with the named
parameters stored on the outbox row. The parameters each template needs are listed in
:data:`TEMPLATES`; :func:`check` validates them when a notice is queued, so a bad notice fails
the change that causes it rather than the sender hours later.

Parameter types: ids, titles, names, dates are strings (dates already formatted ISO
``YYYY-MM-DD``); ``days_left`` and ``gpus`` are integers; ``gpu_util`` and ``mem_util`` are
ratios 0–1 (rendered as percentages); ``level`` is ``yellow`` or ``orange`` and is itself
translated (黄色预警 / 橙色预警), and a report's ``scope`` is named in the notice's language (全公司 /
Whole company, or the unit's name). A notice about a request also carries ``request_id`` (an integer):
the inbox and the e-mail link to the request with it (:mod:`core.notifications.links`).

Each template belongs to one kind (:data:`KINDS`), by which the inbox filters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Mapping

from core.i18n import catalog, normalize_lang, placeholders
from core.notifications import links
from core.reports.scope import scope_name

# template -> parameters it needs (the catalog texts use exactly these placeholders)
TEMPLATES: dict[str, frozenset[str]] = {
    # requests are named by their number (CR-2026-000020), as on every page, never by the row id
    "request_submitted": frozenset({"number", "title"}),
    "request_approved": frozenset({"number", "title", "reason"}),
    "request_rejected": frozenset({"number", "title", "reason"}),
    "request_needs_review": frozenset({"number", "title", "applicant"}),
    "allocation_ready": frozenset({"number", "namespace", "gpus", "gpu_model", "expires_on"}),
    "expiry_notice": frozenset({"namespace", "days_left", "expires_on"}),
    "reclaim_done": frozenset({"namespace", "gpus", "gpu_model"}),
    # green channel: the owner's running allocation was preempted for an emergency and requeued
    "preempted": frozenset({"number", "title", "namespace", "gpus", "gpu_model", "emergency"}),
    "warning_raised": frozenset({"level", "target", "month", "gpu_util", "mem_util"}),
    # warnings and reclaim (core.reclaim): ops contact the owner about a warning; an extension decided
    "warning_contact": frozenset({"level", "target", "month", "note"}),
    "extension_decided": frozenset({"namespace", "decision", "expires_on", "reason"}),
    # the monthly report's draft is ready for ops to preview and publish (core/reports/service.py)
    "report_draft_ready": frozenset({"month", "scope", "version", "report_id"}),
    # support requests between provinces and HQ (core/adjust/support.py): raised, decided, given back
    **{name: frozenset({"support_id", "pool", "donor", "gpus", "gpu_model", "starts_on", "ends_on", "reason"})
       for name in ("support_raised", "support_approved", "support_rejected", "support_returned")},
}

# The kinds of notice (catalog ``inbox.kind.<kind>``) and the templates of each, in the order the inbox offers them.
KINDS: dict[str, tuple[str, ...]] = {
    "approval": ("request_needs_review",),  # a request awaits the reader's approval step
    "submitted": ("request_submitted",),
    "decision": ("request_approved", "request_rejected", "extension_decided"),
    "allocation": ("allocation_ready", "preempted"),
    "expiry": ("expiry_notice",),
    "warning": ("warning_raised", "warning_contact"),
    "reclaim": ("reclaim_done",),
    "report": ("report_draft_ready",),
    "support": ("support_raised", "support_approved", "support_rejected", "support_returned"),
}
KIND_OF: dict[str, str] = {template: kind for kind, names in KINDS.items() for template in names}
OTHER_KIND = "other"  # a template no kind lists yet (tests/unit/test_notice_links.py fails on it)


def kind_of(template: str) -> str:
    """The kind of notice ``template`` is (:data:`KINDS`)."""
    return KIND_OF.get(template, OTHER_KIND)


# Parameters whose value is a code that is itself translated before it enters the text.
_CODED_PARAMS: dict[str, tuple[str, frozenset[str]]] = {
    "level": ("notify.level.{}", frozenset({"yellow", "orange"})),
    "decision": ("notify.decision.{}", frozenset({"approved", "refused"})),
}


# Parameters whose value is an id named in the notice's language.
_NAMED_PARAMS: dict[str, Callable[[str, str], str]] = {
    "scope": scope_name,  # a report's: "company" or a unit of the organisation
}


class TemplateError(ValueError):
    """A notice names an unknown template or lacks (or mistypes) a parameter: a programming error."""


@dataclass(frozen=True)
class RenderedNotice:
    """A notice as a person reads it: one-line subject and plain-text body, in one language."""

    lang: str
    subject: str
    body: str


def check(template: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`TemplateError` unless ``template`` exists and ``params`` render in every language."""
    if template not in TEMPLATES:
        raise TemplateError(f"unknown notice template {template!r}; known: {sorted(TEMPLATES)}")
    missing = sorted(TEMPLATES[template] - set(params))
    if missing:
        raise TemplateError(f"notice {template!r} lacks parameters {missing}")
    try:
        json.dumps(dict(params))
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"notice {template!r}: parameters must be JSON values ({exc})") from exc
    for lang in ("zh-CN", "en"):
        render(template, lang, params)


def render(template: str, lang: str, params: Mapping[str, Any], *, base_url: str = "") -> RenderedNotice:
    """Subject and body of ``template`` in ``lang`` (any locale spelling) with ``params`` filled in.

    With ``base_url`` (the portal's public address) a notice about a request ends with a link that
    opens it; without, the body names the request by its number only (the in-app inbox shows its
    own link beside the text).

    Raises:
        TemplateError: unknown template, a missing parameter or a value of the wrong type.
    """
    lang = normalize_lang(lang)
    if template not in TEMPLATES:
        raise TemplateError(f"unknown notice template {template!r}")
    texts = catalog(lang)
    values = dict(params)
    for name, (key_pattern, codes) in _CODED_PARAMS.items():
        if name in values:
            if values[name] not in codes:
                raise TemplateError(f"notice {template!r}: {name} must be one of {sorted(codes)}, not {values[name]!r}")
            values[name] = texts[key_pattern.format(values[name])]
    for name, name_of in _NAMED_PARAMS.items():
        if name in values:
            values[name] = name_of(str(values[name]), lang)
    out = []
    for part in ("subject", "body"):
        key = f"notify.{template}.{part}"
        text = texts.get(key)
        if not text:
            raise TemplateError(f"{key!r} is not in the {lang} catalog")
        missing = placeholders(text) - set(values)
        if missing:
            raise TemplateError(f"{key!r} needs parameters {sorted(missing)}")
        try:
            out.append(text.format(**values))
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"{key!r} in {lang}: bad parameter value ({exc})") from exc
    subject, body = out
    # A subject is one header line: never let a parameter (a title, a reason) fold it.
    subject = " ".join(subject.split())
    body = body.rstrip()
    url = links.request_url(base_url, template, params, lang)
    if url:
        body += "\n\n" + texts["notify.link"].format(url=url)
    return RenderedNotice(lang=lang, subject=subject, body=f"{body}\n\n{texts['notify.footer']}\n")
