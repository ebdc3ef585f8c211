"""Access tokens at rest: a kubeconfig that carries a live cluster token is stored encrypted.

Choice (issue "Secure by default"): encrypt at rest rather than re-issue on every download. The live
backend mints one ServiceAccount token per allocation window (TokenRequest, its lifetime capped by
data/cluster_defaults.yaml); re-issuing on download would need a call to the cluster for every
download and would make the allocation sheet unusable while a cluster is unreachable. So the token is
kept, sealed with Fernet (AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package) under keys
from the environment, and dropped when the allocation is released.

``COMPUTELOOP_TOKEN_KEYS`` holds one or more Fernet keys separated by commas: the first seals, every
one opens (``cryptography.fernet.MultiFernet``), so a key is rotated by putting a new one first and
keeping the old one until :func:`reseal` has run over the stored rows. Plan-mode kubeconfigs carry
only a placeholder that says how to mint a token; they hold no secret and are stored as they are when
no key is set. A live token without a key is refused: nothing is stored in clear.
"""

from __future__ import annotations

import os

import yaml
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.errors import ComputeLoopError

KEYS_ENV = "COMPUTELOOP_TOKEN_KEYS"
PREFIX = "fernet:"
PLACEHOLDER_PREFIX = "<token:"  # core.cluster.manifests.TOKEN_PLACEHOLDER


class TokenKeyMissing(ComputeLoopError):
    """A live token would be stored, or a sealed one read, without a usable key."""


def _keys() -> MultiFernet | None:
    raw = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if not raw:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in raw])
    except (ValueError, TypeError):
        raise TokenKeyMissing("tokens.key_invalid", variable=KEYS_ENV) from None


def configured() -> bool:
    """True when at least one valid key is set (the live backend needs one)."""
    return _keys() is not None


def require_key() -> None:
    """Raise :class:`TokenKeyMissing` unless a key is set (checked before anything live is done)."""
    if _keys() is None:
        raise TokenKeyMissing("tokens.key_missing", variable=KEYS_ENV)


def carries_live_token(kubeconfig: str) -> bool:
    """True when a kubeconfig holds a user token that is not the plan mode's placeholder."""
    try:
        doc = yaml.safe_load(kubeconfig) or {}
        users = doc.get("users") or [] if isinstance(doc, dict) else []
    except yaml.YAMLError:
        return True  # unknown content: treat as secret
    tokens = [str(((u or {}).get("user") or {}).get("token") or "") for u in users if isinstance(u, dict)]
    return any(t and not t.startswith(PLACEHOLDER_PREFIX) for t in tokens)


def seal(value: str | None) -> str | None:
    """What is stored for ``value``: sealed when a key is set; a placeholder kubeconfig as it is
    without one; a live token without a key is refused."""
    if value is None or value.startswith(PREFIX):
        return value
    keys = _keys()
    if keys is not None:
        return PREFIX + keys.encrypt(value.encode()).decode()
    if carries_live_token(value):
        raise TokenKeyMissing("tokens.key_missing", variable=KEYS_ENV)
    return value


def unseal(stored: str | None) -> str | None:
    """The value behind what is stored (rows from before sealing are returned as they are)."""
    if stored is None or not stored.startswith(PREFIX):
        return stored
    keys = _keys()
    if keys is None:
        raise TokenKeyMissing("tokens.key_missing", variable=KEYS_ENV)
    try:
        return keys.decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise TokenKeyMissing("tokens.key_wrong", variable=KEYS_ENV) from None


def reseal(stored: str | None) -> str | None:
    """``stored`` sealed under the first key (after a rotation), or sealed for the first time."""
    if stored is None:
        return None
    if stored.startswith(PREFIX):
        keys = _keys()
        if keys is None:
            raise TokenKeyMissing("tokens.key_missing", variable=KEYS_ENV)
        try:
            return PREFIX + keys.rotate(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise TokenKeyMissing("tokens.key_wrong", variable=KEYS_ENV) from None
    return seal(stored)
