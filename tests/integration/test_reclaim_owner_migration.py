"""Migration 0017 on SQLite and PostgreSQL: existing warnings and candidates that name an allocation
are marked as owned by it, a candidate gets its request's province, the rest say "none"."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from core.db.migrate import alembic_config, head_revision, upgrade
from core.db.session import make_engine
from tests.support import clock


@pytest.mark.changes_schema
def test_0017_marks_existing_warnings_and_candidates_with_their_owner_source_and_province(db_url):
    engine = make_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0016")
    at, month = clock.now(), clock.month(-1)
    with engine.begin() as c:
        c.execute(text("INSERT INTO requests (id, status, created_by, created_by_email, department, unit, project, "
                       "demand_type, demand_subtype, pool_id, requested_gpus, duration_days, priority, form, flags, "
                       "tier, decision, decision_reason, created_at, updated_at, version, justification) VALUES "
                       "(7, 'active', 'qian.jun', '', 'js-it', 'JS', '', 'inference', '', 'js-pool', 1, 5, 'normal', "
                       "'{}', '[]', '', '', '', :at, :at, 1, '')"), {"at": at})
        for resource, alloc in (("owned", 3), ("legacy", None)):
            c.execute(text("INSERT INTO warnings (resource, month, level, status, request_id, allocation_id, owner, "
                           "department, unit, pool_id, gpu_hours, coverage, days_in_scope, days_observed, series, "
                           "created_at, updated_at) VALUES (:r, :m, 'yellow', 'new', NULL, :a, '', '', '', '', 0, 1, "
                           "30, 30, '[]', :at, :at)"), {"r": resource, "m": month, "a": alloc, "at": at})
        c.execute(text("INSERT INTO reclaim_candidates (namespace, month, status, request_id, allocation_id, owner, "
                       "department, pool_id, gpus, days_counted, series, notes, created_at, updated_at) VALUES "
                       "('svc', :m, 'detected', 7, 3, 'qian.jun', 'js-it', 'js-pool', 1, 30, '[]', '[]', :at, :at)"),
                  {"m": month, "at": at})
    assert upgrade(engine) == head_revision()
    with engine.connect() as c:
        assert dict(c.execute(text("SELECT resource, owner_source FROM warnings")).all()) == {
            "owned": "allocation", "legacy": "none"}
        assert c.execute(text("SELECT owner_source, unit FROM reclaim_candidates")).one() == ("allocation", "JS")
    engine.dispose()
