"""``python -m core db``: apply migrations, show the schema revision, re-seal stored tokens."""

from __future__ import annotations

import argparse

from core import config
from core.cli import add_json_flag, emit
from core.db.migrate import current_revision, head_revision, upgrade
from core.db.reseal import reseal_tokens
from core.db.session import make_engine


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``db`` group."""
    db = groups.add_parser("db", help="database schema (Alembic migrations)", description="Database schema.")
    sub = db.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("upgrade", help="apply pending migrations to COMPUTELOOP_DATABASE_URL")
    add_json_flag(up)
    up.set_defaults(handler=_upgrade)
    cur = sub.add_parser("current", help="show the revision in force and the newest one")
    add_json_flag(cur)
    cur.set_defaults(handler=_current)
    reseal = sub.add_parser("reseal-tokens", help="re-seal every stored cluster token under the first key of "
                                                  "COMPUTELOOP_TOKEN_KEYS (the last step of a key rotation)")
    add_json_flag(reseal)
    reseal.set_defaults(handler=_reseal)


def _upgrade(args: argparse.Namespace) -> int:
    engine = make_engine(config.load().database_url)
    revision = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    emit(args, {"url": url, "revision": revision}, lambda: f"{url}: at revision {revision}")
    return 0


def _current(args: argparse.Namespace) -> int:
    engine = make_engine(config.load().database_url)
    current, head = current_revision(engine), head_revision()
    emit(args, {"current": current, "head": head}, lambda: f"current {current or '-'} / head {head}")
    return 0


def _reseal(args: argparse.Namespace) -> int:
    done = reseal_tokens(make_engine(config.load().database_url))
    emit(args, done, lambda: f"{done['resealed']} of {done['rows']} stored tokens re-sealed under the first key")
    return 0
