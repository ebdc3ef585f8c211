"""Persistence: SQLAlchemy 2 models, engines and the unit of work. SQLite by default,
PostgreSQL by URL; the schema is created only by Alembic migrations (migrations/)."""
