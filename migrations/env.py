"""Alembic environment: uses a connection handed in by core.db.migrate, else the configured URL."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from core import config as app_config
from core.db.models import Base

cfg = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = cfg.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = cfg.get_main_option("sqlalchemy.url") or app_config.load().database_url
    engine = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
