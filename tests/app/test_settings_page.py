"""AppTest: the settings page shows the configuration in force and the schema revision."""

import re

from core.db.migrate import head_revision
from tests.support.app_run import no_exceptions, open_page


def _settings(at) -> dict[str, str]:
    """The settings table (Markdown: what it does | `VARIABLE` | `value`) as variable -> value."""
    table = next(m.value for m in at.markdown if "`COMPUTELOOP_AUTH`" in m.value)
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[1].strip("`")] = cells[2].strip("`").replace("\\|", "|")
    return rows


def test_settings_show_every_variable_and_the_migration_revision():
    at = open_page("app_pages/settings.py", persona="zhao.min")
    no_exceptions(at)
    table = _settings(at)
    assert "COMPUTELOOP_DATABASE_URL" in table
    assert table["COMPUTELOOP_AUTH"] == "demo"
    assert at.metric[0].value == head_revision()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_SMTP_PASSWORD", "hunter2")
    at = open_page("app_pages/settings.py", persona="zhao.min")
    no_exceptions(at)
    table = _settings(at)
    assert table["COMPUTELOOP_SMTP_PASSWORD"] == "••••••"
    assert "hunter2" not in str(table)
