"""The project's own exceptions.

Outside errors (YAML, SQL, HTTP, file formats) are translated into these at the boundary, so
pages and the CLI handle one family: an :class:`InputError` names the field or file that is
wrong and carries a message key for the i18n catalogs plus its parameters.
"""

from __future__ import annotations

from typing import Any


class ComputeLoopError(Exception):
    """Base class: every error the UI or CLI is expected to show to a person."""

    def __init__(self, key: str, **params: Any) -> None:
        from core import redact

        self.key = key
        # Every message shown to a person goes through here: no URL in it keeps its credentials.
        self.params = {k: redact.text(v) if isinstance(v, str) else v for k, v in params.items()}
        super().__init__(self.english())

    def english(self) -> str:
        """The message in English (used by logs and by the CLI's default language)."""
        from core.i18n import translate

        return translate(self.key, "en", **self.params)


class InputError(ComputeLoopError):
    """Bad input from a person: names the field (or file and line) and what to do."""

    def __init__(self, key: str, *, field: str, **params: Any) -> None:
        self.field = field
        super().__init__(key, field=field, **params)


class NotFound(ComputeLoopError):
    """A thing asked for by id does not exist."""
