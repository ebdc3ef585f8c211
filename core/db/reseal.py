"""Re-seal every stored cluster token under the first key of ``COMPUTELOOP_TOKEN_KEYS`` — the
last step of a key rotation (:mod:`core.tokens`): after it, the old key can be removed."""

from __future__ import annotations

from sqlalchemy import Engine, column, table, update

from core import tokens

# The raw column, without SealedText, so the stored (sealed) form is read and written as it is.
_ALLOCATIONS = table("allocations", column("id"), column("kubeconfig"))


def reseal_tokens(engine: Engine) -> dict[str, int]:
    """Re-seal each stored kubeconfig in one transaction; a row that no key opens fails the whole
    run (``tokens.TokenKeyMissing``) and nothing is written. Returns how many rows were looked at
    and how many changed."""
    tokens.require_key()
    seen = changed = 0
    with engine.begin() as conn:
        rows = conn.execute(_ALLOCATIONS.select().where(_ALLOCATIONS.c.kubeconfig.is_not(None))).all()
        for alloc_id, stored in rows:
            seen += 1
            fresh = tokens.reseal(stored)
            tokens.unseal(fresh)  # the first key opens it: never write what cannot be read back
            if fresh != stored:
                conn.execute(update(_ALLOCATIONS).where(_ALLOCATIONS.c.id == alloc_id).values(kubeconfig=fresh))
                changed += 1
    return {"rows": seen, "resealed": changed}
