"""AppTest: the settings page shows the configuration in force and the schema revision."""

from core.db.migrate import head_revision
from tests.app.conftest import no_exceptions, open_page


def test_settings_show_every_variable_and_the_migration_revision():
    at = open_page("app_pages/settings.py", persona="zhao.min")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert "COMPUTELOOP_DATABASE_URL" in set(table["Variable"])
    assert table.loc[table["Variable"] == "COMPUTELOOP_AUTH", "Value"].item() == "demo"
    assert at.metric[0].value == head_revision()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_SMTP_PASSWORD", "hunter2")
    at = open_page("app_pages/settings.py", persona="zhao.min")
    table = at.dataframe[0].value
    assert table.loc[table["Variable"] == "COMPUTELOOP_SMTP_PASSWORD", "Value"].item() == "••••••"
    assert "hunter2" not in table.to_string()
