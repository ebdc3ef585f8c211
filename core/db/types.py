"""Column types of our own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class SealedText(TypeDecorator):
    """Text sealed at rest by :mod:`core.tokens` (for kubeconfigs that carry a live token): the
    application reads and writes plain text; the database holds the sealed form."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        from core import tokens

        return tokens.seal(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        from core import tokens

        return tokens.unseal(value)
