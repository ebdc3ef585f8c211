"""Message catalogs (zh-CN and en) and the one lookup function every visible string goes through.

Catalogs are gettext ``.po`` files under ``catalogs/``, one pair per domain
(``<domain>.en.po`` and ``<domain>.zh_CN.po``), read with Babel. Message ids are stable keys
such as ``estimate.title``; the text is ``str.format`` with named parameters.

Core code never formats text for people itself: it raises errors or returns :class:`Msg`
values (a key plus parameters) and the page or CLI renders them with :func:`translate`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from babel.messages.pofile import read_po

CATALOG_DIR = Path(__file__).parent / "catalogs"
LANGS: tuple[str, ...] = ("zh-CN", "en")
_FILE_SUFFIX = {"zh-CN": "zh_CN", "en": "en"}


class MissingMessage(KeyError):
    """A key is not in the catalog of a language (raised only in strict mode)."""


@dataclass(frozen=True)
class Msg:
    """A message to show a person, not yet translated: a catalog key and its parameters."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        """The text in ``lang``."""
        return translate(self.key, lang, **dict(self.params))


def normalize_lang(value: str | None) -> str:
    """Map a browser or user locale ('zh', 'zh-Hans-CN', 'en_US', None) to one of :data:`LANGS`."""
    if not value:
        return "zh-CN"
    v = value.replace("_", "-").lower()
    if v.startswith("zh"):
        return "zh-CN"
    if v.startswith("en"):
        return "en"
    return "zh-CN"


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """All messages of ``lang`` (merged from every domain file); duplicate keys are an error."""
    suffix = _FILE_SUFFIX[lang]
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob(f"*.{suffix}.po")):
        with path.open("rb") as fh:
            po = read_po(fh, locale=suffix)
        for message in po:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            if key in merged:
                raise ValueError(f"message key {key!r} is in both {origin[key]} and {path.name}")
            text = message.string if isinstance(message.string, str) else message.string[0]
            merged[key] = text
            origin[key] = path.name
    return merged


def has_key(key: str, lang: str) -> bool:
    """True when ``key`` has a text in the ``lang`` catalog; never raises, in strict mode or not."""
    return bool(catalog(lang).get(key))


#: Catalog keys ``fieldname.<field>`` (domain ``fields``) name the field of an InputError as the forms label it.
FIELD_NAME_PREFIX = "fieldname."


def field_name(field: str, lang: str) -> str | None:
    """The label of the field ``field`` (the ``field`` of an :class:`~core.errors.InputError`) in
    ``lang``, as the forms label it; None when the catalog has none: a file (``org.yaml``), a CLI
    option (``--month``) or a setting (``COMPUTELOOP_SMTP_PORT``) is technical and shown as it is."""
    key = FIELD_NAME_PREFIX + str(field)
    return catalog(lang)[key] if has_key(key, lang) else None


def placeholders(text: str) -> set[str]:
    """The named ``{placeholders}`` a message text uses."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _strict() -> bool:
    from core import config

    return config.load().i18n_strict


def translate(key: str, lang: str, **params: Any) -> str:
    """The text of ``key`` in ``lang`` with ``params`` filled in.

    A missing key raises :class:`MissingMessage` in strict mode (tests) and otherwise shows the
    key itself, so a gap is visible but never crashes a page.
    """
    text = catalog(lang).get(key)
    # A parameter may itself be a message (e.g. the action in a permission error): same language.
    params = {k: (v.render(lang) if isinstance(v, Msg) else v) for k, v in params.items()}
    if text is None or text == "":
        if _strict():
            raise MissingMessage(f"{key!r} is not in the {lang} catalog")
        return key
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError) as exc:
        if _strict():
            raise MissingMessage(f"{key!r} in {lang}: bad parameters {sorted(params)}: {exc}") from exc
        return text
