"""AppTest: credentials in settings never reach a page — the Settings table masks them, and a
metrics server that does not answer is named without its user:password."""

from __future__ import annotations

from tests.support.app_run import no_exceptions, open_page

SECRET = "s3cr3t-Pw"


def _everything_shown(at) -> str:
    parts = [str(e.value) for e in (*at.error, *at.warning, *at.info, *at.caption, *at.markdown)]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(parts)


def test_settings_mask_every_credential(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_URLS", f"hq-beijing-1=http://ops:{SECRET}@127.0.0.1:9/")
    monkeypatch.setenv("COMPUTELOOP_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("COMPUTELOOP_SMTP_HOST", "mail.invalid")
    at = open_page("app_pages/settings.py", persona="zhao.min")
    no_exceptions(at)
    shown = _everything_shown(at)
    assert "127.0.0.1:9" in shown and "ops:" in shown  # the server and the account are named
    assert SECRET not in shown


def test_an_unreachable_metrics_server_is_named_without_its_credentials(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_URLS", f"hq-beijing-1=http://ops:{SECRET}@127.0.0.1:9/")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_TIMEOUT_S", "2")
    # Every page's error goes through ComputeLoopError, which masks (tests/unit/test_redact.py); the
    # water level is the page that asks the metrics server for every visitor.
    for page, persona in (("app_pages/pools.py", "li.na"),):
        at = open_page(page, persona=persona)
        shown = _everything_shown(at)
        assert "127.0.0.1:9" in shown, f"{page} says which server did not answer"
        assert SECRET not in shown, page
